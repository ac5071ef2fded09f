/**
 * The autoscaler with real processes: it scales the storage tier out by itself once data passes its policy's high
 * watermark (data moved online, nothing lost; a refusal while another rebalance runs is retried after the cooldown),
 * only one of two loops acts, a new leader honours the cooldown, and
 * `shardflow status` shows the decision with its reason; on the compute tier it starts the first node from
 * `shardflow autoscale --once` (minNodes), scales out on in-flight calls and back in, drained, when they stop.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { AutoscaleLoop } from '../../src/cluster/autoscale-loop.js';
import { parseAutoscaleConfig } from '../../src/cluster/autoscale-config.js';
import type { AutoscaleDecision } from '../../src/cluster/autoscale-state.js';
import { LocalProvisioner } from '../../src/cluster/provisioner.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { PeerPool } from '../../src/client/index.js';
import { BusyError } from '../../src/errors/index.js';
import { MigrationDriver } from '../../src/migration/index.js';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { clusterStatus, formatStatus } from '../../src/cluster/status.js';
import { load, missingKeys, SMALL_SLOTS, startSmallCluster, type SmallCluster } from '../cluster/small-cluster.js';
import { SERVICES } from '../cluster/provisioner-conformance.js';

/** Every decision a loop reports, and the first one from now on that matches. */
function record(loop: AutoscaleLoop) {
  const seen: AutoscaleDecision[] = [];
  loop.on('decision', (d: AutoscaleDecision) => seen.push(d));
  return {
    seen,
    next(match: (d: AutoscaleDecision) => boolean, timeoutMs = 20_000): Promise<AutoscaleDecision> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          loop.off('decision', listener);
          reject(new Error(`no matching decision in ${timeoutMs} ms; last: ${seen.at(-1)?.reason}`));
        }, timeoutMs);
        const listener = (d: AutoscaleDecision) => {
          if (!match(d)) return;
          clearTimeout(timer);
          loop.off('decision', listener);
          resolve(d);
        };
        loop.on('decision', listener);
      });
    },
  };
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_PATH, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const loops: AutoscaleLoop[] = [];
afterEach(async () => {
  for (const l of loops.splice(0)) await l.stop();
});

