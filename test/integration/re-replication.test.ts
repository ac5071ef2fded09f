/**
 * Copies lost with a node are re-created on the nodes that remain, with the node still dead (issue 6, point 2): 4
 * storage nodes, a namespace with 3 copies, kill -9 of one node under writers and readers, and it is not restarted.
 * Every partition comes back to 3 in-sync copies on the 3 live nodes, each copy holding the leader's data, and every
 * acknowledged write is readable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableWhen } from '../harness/tables.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { WriteChecker } from '../harness/write-checker.js';
import { replicaGet } from '../harness/replica-read.js';
import type { RoutingTable, ShardflowClient } from '../../src/index.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect as wireConnect, splitAddress, type Connection } from '../../src/wire/index.js';

const NS = 'lost';
let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  // `default` with one copy: only this namespace's copies are re-made (less work on a small host).
  cluster = await startTestCluster({ storage: 4, copies: 1 });
  client = await cluster.client();
  await client.createNamespace(NS, { scheme: 'hash', slotCount: 32, copies: 3 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/** Every partition with 3 in-sync copies, none on `dead`. */
const healedWithout = (dead: string) => (t: RoutingTable) =>
  t.partitions().every((p) => t.ownerOf(p) !== dead && !t.holds(p, dead) && t.followersOf(p).length === 2);

describe('re-replication', () => {
  it('re-creates the copies of a node that stays dead on the nodes that remain', async () => {
    const before = await tableWhen(client, NS, (t) => t.partitions().every((p) => t.followersOf(p).length === 2), 30_000);
    const victim = 's2';
    const held = before.partitions().filter((p) => before.holds(p, victim));
    expect(held.length).toBeGreaterThan(0);

    const keys = Array.from({ length: 300 }, (_, i) => `r${i}`);
    const checker = new WriteChecker(client, NS, keys, { writers: 6, readers: 2 });
    checker.start();
    await checker.progress(300);
    await cluster.kill9(victim);
    const healed = await tableWhen(client, NS, healedWithout(victim), 60_000);
    await checker.progress(300);
    await checker.stop();

    // The copies that were on the victim now live on the other nodes: 3 distinct live nodes per partition.
    for (const p of healed.partitions()) {
      const holders = new Set([healed.ownerOf(p)!, ...healed.followersOf(p)]);
      expect(holders.size).toBe(3);
      expect(holders.has(victim)).toBe(false);
    }
    // Writes in flight to the victim when it died fail with an unknown outcome (the checker allows either value for
    // them); every acknowledged one must be there.
    expect(checker.staleReads).toEqual([]);
    expect(await checker.verify()).toEqual([]);
    // Every copy holds what its leader holds, key by key (a read from the copy itself).
    const secret = await new ClusterDir(cluster.dir).readSecret();
    const connections = new Map<string, Connection>();
    try {
      for (const id of ['s1', 's3', 's4']) {
        const [host, port] = splitAddress(client.members.get(id)!.address);
        connections.set(id, await wireConnect({ host, port, secret }));
      }
      for (const key of keys) {
        const p = healed.place(key).partition;
        const value = await client.get(NS, key);
        for (const f of healed.followersOf(p)) {
          expect((await replicaGet(connections.get(f)!, { ns: NS, key, epoch: healed.epoch }))?.value, `${key} on ${f}`).toEqual(value);
        }
      }
    } finally {
      for (const c of connections.values()) c.close();
    }
  }, 120_000);
});
