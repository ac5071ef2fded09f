import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ShardflowClient } from '../../src/client/index.js';
import { UnavailableError } from '../../src/errors/index.js';
import { namespaceSink, webhook } from '../../src/processing/connectors/index.js';
import { collect, fromArray, ndjsonFile, pipeline, stdout, type DeadLetter, type Mode } from '../../src/processing/index.js';
import { Writable } from 'node:stream';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const N = 50;
const numbers = Array.from({ length: N }, (_, i) => i);

/** A client that keeps what it is sent in `stored`, or fails every batch with `fail`. */
function fakeClient(fail?: Error): { client: ShardflowClient; stored: Map<string, unknown> } {
  const stored = new Map<string, unknown>();
  const client = {
    namespaces: () => ['out'],
    async createNamespace() {},
    async batch(_ns: string, ops: Array<{ key: string; value: unknown }>) {
      if (fail) throw fail;
      for (const op of ops) stored.set(op.key, op.value);
      return ops.map(() => 1);
    },
    async close() {},
  };
  return { client: client as unknown as ShardflowClient, stored };
}

describe.each(['stream', 'batch'] as Mode[])('records a sink refuses (%s mode)', (mode) => {
  const opts = { mode, trigger: 'count=10', readBatch: 7 } as const;

  it('a record a file sink cannot serialise is a dead letter with its reason; the others are written', async () => {
    const dead = collect<DeadLetter>();
    const result = await pipeline('bigints')
      .from(fromArray(numbers))
      .map((i) => ({ i, n: i === 13 ? BigInt(i) : i }))
      .deadLetters(dead.sink)
      .to(ndjsonFile(join(dir, 'out.ndjson')))
      .run(opts);
    expect(result.state).toBe('finished');
    const lines = (await readFile(join(dir, 'out.ndjson'), 'utf8')).split('\n').filter(Boolean);
    expect(lines.map((l) => JSON.parse(l).i)).toEqual(numbers.filter((i) => i !== 13));
    expect(dead.values).toEqual([
      expect.objectContaining({ job: 'bigints', stage: 'sink', reason: 'not JSON: TypeError: Do not know how to serialize a BigInt', record: { i: 13, n: '13' } }),
    ]);
    expect(result.metrics.sink.records).toBe(N - 1);
    expect(result.metrics.deadLetters).toBe(1);
  });

  it('a record stdout cannot print as JSON is a dead letter; the others are printed', async () => {
    const dead = collect<DeadLetter>();
    const printed: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        printed.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const result = await pipeline('bigints-out')
      .from(fromArray(numbers))
      .map((i) => ({ i, n: i === 13 ? BigInt(i) : i }))
      .deadLetters(dead.sink)
      .to(stdout({ stream }))
      .run(opts);
    expect(result.state).toBe('finished');
    expect(printed.map((l) => JSON.parse(l).i)).toEqual(numbers.filter((i) => i !== 13));
    expect(dead.values).toEqual([expect.objectContaining({ stage: 'sink', record: { i: 13, n: '13' } })]);
  });

  it("a namespace sink's key function that throws sends that record to the dead letters", async () => {
    const dead = collect<DeadLetter>();
    const { client, stored } = fakeClient();
    const sink = namespaceSink<number>({
      namespace: 'out',
      client,
      key: (i) => {
        if (i % 20 === 7) throw new RangeError(`no key for ${i}`);
        return `k${i}`;
      },
    });
    const result = await pipeline('keys').from(fromArray(numbers)).deadLetters(dead.sink).to(sink).run(opts);
    expect(result.state).toBe('finished');
    expect([...stored.keys()].sort()).toEqual(numbers.filter((i) => i % 20 !== 7).map((i) => `k${i}`).sort());
    expect(dead.values.map((d) => [d.stage, d.reason, d.record])).toEqual([
      ['sink', 'key or value failed: RangeError: no key for 7', 7],
      ['sink', 'key or value failed: RangeError: no key for 27', 27],
      ['sink', 'key or value failed: RangeError: no key for 47', 47],
    ]);
  });

  it('storage being unavailable is not a bad record: the job fails as before', async () => {
    const dead = collect<DeadLetter>();
    const { client } = fakeClient(new UnavailableError('no storage node answers'));
    const sink = namespaceSink<number>({ namespace: 'out', client, key: (i) => `k${i}` });
    await expect(pipeline('down').from(fromArray(numbers)).deadLetters(dead.sink).to(sink).run(opts)).rejects.toBeInstanceOf(UnavailableError);
    expect(dead.values).toEqual([]);
  });
});

describe('webhook records', () => {
  let server: Server;
  let url: string;
  let status = 200;
  const received: unknown[] = [];
  beforeEach(async () => {
    received.length = 0;
    status = 200;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (status < 300) for (const l of Buffer.concat(chunks).toString().split('\n').filter(Boolean)) received.push(JSON.parse(l));
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  });
  afterEach(
    () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  );

  it('a record over maxBatchBytes is a dead letter; an endpoint that is down fails the job', async () => {
    const dead = collect<DeadLetter>();
    const values = ['a', 'b', 'x'.repeat(100), 'c'];
    const result = await pipeline('hook')
      .from(fromArray(values))
      .deadLetters(dead.sink)
      .to(webhook<string>({ url, maxBatchBytes: 50 }))
      .run();
    expect(result.state).toBe('finished');
    expect(received).toEqual(['a', 'b', 'c']);
    expect(dead.values.map((d) => [d.stage, d.record])).toEqual([['sink', 'x'.repeat(100)]]);
    expect(dead.values[0]!.reason).toMatch(/TooLargeError: a record of 103 bytes exceeds the webhook batch limit of 50/);

    status = 503;
    const dead2 = collect<DeadLetter>();
    const down = pipeline('hook-down').from(fromArray(['a'])).deadLetters(dead2.sink).to(webhook<string>({ url, attempts: 2, backoffMs: 1 })).run();
    await expect(down).rejects.toBeInstanceOf(UnavailableError);
    expect(dead2.values).toEqual([]);
  });
});
