/**
 * Online migration with real processes: a fourth storage node joins a loaded three-node cluster and a rebalance moves
 * a quarter of the slots to it while writers keep writing; afterwards every acknowledged write is there with its
 * latest value, and the moves were the planner's minimum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { startLocalCluster } from '../../src/cluster/local-cluster.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect, PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver, planRebalance } from '../../src/migration/index.js';
import { migrationJobKey } from '../../src/coordination/index.js';
import { scaleLocalStorage } from '../../src/cluster/rebalance-local.js';

let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 }); // one copy: these tests count partitions moved
  client = await cluster.client();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('online migration', () => {
  it('scales 3 -> 4 storage nodes under concurrent writes with no acknowledged write lost', async () => {
    for (let i = 0; i < 10_000; i += 500) {
      await client.batch('default', Array.from({ length: 500 }, (_, j) => ({ op: 'put' as const, key: `k${i + j}`, value: 0 })));
    }
    // Writers: each owns its own keys (k ≡ w mod 16) and remembers the last value acknowledged for each.
    const acked = new Map<string, number>();
    let writing = true;
    let writes = 0;
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let round = 1; writing; round++) {
        const key = `k${w + 16 * ((round * 37) % 625)}`;
        await client.put('default', key, round * 100 + w);
        acked.set(key, round * 100 + w);
        writes++;
      }
    });

    const joined = cluster.nextMemberEvent((e) => e.type === 'join' && e.member.id === 's4');
    await startLocalCluster({ dir: cluster.dir, storage: 4, compute: 0 });
    await joined;
    const pool = new PeerPool(client.members, await new ClusterDir(cluster.dir).readSecret(), 'test-rebalance');
    const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
    const moves = driver.plan();
    expect(moves.length).toBe(1024); // 4096 slots: a quarter, each from an over-target node
    expect(moves.every((m) => m.to === 's4')).toBe(true);
    const before = writes;
    const results = await driver.run(moves, { concurrency: 8 });
    writing = false;
    await Promise.all(writers);
    const ctx = driver.context;

    expect(writes - before).toBeGreaterThan(100); // the writers really wrote during the moves
    expect(results.every((r) => r.to === 's4')).toBe(true);
    const table = await client.catalog.refresh('default');
    expect(table!.partitionsOf('s4')).toHaveLength(1024);
    expect(planRebalance(ctx)).toHaveLength(0);
    await driver.close();
    pool.close();
    const fences = results.map((r) => r.fenceMs).sort((a, b) => a - b);
    expect(fences[Math.floor(fences.length / 2)]).toBeLessThan(200);

    const wrong: string[] = [];
    await Promise.all(
      [...acked].map(async ([key, value]) => {
        const v = await client.get('default', key);
        if (v !== value) wrong.push(`${key}: ${String(v)} != ${value}`);
      }),
    );
    expect(wrong).toEqual([]);
    let count = 0;
    for await (const _ of client.scan('default', {})) count++;
    expect(count).toBe(10_000);
  });

  it('scales 4 -> 3 under writes: the leaving node hands its data over before it stops', async () => {
    const acked = new Map<string, number>();
    let writing = true;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let round = 1; writing; round++) {
        const key = `k${w + 8 * ((round * 41) % 1250)}`;
        await client.put('default', key, -(round * 100 + w));
        acked.set(key, -(round * 100 + w));
      }
    });
    const left = cluster.nextMemberEvent((e) => e.member.id === 's4' && e.type === 'leave', 120_000);
    await scaleLocalStorage(cluster.dir, 3);
    await left;
    writing = false;
    await Promise.all(writers);
    const table = await client.catalog.refresh('default');
    expect(table!.partitionsOf('s4')).toHaveLength(0);
    expect([1, 2, 3].map((i) => table!.partitionsOf(`s${i}`).length).sort()).toEqual([1365, 1365, 1366]);
    for (const [key, value] of acked) expect(await client.get('default', key)).toBe(value);
    let count = 0;
    for await (const _ of client.scan('default', {})) count++;
    expect(count).toBe(10_000);
  });

  it('a driver that dies while requests are held: its job record goes with its lease and the source rolls back', async () => {
    const patient = await connect({ dir: cluster.dir, timeoutMs: 30_000 });
    try {
      const table = patient.catalog.table('default');
      const slot = table.place('orphaned').partition;
      const owner = table.ownerOf(slot)!;
      const job = 'dead-driver-job';
      const lease = await patient.coordinator.grantLease(1000);
      await patient.coordinator.put(migrationJobKey(job), JSON.stringify({ job }), { lease });
      await patient.catalog.update('default', (t) => t.withMigration(slot, { to: 's1', job, startedAt: new Date().toISOString() }));
      const secret = await new ClusterDir(cluster.dir).readSecret();
      const pool = new PeerPool(patient.members, secret, 'test-driver');
      const source = await pool.get(owner, Date.now() + 5000);
      await source.call('mig.export.begin', { job, ns: 'default', partition: slot });
      await source.call('mig.export.fence', { job, partition: slot });
      pool.close();
      await lease.revoke(); // the "driver" is gone, the partition held
      const started = Date.now();
      await patient.put('default', 'orphaned', 'still writable');
      // Served again once the source saw the record gone (checked once a second), well before the 10 s fence limit.
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await patient.get('default', 'orphaned')).toBe('still writable');
      const after = await patient.catalog.refresh('default');
      expect(after!.migrationOf(slot)).toBeUndefined();
      expect(after!.ownerOf(slot)).toBe(owner);
    } finally {
      await patient.close();
    }
  });
});
