/**
 * Merging small replicated ranges whose copies are on different nodes, with real node processes: 4 storage nodes, a
 * range namespace with 3 copies, two neighbouring ranges with different leaders and one follower each that the other
 * lacks. The plan puts the smaller range's copies where its neighbour's are (a follower copy moves, then the lead is
 * handed over) and the common leader merges them, while writers write to both ranges: no acknowledged write lost,
 * every copy of the merged range holds every key, and the node that gave up its copy holds none of it any more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver, planMerges, runMerges, type PlannedMerge } from '../../src/migration/index.js';
import { compareKeys } from '../../src/partitioning/index.js';
import { replicaGet } from '../harness/replica-read.js';

const NS = 'repmerge';
let cluster: TestCluster;
let client: ShardflowClient;
let pool: PeerPool;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 4, copies: 1 });
  client = await cluster.client();
  pool = new PeerPool(client.members, await new ClusterDir(cluster.dir).readSecret(), 'test-repmerge');
}, 60_000);
afterAll(async () => {
  pool?.close();
  await cluster?.stop();
});

async function call<T>(node: string, method: string, params: unknown): Promise<T> {
  return (await pool.get(node, Date.now() + 5000)).call<T>(method, params, { timeoutMs: 5000 });
}

/** Polls `probe` until it returns a value (not undefined): for what no event announces (a node's range stats). */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('merging replicated ranges on different nodes', () => {
  it('aligns the smaller range\'s copies with its neighbour\'s, then merges them, under writes', async () => {
    // autoMerge off: this test runs the merge itself (the controller would otherwise do it).
    const created = await client.createNamespace(NS, { scheme: 'range', splitBytes: 1024, splitOpsSustainMs: 1000, copies: 3, autoMerge: false });
    const a = created.ownerOf(0)!;
    const [b, c] = created.followersOf(0);
    const d = client.members.ready('storage').map((m) => m.id).find((id) => ![a, b, c].includes(id))!;
    // Set up while empty (nothing to copy yet): range 0 on {a; b, c}, range 1 on {b; c, d}.
    await client.catalog.update(NS, (t) => t.withSplit(0, 'm').withOwners(new Map([[1, b!]])).withFollowers(new Map([[1, [c!, d]]])));
    const keys = [...Array.from({ length: 12 }, (_, i) => `a${i}`), ...Array.from({ length: 5 }, (_, i) => `n${i}`)];
    await client.batch(NS, keys.map((key) => ({ op: 'put' as const, key, value: 0 })));

    const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
    try {
      // Both leaders must have watched their range for a sustain window before it can be planned for a merge.
      const plan = await eventually<PlannedMerge[]>(async () => {
        const p = await planMerges(driver.context, { namespaces: [NS] });
        return p.length > 0 ? p : undefined;
      });
      // Range 1 is the smaller: its copy on d (a node range 0 does not use) moves to a, then a takes its lead.
      expect(plan).toEqual([
        {
          namespace: NS,
          partition: 1,
          from: b,
          to: a,
          left: 0,
          right: 1,
          bytes: expect.any(Number),
          steps: [
            { role: 'follower', from: d, to: a },
            { role: 'lead', from: b, to: a },
          ],
        },
      ]);

      const acked = new Map<string, number>();
      let writing = true;
      let writes = 0;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let round = 1; writing; round++) {
          const key = keys[w + 4 * (round % 4)]!; // each writer has its own keys, in both ranges
          await client.put(NS, key, round * 10 + w);
          acked.set(key, round * 10 + w);
          writes++;
        }
      });
      const before = writes;
      const results = await runMerges(driver.context, plan);
      const during = writes - before;
      writing = false;
      await Promise.all(writers);
      expect(during).toBeGreaterThan(0); // writes went on while the copies moved and the ranges merged
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ merged: true, left: 0, right: 1 });
      expect(results[0]!.moves.map((m) => [m.from, m.to, m.partitions])).toEqual([
        [b, a, [1]], // the follower copy is copied from the leader of the moment
        [b, a, [1]],
      ]);

      const table = (await client.catalog.refresh(NS))!;
      expect(table.rangesFor('', null)).toEqual([{ id: 0, start: '', end: null, owner: a }]);
      expect([...table.followersOf(0)].sort()).toEqual([b, c].sort());
      const expected = keys.map((k) => [k, acked.get(k) ?? 0] as const).sort(([x], [y]) => compareKeys(x, y));
      for (const [key, value] of expected) expect(await client.get(NS, key)).toBe(value);
      // Every copy of the merged range holds every key as acknowledged (a write is answered once all in-sync copies hold it).
      for (const node of [b!, c!]) {
        for (const [key, value] of expected) {
          const got = await replicaGet(await pool.get(node, Date.now() + 5000).then((p) => p.get()), { ns: NS, key, epoch: table.epoch });
          expect([node, key, got?.value]).toEqual([node, key, value]);
        }
      }
      const leaderStats = await call<{ ranges: { id: number; keys: number }[] }>(a, 'range.stats', { ns: NS });
      expect(leaderStats.ranges.map((r) => [r.id, r.keys])).toEqual([[0, keys.length]]);
      // d gave up its copy of range 1: it drops the data.
      await eventually(async () => {
        const s = await call<{ namespaces: Record<string, { keys: number }> }>(d, 'node.stats', null);
        return (s.namespaces[NS]?.keys ?? 0) === 0 ? true : undefined;
      });
    } finally {
      await driver.close();
    }
  }, 90_000);
});
