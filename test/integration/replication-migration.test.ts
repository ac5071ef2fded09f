/**
 * kill -9 of a partition's leader in the middle of a migration, on a replicated namespace (3 copies, 4 storage
 * nodes), with writers and readers running: the move is aborted (no move entry left, the target keeps no copy), an
 * in-sync follower leads the partition at a new epoch, every acknowledged write is readable, and once the killed node
 * is back the copies are complete again and a new rebalance completes. The move is slowed with a bandwidth limit so
 * that "the middle" lasts long enough to hit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { fullyReplicated, tableWhen } from '../harness/tables.js';
import { WriteChecker } from '../harness/write-checker.js';
import { addFourthStorageNode, expectBallastIntact, writeBallast } from '../harness/ballast.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect, PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver, type JobRecord } from '../../src/migration/index.js';
import { scaleLocalStorage } from '../../src/cluster/rebalance-local.js';
import { InvalidArgumentError } from '../../src/errors/index.js';
import type { RoutingTable } from '../../src/index.js';

const NS = 'repmig';
const BALLAST = 3000;
let cluster: TestCluster;
let client: ShardflowClient;
let secret: Uint8Array;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 }); // the default namespace: one copy, so that setup is quick
  client = await connect({ dir: cluster.dir, name: 'repmig', timeoutMs: 3000 });
  secret = await new ClusterDir(cluster.dir).readSecret();
  // 16 slots of ~190 KiB each: a move at 128 KiB/s takes over a second.
  await client.createNamespace(NS, { scheme: 'hash', slotCount: 16, copies: 3 });
  await tableWhen(client, NS, fullyReplicated);
  await writeBallast(client, NS, BALLAST);
  await addFourthStorageNode(cluster);
  // Balance the other namespaces first, so that the move the test interrupts is one of NS's.
  await withDriver('repmig-setup', (d) => d.run(d.plan().filter((m) => m.namespace !== NS), { concurrency: 8 }));
}, 120_000);
afterAll(async () => {
  await client?.close();
  await cluster?.stop();
});

async function withDriver<T>(name: string, work: (d: MigrationDriver) => Promise<T>): Promise<T> {
  const pool = new PeerPool(client.members, secret, name);
  try {
    const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
    try {
      return await work(driver);
    } finally {
      await driver.close();
    }
  } finally {
    pool.close();
  }
}

function copiesPerNode(t: RoutingTable): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of t.partitions()) for (const n of [t.ownerOf(p)!, ...t.followersOf(p)]) out[n] = (out[n] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort());
}

/** Waits until no storage node keeps data of an NS partition it neither leads nor follows. */
async function noStrayCopies(timeoutMs = 20_000): Promise<void> {
  const pool = new PeerPool(client.members, secret, 'repmig-stats');
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const stray: Record<string, number> = {};
      for (const m of client.members.ready('storage')) {
        const peer = await pool.get(m.id, Date.now() + 2000);
        const stats = await peer.call<{ namespaces: Record<string, { stray?: number }> }>('node.stats', null, { timeoutMs: 2000 });
        stray[m.id] = stats.namespaces[NS]?.stray ?? 0;
      }
      if (Object.values(stray).every((n) => n === 0)) return;
      if (Date.now() > deadline) throw new Error(`stray copies left: ${JSON.stringify(stray)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    pool.close();
  }
}

describe('replicated namespace: leader killed mid-migration', () => {
  it('aborts the move, fails over to an in-sync follower, loses no acknowledged write, and heals', async () => {
    const checker = new WriteChecker(client, NS, Array.from({ length: 400 }, (_, i) => `k${i}`));
    checker.start();
    await checker.progress(200);

    let copying!: (j: JobRecord) => void;
    const seen = new Promise<JobRecord>((r) => (copying = r));
    const run = withDriver('repmig-move', async (d) => {
      const moves = d.plan().filter((m) => m.namespace === NS);
      expect(moves.length).toBeGreaterThan(0);
      return d.run(moves, {
        concurrency: 1,
        maxBytesPerSec: 128 * 1024,
        maxP99Ratio: 0,
        onProgress: (j) => j.step === 'copying' && j.copiedKeys > 0 && copying({ ...j }),
      });
    }).catch((err: unknown) => err as Error);
    const job = await seen;
    const partition = job.partitions[0]!;
    const before = client.catalog.table(NS);
    expect(before.ownerOf(partition)).toBe(job.from); // the source of a move is the leader
    const heirs = before.followersOf(partition);
    expect(heirs).toHaveLength(2);

    await cluster.kill9(job.from);
    expect(await run).toBeInstanceOf(Error);

    // Failover: an in-sync follower leads at a later epoch; the killed node holds nothing; no move is left; the
    // target did not become a holder.
    const after = await tableWhen(
      client,
      NS,
      (t) => t.epoch > before.epoch && t.partitions().every((p) => t.ownerOf(p) !== job.from && !t.followersOf(p).includes(job.from) && !t.migrationOf(p)),
    );
    expect(heirs).toContain(after.ownerOf(partition));
    expect([after.ownerOf(partition), ...after.followersOf(partition)]).not.toContain(job.to);

    // Writes to the failed-over partition go through at its new leader (a key in its slot, found by hash).
    const probe = Array.from({ length: 10_000 }, (_, i) => `probe${i}`).find((k) => after.place(k).partition === partition)!;
    await client.put(NS, probe, 'after failover');
    expect(await client.get(NS, probe)).toBe('after failover');
    await checker.progress(200);
    await expectBallastIntact(client, NS, BALLAST);

    // With the node back, the controller restores every partition's copies; a new rebalance then completes.
    await cluster.restart(job.from);
    await tableWhen(client, NS, fullyReplicated, 60_000);
    const moved = await withDriver('repmig-again', async (d) => {
      const results = await d.run(d.plan(), { concurrency: 4 });
      expect(d.plan()).toEqual([]);
      return results;
    });
    expect(moved.length).toBeGreaterThan(0);
    // Every copy is placed, followers too: 16 partitions x 3 copies over 4 nodes is 12 copies each.
    const balanced = await tableWhen(client, NS, fullyReplicated, 60_000);
    expect(copiesPerNode(balanced)).toEqual({ s1: 12, s2: 12, s3: 12, s4: 12 });
    // A follower whose copy moved away drops its data (each node's counters: partitions with keys it does not hold).
    await noStrayCopies();
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  }, 180_000);

  it('scale-in 4 -> 3 drains the leaving node of leader and follower copies under writers; below 3 copies is refused', async () => {
    const checker = new WriteChecker(client, NS, Array.from({ length: 400 }, (_, i) => `d${i}`));
    checker.start();
    await checker.progress(200);
    await scaleLocalStorage(cluster.dir, 3, { write: () => undefined });
    // Drained by the scale itself, followers too — not left to re-replication after s4 stopped.
    const drained = (await client.catalog.refresh(NS))!;
    expect(drained.partitions().filter((p) => drained.holds(p, 's4'))).toEqual([]);
    expect(fullyReplicated(drained)).toBe(true);
    expect(copiesPerNode(drained)).toEqual({ s1: 16, s2: 16, s3: 16 });
    await checker.progress(200);

    // Two nodes cannot keep 3 copies apart: refused before anything moves or stops.
    await expect(scaleLocalStorage(cluster.dir, 2, { write: () => undefined })).rejects.toBeInstanceOf(InvalidArgumentError);
    const after = await client.catalog.refresh(NS);
    expect(after!.epoch).toBe(drained.epoch);
    expect(client.members.ready('storage').map((m) => m.id).sort()).toEqual(['s1', 's2', 's3']);
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  }, 120_000);
});
