/** The webhook sink against a local HTTP endpoint that can fail on purpose. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BATCH_HEADER, checkSignature, webhook } from '../../../src/processing/connectors/index.js';
import { ConfigError, InvalidArgumentError, UnavailableError } from '../../../src/errors/index.js';
import { sinkConformance } from '../connector-conformance.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** An endpoint that records every request and answers what `respond` says (default 200). */
async function endpoint(respond: (req: Received, n: number) => number | 'drop' = () => 200) {
  const requests: Received[] = [];
  const accepted: unknown[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(r);
      const answer = respond(r, requests.length);
      if (answer === 'drop') return void res.socket?.destroy();
      if (answer < 300) for (const l of r.body.toString().split('\n').filter(Boolean)) accepted.push(JSON.parse(l));
      res.writeHead(answer, { 'content-type': 'application/json' }).end(JSON.stringify({ status: answer }));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    accepted,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

type Row = { n: number };

sinkConformance<Row>('webhook', {
  record: (n) => ({ n }),
  idOf: (v) => v.n,
  async create() {
    // Every third request fails once with a 503: retried, so all records still arrive.
    const ep = await endpoint((_, n) => (n % 3 === 0 ? 503 : 200));
    return {
      sink: webhook<Row>({ url: ep.url, maxBatchRecords: 4, backoffMs: 5 }),
      contents: async () => ep.accepted as Row[],
      cleanup: ep.close,
    };
  },
});

describe('webhook sink', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });
  const start = async (respond?: Parameters<typeof endpoint>[0]) => {
    const ep = await endpoint(respond);
    open.push(ep);
    return ep;
  };

  it('posts NDJSON batches within the record and byte limits, signed, with a batch id the same on each try', async () => {
    const secret = randomBytes(32);
    const ep = await start((_, n) => (n === 1 ? 'drop' : n === 2 ? 502 : 200));
    const writer = await webhook<Row>({ url: ep.url, secret, maxBatchRecords: 3, maxBatchBytes: 30, backoffMs: 5 }).open({
      job: 'j',
      worker: 'w',
    });
    await writer.write([1, 2, 3, 4].map((n) => ({ n })));
    await writer.close();
    // Tries 1 (dropped) and 2 (502) and 3 carry the first batch; 3 lines of 8 bytes fit under 30; then the 4th record.
    expect(ep.requests.map((r) => r.body.toString())).toEqual([
      '{"n":1}\n{"n":2}\n{"n":3}\n',
      '{"n":1}\n{"n":2}\n{"n":3}\n',
      '{"n":1}\n{"n":2}\n{"n":3}\n',
      '{"n":4}\n',
    ]);
    const ids = ep.requests.map((r) => r.headers[BATCH_HEADER]);
    expect(ids[0]).toMatch(/^j\/w\/[0-9a-f]{8}\/1$/);
    expect(new Set(ids.slice(0, 3)).size).toBe(1);
    expect(ids[3]).not.toBe(ids[0]);
    for (const r of ep.requests) {
      expect(r.headers['content-type']).toBe('application/x-ndjson');
      expect(checkSignature(secret, r.headers, r.body)).toBeUndefined();
    }
    expect(ep.accepted).toEqual([1, 2, 3, 4].map((n) => ({ n })));
  });

  it('a 4xx is final; retries that run out, and a record over the byte limit, are typed errors', async () => {
    const refused = await start(() => 422);
    const w1 = await webhook<Row>({ url: refused.url, backoffMs: 1 }).open({ job: 'j', worker: 'w' });
    const err = await w1.write([{ n: 1 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ details: { status: 422 } });
    expect(refused.requests).toHaveLength(1);

    const down = await start(() => 503);
    const w2 = await webhook<Row>({ url: down.url, attempts: 3, backoffMs: 1 }).open({ job: 'j', worker: 'w' });
    await expect(w2.write([{ n: 1 }])).rejects.toBeInstanceOf(UnavailableError);
    expect(down.requests).toHaveLength(3);

    const small = await webhook<unknown>({ url: down.url, maxBatchBytes: 10 }).open({ job: 'j', worker: 'w' });
    // A record over the limit is refused alone (a dead letter in a job); the endpoint is not asked.
    const sent = down.requests.length;
    await expect(small.write([{ s: 'x'.repeat(20) }])).rejects.toMatchObject({
      code: 'BAD_RECORDS',
      rejected: [{ index: 0, reason: expect.stringMatching(/TooLargeError: a record of \d+ bytes exceeds the webhook batch limit of 10/) }],
    });
    expect(down.requests).toHaveLength(sent);
    expect(() => webhook({ url: 'ftp://x' })).toThrow(ConfigError);
    await Promise.all([w1.close(), w2.close(), small.close()]);
  });
});
