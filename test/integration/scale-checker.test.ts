/**
 * The storage tier's promises through scale-out 3 -> 5 and scale-in 5 -> 3, with writers and readers running the
 * whole time: every acknowledged write is there with its latest value, no read goes back in time, and each scale
 * moves no more than 5% over the minimum (2/5 of the slots out, the leaving nodes' slots in).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { WriteChecker } from '../harness/write-checker.js';
import { scaleLocalStorage } from '../../src/cluster/rebalance-local.js';
import type { ShardflowClient } from '../../src/client/index.js';

const SLOTS = 4096;
let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 }); // one copy: these tests count partitions moved
  client = await cluster.client();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('scale-out and scale-in under load', () => {
  it('3 -> 5 -> 3 storage nodes: nothing acknowledged lost, no stale read, minimal movement', async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`);
    const checker = new WriteChecker(client, 'default', keys, { writers: 8, readers: 4 });
    checker.start();
    await checker.progress(500);
    const quiet = { write: () => undefined, concurrency: 4 };

    const writesBeforeOut = checker.writes;
    const out = await scaleLocalStorage(cluster.dir, 5, quiet);
    expect(checker.writes - writesBeforeOut).toBeGreaterThan(50); // writers wrote during the scale-out
    const movedOut = out.moves.length;
    expect(movedOut / (SLOTS * (2 / 5))).toBeLessThanOrEqual(1.05); // optimal: the two new nodes' share
    expect(movedOut / (SLOTS * (2 / 5))).toBeGreaterThanOrEqual(0.95);
    let table = await client.catalog.refresh('default');
    for (const id of ['s1', 's2', 's3', 's4', 's5']) expect(table!.partitionsOf(id).length).toBeGreaterThanOrEqual(Math.floor(SLOTS / 5));

    await checker.progress(500);
    const onLeaving = table!.partitionsOf('s4').length + table!.partitionsOf('s5').length;
    const writesBeforeIn = checker.writes;
    const left = cluster.nextMemberEvent((e) => e.member.id === 's5' && e.type === 'leave', 120_000);
    const back = await scaleLocalStorage(cluster.dir, 3, quiet);
    await left;
    expect(checker.writes - writesBeforeIn).toBeGreaterThan(50);
    expect(back.moves.length).toBe(onLeaving); // exactly what the leaving nodes held
    table = await client.catalog.refresh('default');
    expect(table!.partitionsOf('s4')).toHaveLength(0);
    expect(table!.partitionsOf('s5')).toHaveLength(0);

    await checker.progress(200);
    await checker.stop();
    expect(checker.reads).toBeGreaterThan(100);
    expect(checker.failedWrites).toBe(0); // clients saw no error: redirects were retried inside the client
    expect(await checker.verify()).toEqual([]);
  });
});
