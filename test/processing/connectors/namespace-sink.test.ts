/** The namespace sink against a real local cluster (one storage node). */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN_PATH } from '../../../src/cluster/spawn.js';
import type { ShardflowClient } from '../../../src/client/index.js';
import { ConfigError } from '../../../src/errors/index.js';
import { namespaceSink } from '../../../src/processing/connectors/index.js';
import { startTestCluster, type TestCluster } from '../../harness/cluster.js';
import { sinkConformance } from '../connector-conformance.js';

let cluster: TestCluster;
let client: ShardflowClient;
let namespaces = 0;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 1 });
  client = await cluster.client();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function contents<T>(ns: string): Promise<T[]> {
  const out: T[] = [];
  for await (const e of client.scan<T>(ns)) out.push(e.value);
  return out;
}

type Row = { id: string; n: number };

sinkConformance<Row>('storage namespace (shared client)', {
  record: (i) => ({ id: `r${i}`, n: i }),
  idOf: (v) => v.n,
  async create() {
    const ns = `conf${++namespaces}`;
    return { sink: namespaceSink<Row>({ namespace: ns, key: 'id', client }), contents: () => contents<Row>(ns), cleanup: async () => {} };
  },
});

sinkConformance<Row>('storage namespace (own client per writer)', {
  record: (i) => ({ id: `r${i}`, n: i }),
  idOf: (v) => v.n,
  async create() {
    const ns = `own${++namespaces}`;
    return {
      sink: namespaceSink<Row>({ namespace: ns, key: (r) => r.id, dir: cluster.dir, batchSize: 3 }),
      contents: () => contents<Row>(ns),
      cleanup: async () => {},
    };
  },
});

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [BIN_PATH, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

describe('namespace sink', () => {
  it('materialises results by key: a later write of a key replaces it, readable with the client and `shardflow kv`', async () => {
    const sink = namespaceSink<{ user: string; count: number }>({
      namespace: 'clicks',
      key: 'user',
      value: (r) => ({ count: r.count }),
      client,
    });
    const writer = await sink.open({ job: 'clicks', worker: 'w0' });
    await writer.write([
      { user: 'u1', count: 1 },
      { user: 'u2', count: 5 },
    ]);
    await writer.write([{ user: 'u1', count: 3 }]);
    await writer.flush();
    await writer.close();
    expect(await client.get('clicks', 'u1')).toEqual({ count: 3 });
    expect(await client.get('clicks', 'u2')).toEqual({ count: 5 });
    expect(JSON.parse(await cli(['kv', 'get', 'u1', '--ns', 'clicks', '--dir', cluster.dir]))).toEqual({ count: 3 });
  });

  it('refuses a missing namespace when told not to create it, and a bad key with the client error', async () => {
    const strict = namespaceSink<Row>({ namespace: 'absent', key: 'id', client, create: false });
    const writer = await strict.open({ job: 'j', worker: 'w' });
    await expect(writer.write([{ id: 'a', n: 1 }])).rejects.toMatchObject({ code: 'UNKNOWN_NAMESPACE' });
    await writer.close();
    const sink = namespaceSink<Row>({ namespace: 'keys', key: 'id', client });
    const w2 = await sink.open({ job: 'j', worker: 'w' });
    // Bad records are refused one by one (dead letters in a job); the others of the call are stored.
    await expect(w2.write([{ id: 'k'.repeat(2000), n: 1 }, { id: 'ok1', n: 1 }])).rejects.toMatchObject({
      code: 'BAD_RECORDS',
      rejected: [{ index: 0, reason: expect.stringMatching(/TooLargeError/) }],
    });
    await expect(w2.write([{ n: 2 } as Row, { id: 'ok2', n: 2 }])).rejects.toMatchObject({
      rejected: [{ index: 0, reason: expect.stringMatching(/no string key in field "id"/) }],
    });
    expect(await client.get('keys', 'ok1')).toEqual({ id: 'ok1', n: 1 });
    expect(await client.get('keys', 'ok2')).toEqual({ id: 'ok2', n: 2 });
    await w2.close();
    expect(() => namespaceSink<Row>({ namespace: 'x', key: 'id' })).toThrow(ConfigError);
  });
});