describe('autoscaler: storage tier', () => {
  let cluster: SmallCluster;
  beforeAll(async () => {
    cluster = await startSmallCluster({ storage: 1 });
    await load(await cluster.client(), 2000);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('scales out by itself when keys per node pass the high watermark (retrying after a refusal); one loop acts; status shows why', async () => {
    const config = parseAutoscaleConfig({
      intervalMs: 100,
      storage: {
        metric: 'keys',
        target: 1000,
        highWatermark: 1.2,
        lowWatermark: 0.3,
        minNodes: 1,
        maxNodes: 3,
        scaleOutCooldownMs: 1000,
        scaleInCooldownMs: 600_000,
        stabilizationMs: 300,
      },
    });
    // Another rebalance holds the cluster's rebalance lock: the first attempt is refused and changes nothing.
    const client = await cluster.client();
    const pool = new PeerPool(client.members, await new ClusterDir(cluster.dir).readSecret(), 'test');
    const other = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });

    const a = await AutoscaleLoop.open({ dir: cluster.dir, config, name: 'loop-a' });
    const b = await AutoscaleLoop.open({ dir: cluster.dir, config, name: 'loop-b' });
    loops.push(b, a);
    const ra = record(a);
    const rb = record(b);
    const elected = once(a, 'elected');
    a.start();
    await elected;
    b.start(); // campaigns behind a

    const refused = await ra.next((d) => d.outcome === 'failed');
    const held = await ra.next((d) => d.outcome === 'held');
    expect(await new LocalProvisioner(cluster.dir).count('storage')).toBe(1); // the refused attempt started nothing
    await other.close();
    pool.close();
    // From here on the lock is free: the next attempt, once the 1 s cooldown has passed, goes through.
    const runningNext = ra.next((d) => d.outcome === 'running');
    const doneNext = ra.next((d) => d.outcome === 'done');
    expect(refused).toMatchObject({ from: 1, to: 2 });
    expect(refused.error).toMatch(/^BusyError: another rebalance is running/);
    expect(held.reason).toMatch(/; held: the last attempt failed \(BusyError: .*\), retry in \d+ ms$/);

    const running = await runningNext;
    // Status shows the action while it is under way, after the refused one.
    const during = (await clusterStatus(cluster.dir)).autoscaler[0]!.actions;
    expect(during.map((x) => x.outcome)).toEqual(['failed', 'running']);
    const done = await doneNext;
    expect(done).toMatchObject({ tier: 'storage', action: 'scale', from: 1, to: 2, outcome: 'done', nodes: 1, perNode: 2000 });
    expect(done.reason).toMatch(/^keys\/node 2k > 1\.2 × 1k for [\d.]+ (ms|s): 1 -> 2$/);
    expect(running.reason).toBe(done.reason);
    // Hysteresis: the watermark had to stay crossed for 300 ms before anything was done.
    expect(ra.seen.some((d) => d.outcome === 'none' && /^keys\/node 2k > 1\.2 × 1k for \d+ ms of 300 ms$/.test(d.reason))).toBe(true);
    // The second loop waited its turn: it decided nothing and did nothing.
    expect(b.leading).toBe(false);
    expect(rb.seen).toEqual([]);

    // The data moved online: s2 holds half the slots and every key reads back.
    const status = await clusterStatus(cluster.dir);
    expect(status.nodes.map((n) => [n.id, n.state, n.partitions])).toEqual([
      ['s1', 'up', SMALL_SLOTS / 2],
      ['s2', 'up', SMALL_SLOTS / 2],
    ]);
    expect(await missingKeys(await cluster.client(), 2000)).toEqual([]);
    const after = await ra.next((d) => d.outcome === 'none');
    expect(after).toMatchObject({ nodes: 2, perNode: 1000 });
    expect(after.reason).toBe('keys/node 1k within 0.3–1.2 × 1k');

    // status: the decision and its reason, from the coordinator.
    const shown = (await clusterStatus(cluster.dir)).autoscaler;
    expect(shown).toHaveLength(1);
    expect(shown[0]).toMatchObject({ tier: 'storage', leader: a.candidate, active: true, provisioner: 'local' });
    expect(shown[0]!.actions).toMatchObject([
      { from: 1, to: 2, outcome: 'failed' },
      { from: 1, to: 2, outcome: 'done', reason: done.reason },
    ]);
    const text = formatStatus(await clusterStatus(cluster.dir));
    expect(text).toContain(`autoscaler (${a.candidate}, local provisioner):`);
    expect(text).toMatch(/storage {2}keys, target 1k\/node, 1–3 nodes; last \d\d:\d\d:\d\d {2}keys\/node 1k within/);
    expect(text).toMatch(/\d\d:\d\d:\d\d {2}1 -> 2 {2}done in [\d.]+ (ms|s) {2}keys\/node 2k > 1\.2 × 1k for [\d.]+ (ms|s): 1 -> 2/);

    // Hand-over: b takes over when a stops, and scales nothing (2 nodes are right; the cooldown runs on).
    const takeover = once(b, 'elected');
    await a.stop();
    await takeover;
    const first = await rb.next(() => true);
    expect(first).toMatchObject({ tier: 'storage', nodes: 2, action: 'none' });
    expect((await clusterStatus(cluster.dir)).autoscaler[0]).toMatchObject({ leader: b.candidate, active: true });
  });

  it('decides on the requests storage nodes serve (opsPerSec), as it does on their data', async () => {
    const client = await cluster.client();
    // A second of reads: each node's rate (requests over its last 5 whole seconds) is then well above 6/s.
    for (const end = Date.now() + 1200; Date.now() < end; ) await Promise.all(Array.from({ length: 16 }, (_, i) => client.get('default', `k${i}`)));
    const policy = { metric: 'opsPerSec', target: 5, highWatermark: 1.2, lowWatermark: 0.3, minNodes: 1, maxNodes: 4, scaleOutCooldownMs: 0, scaleInCooldownMs: 0, stabilizationMs: 0 };
    const dry = await run(['autoscale', '--dir', cluster.dir, '--once', '--dry-run', '--storage-policy', JSON.stringify(policy)]);
    expect(dry.stderr).not.toMatch(/error/i);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^storage +\d\d:\d\d:\d\d {2}2 -> [34] {2}dry-run {2}opsPerSec\/node [\d.k]+ > 1\.2 × 5 for .*: 2 -> [34]$/m);
    expect(await new LocalProvisioner(cluster.dir).count('storage')).toBe(2);
  });
});

