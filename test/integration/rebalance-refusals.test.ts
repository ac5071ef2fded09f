/**
 * What `rebalance` and `scale storage=N` refuse, each with a clear reason and nothing changed: a second rebalance
 * while one runs, a node that does not answer; and what `status` says about a move whose driver is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { startLocalCluster } from '../../src/cluster/local-cluster.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { clusterStatus, formatStatus } from '../../src/cluster/status.js';
import { PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver } from '../../src/migration/index.js';

let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 }); // one copy: these tests count partitions moved
  client = await cluster.client();
  await client.createNamespace('small', { scheme: 'hash', slotCount: 16, copies: 1 });
  const joined = cluster.nextMemberEvent((e) => e.type === 'join' && e.member.id === 's4');
  await startLocalCluster({ dir: cluster.dir, storage: 4, compute: 0 }); // s4 holds nothing yet: a rebalance has work
  await joined;
});
afterAll(async () => {
  await cluster?.stop();
});


/** Epochs and move entries of every namespace: what a refused command must leave as it was. */
async function routingState(): Promise<string> {
  const out: Record<string, unknown> = {};
  for (const name of client.catalog.names()) {
    const t = await client.catalog.refresh(name);
    out[name] = { epoch: t!.epoch, migrations: t!.record.migrations ?? {} };
  }
  return JSON.stringify(out);
}

async function openDriver(): Promise<{ driver: MigrationDriver; pool: PeerPool }> {
  const pool = new PeerPool(client.members, await new ClusterDir(cluster.dir).readSecret(), 'refusals');
  const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
  return { driver, pool };
}

describe('rebalance refusals', () => {
  it('--dry-run shows the plan with sizes and an estimate, as text or JSON, and changes nothing', async () => {
    await client.batch('small', Array.from({ length: 200 }, (_, i) => ({ op: 'put' as const, key: `d${i}`, value: 'v'.repeat(100) })));
    const before = await routingState();
    const text = await cli(['rebalance', '--dry-run', '--dir', cluster.dir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^plan: \d+ partitions to move, [\d.]+ KiB, about [\d.]+ (ms|s)$/m);
    expect(text.stdout).toMatch(/^ {2}small: s[123] -> s4 {2}\d+ partitions?, \d+ keys, [\d.]+ (B|KiB)$/m);
    const json = await cli(['rebalance', '--dry-run', '--json', '--dir', cluster.dir]);
    const plan = JSON.parse(json.stdout) as { moves: { namespace: string; partition: number; to: string; keys: number; bytes: number }[]; totalBytes: number; estimatedSeconds: number };
    const small = plan.moves.filter((m) => m.namespace === 'small');
    expect(small).toHaveLength(4); // a quarter of 16 slots to the empty s4
    expect(small.every((m) => m.to === 's4')).toBe(true);
    expect(small.reduce((a, m) => a + m.keys, 0)).toBeGreaterThan(0);
    expect(plan.totalBytes).toBe(plan.moves.reduce((a, m) => a + m.bytes, 0));
    expect(plan.estimatedSeconds).toBeGreaterThan(0);
    const scale = await cli(['scale', 'storage=6', '--dry-run', '--dir', cluster.dir]);
    expect(scale.stdout).toMatch(/-> \(new 2\)/); // planned over the nodes there would be
    expect(await routingState()).toBe(before);
    expect(client.members.ready('storage')).toHaveLength(4); // nothing started
  });

  it('refuses a rebalance or a storage scale while another rebalance runs, and changes nothing', async () => {
    const before = await routingState();
    const { driver, pool } = await openDriver();
    try {
      const r = await cli(['rebalance', '--dir', cluster.dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/error \[BUSY\]: another rebalance is running \(rebalance@.+, since .+\)/);
      const s = await cli(['scale', 'storage=5', '--dir', cluster.dir]);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(/another rebalance is running/);
      const status = await clusterStatus(cluster.dir);
      expect(status.migrations.rebalance?.driver).toMatch(/^rebalance@/);
      expect(formatStatus(status)).toMatch(/rebalance running: rebalance@/);
    } finally {
      await driver.close();
      pool.close();
    }
    expect(await routingState()).toBe(before);
    expect(client.members.ready('storage').map((m) => m.id).sort()).toEqual(['s1', 's2', 's3', 's4']); // no s5 started
  });

  it('refuses to start when a node the plan needs does not answer, and changes nothing', async () => {
    const before = await routingState();
    const pid = await cluster.pid('s1');
    process.kill(pid, 'SIGSTOP'); // s1 holds partitions that would move, and cannot answer now
    try {
      const r = await cli(['rebalance', '--dir', cluster.dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/error \[UNAVAILABLE\]: storage node s1 (at 127\.0\.0\.1:\d+ does not answer|is not registered as ready)/);
      // A scale-out is refused the same way, before its new node starts (none left running, no s5 in the directory).
      const s = await cli(['scale', 'storage=5', '--dir', cluster.dir]);
      expect(s.code).toBe(1);
      expect(s.stderr).toMatch(/error \[UNAVAILABLE\]: storage node s1 /);
      expect((await new ClusterDir(cluster.dir).listNodes()).map((n) => n.id)).not.toContain('s5');
      expect(client.members.get('s5')).toBeUndefined();
      expect(await routingState()).toBe(before);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Its lease may have lapsed while it was frozen: start it afresh so later tests see it ready.
    await cluster.kill9('s1').catch(() => undefined);
    await cluster.restart('s1');
  });

  it('skips planned moves the table no longer matches (a range merged away, an owner changed) and moves the rest', async () => {
    await client.createNamespace('ordered', { scheme: 'range' });
    await client.put('ordered', 'a', 1);
    const t = await client.catalog.refresh('ordered');
    const owner = t!.ownerOf(0)!;
    const to = ['s1', 's2', 's3', 's4'].find((id) => id !== owner)!;
    const { driver, pool } = await openDriver();
    try {
      const results = await driver.run([
        { namespace: 'ordered', partition: 0, from: owner, to },
        { namespace: 'ordered', partition: 999, from: owner, to }, // no such range (merged away since the plan)
      ]);
      expect(results.flatMap((r) => r.partitions)).toEqual([0]);
    } finally {
      await driver.close();
      pool.close();
    }
    expect((await client.catalog.refresh('ordered'))!.ownerOf(0)).toBe(to);
    expect(await client.get('ordered', 'a')).toBe(1);
  });

  it('status shows a move whose driver is gone as stuck, with why; the next rebalance rolls it back', async () => {
    const table = client.catalog.table('small');
    const partition = table.partitionsOf('s2')[0]!;
    // A move entry with no job record: what a driver leaves if it dies before any source began exporting.
    await client.catalog.update('small', (t) => t.withMigration(partition, { to: 's4', job: 'ghost', startedAt: new Date().toISOString() }));
    const status = await clusterStatus(cluster.dir);
    const stuck = status.migrations.migrations.find((m) => m.job === 'ghost');
    expect(stuck).toMatchObject({ state: 'stuck', namespace: 'small', partitions: [partition], from: 's2', to: 's4' });
    expect(stuck!.why).toMatch(/its driver is gone/);
    expect(formatStatus(status)).toMatch(/STUCK {2}small\/\d+ {2}s2 -> s4[\s\S]*why: its driver is gone/);

    const r = await cli(['rebalance', '--dir', cluster.dir]);
    expect(r.code, r.stderr).toBe(0);
    const after = await client.catalog.refresh('small');
    expect(after!.record.migrations ?? {}).toEqual({});
    expect(after!.partitionsOf('s4')).toHaveLength(4); // and the rebalance itself then ran
  });
});
