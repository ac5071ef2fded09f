/**
 * The coordinator without a single point: a shardflow cluster on a real 3-member etcd — in its production shape, 3
 * storage nodes and 3 copies of every partition — keeps serving reads and writes when one etcd member dies (the raft
 * leader, the hardest case): leaders keep their leases and read leases through the other members, so no partition
 * fails over and no copy is dropped; and it keeps working through etcd afterwards (membership, routing changes) on the
 * two that remain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcdCluster, type RunningEtcdCluster } from '../harness/etcd.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { WriteChecker } from '../harness/write-checker.js';
import { fullyReplicated, tableWhen } from '../harness/tables.js';
import type { ShardflowClient } from '../../src/client/index.js';

let etcd: RunningEtcdCluster;
let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  etcd = await startEtcdCluster({ size: 3 });
  cluster = await startTestCluster({
    storage: 3,
    copies: 3,
    compute: 1,
    coordinator: { kind: 'etcd', endpoints: etcd.endpoints, prefix: `/quorum-${process.pid}` },
  });
  client = await cluster.client();
});
afterAll(async () => {
  await cluster?.stop();
  await etcd?.stop();
});

describe('a cluster on a 3-member etcd', () => {
  it('serves reads and writes without a failure while the etcd leader dies, and goes on working through the other two', async () => {
    const table = await tableWhen(client, 'default', fullyReplicated, 30_000);
    expect(table.copies).toBe(3);
    const keys = Array.from({ length: 400 }, (_, i) => `q${i}`);
    const checker = new WriteChecker(client, 'default', keys, { writers: 6, readers: 2 });
    checker.start();
    await checker.progress(300);

    // Any node missing from membership from now on (its lease lapsed while etcd changed leader).
    const deaths = new Set<string>();
    const unwatch = client.members.onChange(() => {
      for (const id of ['c1', 's1', 's2', 's3']) if (!client.members.get(id)) deaths.add(id);
    });
    const leader = await etcd.leader();
    const member = etcd.members.find((m) => m.name === leader)!;
    await member.stop();

    // The two members left elect a leader; meanwhile and afterwards, reads and writes go on.
    const before = checker.writes;
    await checker.progress(1000, 20_000);
    expect(await etcd.leader()).not.toBe(leader);
    // Work that goes through etcd: a namespace created, seen by the client, written to.
    await client.createNamespace('after-quorum', { scheme: 'hash' });
    await client.put('after-quorum', 'k', 1);
    expect(await client.get('after-quorum', 'k')).toBe(1);

    await checker.stop();
    expect(checker.writes - before).toBeGreaterThanOrEqual(1000);
    expect(checker.failedWrites).toBe(0);
    expect(checker.staleReads).toEqual([]);
    expect(await checker.verify()).toEqual([]);
    // No node was taken for dead while etcd changed leader (their leases were kept alive through the others).
    unwatch();
    expect([...deaths]).toEqual([]);
    expect(client.members.ready().map((m) => m.id)).toEqual(['c1', 's1', 's2', 's3']);
    // No failover either: every partition has the leader and the three copies it had.
    const now = await client.catalog.refresh('default');
    for (const p of table.partitions()) {
      expect([now!.ownerOf(p), [...now!.followersOf(p)].sort()]).toEqual([table.ownerOf(p), [...table.followersOf(p)].sort()]);
    }
  });
});
