/**
 * 100k keys written to real storage node processes are all there after a client reconnect, and after kill -9 and a
 * restart of every storage node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import type { ShardflowClient } from '../../src/client/index.js';

const KEYS = 100_000;
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

const valueOf = (i: number) => ({ n: i, s: `value-${i}` });

/** Runs `work(i)` for i in [0, count) with `parallel` in flight at once. */
async function pool(count: number, parallel: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

async function readAll(client: ShardflowClient): Promise<number> {
  let wrong = 0;
  await pool(KEYS, 256, async (i) => {
    const v = await client.get<{ n: number; s: string }>('default', `key:${i}`);
    if (v?.n !== i || v.s !== `value-${i}`) wrong++;
  });
  return wrong;
}

describe('durability of acknowledged writes', () => {
  it('writes 100k keys, reads them back after reconnect and after kill -9 + restart of every storage node', async () => {
    const writer = await cluster.client();
    await pool(KEYS, 256, async (i) => {
      await writer.put('default', `key:${i}`, valueOf(i));
    });
    await writer.close();

    const reader = await cluster.client();
    expect(await readAll(reader)).toBe(0);

    // Every put above was acknowledged; none may be lost to an abrupt kill.
    await Promise.all(['s1', 's2', 's3'].map((id) => cluster.kill9(id)));
    await Promise.all(['s1', 's2', 's3'].map((id) => cluster.restart(id)));

    const after = await cluster.client();
    expect(await readAll(after)).toBe(0);
    let scanned = 0;
    for await (const e of after.scan('default', {})) {
      if (e.key.startsWith('key:')) scanned++;
    }
    expect(scanned).toBe(KEYS);
  });
});
