/**
 * A replicated range namespace with real node processes: 3 copies of every key range on 3 storage nodes, ranges
 * splitting as data grows (each half keeps the leader and followers), kill -9 of a leader under concurrent writers —
 * every acknowledged write readable afterwards, writes to its ranges resume within 3 s — and the copies come back
 * when the node does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullyReplicated, tableWhen } from '../harness/tables.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { WriteChecker } from '../harness/write-checker.js';
import { expectBallastIntact, writeBallast } from '../harness/ballast.js';
import type { ShardflowClient } from '../../src/index.js';

const NS = 'reprange';
const BALLAST = 400;
let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 });
  client = await cluster.client();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('replicated range namespace', () => {
  it('keeps 3 copies of every range through splits, and every acknowledged write through kill -9 of a leader', async () => {
    const created = await client.createNamespace(NS, { scheme: 'range', splitBytes: 32 * 1024 });
    expect(created.copies).toBe(3); // the default with 3 storage nodes
    expect(new Set([created.ownerOf(0), ...created.followersOf(0)]).size).toBe(3);

    // ~400 KiB of 1 KiB values: the ranges split while writers run, every half with its 3 copies.
    const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    const checker = new WriteChecker(client, NS, keys, { writers: 8, readers: 2 });
    checker.start();
    await writeBallast(client, NS, BALLAST);
    const split = await tableWhen(client, NS, (t) => t.partitions().length >= 4 && fullyReplicated(t), 30_000);
    for (const p of split.partitions()) expect(new Set([split.ownerOf(p), ...split.followersOf(p)]).size).toBe(3);
    await checker.progress(300);

    // Kill the leader of the range holding the checker's keys.
    const victim = split.ownerOf(split.place(keys[0]!).partition)!;
    const killedAt = Date.now();
    await cluster.kill9(victim);
    await client.put(NS, keys[0]! + ':probe', Date.now()); // retried by the client until a follower leads
    const resumedMs = Date.now() - killedAt;
    console.log(`writes to ${victim}'s ranges resumed ${resumedMs} ms after kill -9`);
    await checker.progress(300);
    await checker.stop();
    const after = client.catalog.table(NS);
    expect(after.partitions().filter((p) => after.ownerOf(p) === victim)).toEqual([]);
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
    expect(resumedMs).toBeLessThan(3000);

    // Back, it gets its copies again; nothing was lost meanwhile.
    await cluster.restart(victim);
    const healed = await tableWhen(client, NS, fullyReplicated, 60_000);
    expect(healed.partitions().some((p) => healed.followersOf(p).includes(victim))).toBe(true);
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  }, 150_000);
});