describe('autoscaler: compute tier', () => {
  let cluster: SmallCluster;
  beforeAll(async () => {
    cluster = await startSmallCluster({ storage: 1, compute: 0, services: SERVICES });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const policy = {
    metric: 'inFlight',
    target: 2,
    highWatermark: 1.5,
    lowWatermark: 0.25,
    minNodes: 1,
    maxNodes: 2,
    scaleOutCooldownMs: 0,
    scaleInCooldownMs: 1000,
    stabilizationMs: 500,
  };

  it('`shardflow autoscale --once` brings the tier up to minNodes (and --dry-run changes nothing)', async () => {
    const args = ['autoscale', '--dir', cluster.dir, '--once', '--compute-policy', JSON.stringify(policy)];
    const dry = await run([...args, '--dry-run']);
    expect(dry.stderr).not.toMatch(/error/i);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^compute +\d\d:\d\d:\d\d {2}0 -> 1 {2}dry-run {2}0 nodes is below minNodes 1: 0 -> 1$/m);
    expect(await new LocalProvisioner(cluster.dir).count('compute')).toBe(0);

    const real = await run(args);
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/^compute +\d\d:\d\d:\d\d {2}0 -> 1 {2}done in [\d.]+ (ms|s) {2}0 nodes is below minNodes 1: 0 -> 1 \[started c1\]$/m);
    expect(await new LocalProvisioner(cluster.dir).count('compute')).toBe(1);
    const shown = (await clusterStatus(cluster.dir)).autoscaler;
    expect(shown).toMatchObject([{ tier: 'compute', active: false, actions: [{ from: 0, to: 1, outcome: 'done' }] }]);
  });

  it('scales out on in-flight calls, and back in, drained, once they stop', async () => {
    const config = parseAutoscaleConfig({ intervalMs: 100, compute: policy });
    const loop = await AutoscaleLoop.open({ dir: cluster.dir, config });
    loops.push(loop);
    const r = record(loop);
    loop.start();
    const idle = await r.next((d) => d.outcome === 'none');
    expect(idle.reason).toMatch(/^inFlight\/node 0 < 0\.25 × 2 for \d+ ms/);
    // While it leads, a one-off pass elsewhere is refused rather than acting beside it.
    const other = await AutoscaleLoop.open({ dir: cluster.dir, config });
    loops.push(other);
    await expect(other.runOnce()).rejects.toThrow(BusyError);

    // Six callers, each always with one 250 ms call in flight: 6 per node on one node.
    const client = await cluster.client();
    let calling = true;
    const outcome = { ok: 0, failed: [] as unknown[] };
    const callers = Array.from({ length: 6 }, async () => {
      while (calling) {
        try {
          await client.call('sleep', { ms: 250 });
          outcome.ok++;
        } catch (err) {
          outcome.failed.push(err);
        }
      }
    });
    const out = await r.next((d) => d.outcome === 'done' || d.outcome === 'failed');
    expect(out).toMatchObject({ tier: 'compute', from: 1, to: 2, outcome: 'done' });
    expect(out.reason).toMatch(/^inFlight\/node [\d.]+ > 1\.5 × 2 for \d+ ms \(step limit|^inFlight\/node [\d.]+ > 1\.5 × 2 for \d+ ms: 1 -> 2$/);

    calling = false;
    await Promise.all(callers);
    const back = await r.next((d) => d.outcome === 'done' || d.outcome === 'failed');
    expect(back).toMatchObject({ tier: 'compute', from: 2, to: 1, outcome: 'done', detail: 'drained and stopped c2' });
    expect(back.reason).toMatch(/^inFlight\/node 0 < 0\.25 × 2 for \d+ ms: 2 -> 1$/);
    expect(outcome.failed).toEqual([]);
    expect(outcome.ok).toBeGreaterThan(12);

    const status = await clusterStatus(cluster.dir);
    expect(status.nodes.filter((n) => n.role === 'compute').map((n) => n.id)).toEqual(['c1']);
    expect(status.autoscaler[0]!.actions.map((a) => `${a.from}->${a.to} ${a.outcome}`)).toEqual(['0->1 done', '1->2 done', '2->1 done']);
    expect(formatStatus(status)).toContain(back.reason);
  });
});
