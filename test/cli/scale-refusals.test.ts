/**
 * What `up`, `node`, `scale` and `autoscale` refuse before anything changes, and what a dry run of `scale compute=N`
 * prints: real processes, a real cluster directory, exit codes and output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../harness/cli.js';
import { restartLocalNode, stopLocalCluster } from '../../src/cluster/local-cluster.js';
import { isAlive } from '../../src/cluster/spawn.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { openCoordinator } from '../../src/client/connect.js';
import { MEMBERS_PREFIX, registerNode } from '../../src/coordination/index.js';

let root: string;
let dir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sf-scale-refusals-'));
  dir = join(root, 'cluster');
});
afterAll(async () => {
  await stopLocalCluster(dir).catch(() => undefined);
  for (const n of await new ClusterDir(dir).listNodes().catch(() => [])) if (n.pid && isAlive(n.pid)) process.kill(n.pid, 'SIGKILL');
  await rm(root, { recursive: true, force: true });
});

async function nodeIds(d = dir): Promise<string[]> {
  return (await new ClusterDir(d).listNodes()).map((n) => n.id);
}

async function memberIds(): Promise<string[]> {
  const { coordinator } = await openCoordinator({ dir });
  try {
    return (await coordinator.list(MEMBERS_PREFIX)).map((e) => e.key.slice(MEMBERS_PREFIX.length)).sort();
  } finally {
    await coordinator.close();
  }
}

async function waitForMembers(ids: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (JSON.stringify(await memberIds()) !== JSON.stringify(ids)) {
    if (Date.now() > deadline) throw new Error(`members are ${(await memberIds()).join(', ')}, not ${ids.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('refused before anything is written or started', () => {
  it('up --storage 2 --copies 3: refused, no directory left behind', async () => {
    const fresh = join(root, 'copies');
    const r = await cli(['up', '--storage', '2', '--copies', '3', '--compute', '0', '--detach', '--dir', fresh]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error \[INVALID_ARGUMENT\]: --copies 3 needs at least 3 storage nodes .*--storage is 2/);
    expect(existsSync(fresh)).toBe(false);
  });

  it('up with a services module that does not exist: refused, no directory left behind', async () => {
    const fresh = join(root, 'services');
    const r = await cli(['up', '--storage', '1', '--compute', '0', '--services', join(root, 'nope.ts'), '--detach', '--dir', fresh]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONFIG_ERROR.*does not exist/);
    expect(existsSync(fresh)).toBe(false);
  });

  it('node --advertise with a port, or --listen 0.0.0.0 without --advertise: refused', async () => {
    const base = ['node', '--role', 'storage', '--id', 's9', '--dir', join(root, 'none')];
    const port = await cli([...base, '--listen', '0.0.0.0:7000', '--advertise', '10.0.0.11:7000']);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--advertise is the host only; the node adds the port .*give --advertise 10\.0\.0\.11/);
    const any = await cli([...base, '--listen', '0.0.0.0:7000']);
    expect(any.code).toBe(2);
    expect(any.stderr).toMatch(/--listen 0\.0\.0\.0:7000 listens on every interface.*add --advertise/);
    const unspecified = await cli([...base, '--listen', '0.0.0.0:7000', '--advertise', '0.0.0.0']);
    expect(unspecified.code).toBe(2);
    expect(unspecified.stderr).toMatch(/not an address other hosts can connect to/);
    const junk = await cli([...base, '--advertise', 'http://h1/']);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/--advertise must be a host name or an IP address/);
  });
});

describe('on a running local cluster', () => {
  beforeAll(async () => {
    const up = await cli(['up', '--storage', '1', '--compute', '1', '--detach', '--dir', dir], 120_000);
    expect(up.code, up.stderr).toBe(0);
  }, 130_000);

  it('scale compute=N --dry-run (and --json) says what would happen and changes nothing', async () => {
    const pids = (await new ClusterDir(dir).listNodes()).map((n) => n.pid);
    const out = await cli(['scale', 'compute=3', '--dry-run', '--dir', dir]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/plan: compute nodes 1 -> 3\n {2}would start c2, c3\ndry run: nothing changed/);
    const down = await cli(['scale', 'compute=0', '--dry-run', '--json', '--dir', dir]);
    expect(down.code, down.stderr).toBe(0);
    expect(JSON.parse(down.stdout)).toEqual({ tier: 'compute', from: 1, to: 0, started: [], stopped: ['c1'], dryRun: true });
    expect(await nodeIds()).toEqual(['s1', 'c1'].sort());
    expect((await new ClusterDir(dir).listNodes()).map((n) => n.pid)).toEqual(pids);
    expect((await new ClusterDir(dir).listNodes()).every((n) => isAlive(n.pid))).toBe(true);
    const rate = await cli(['scale', 'compute=2', '--max-rate', '1mb', '--dir', dir]);
    expect(rate.code).toBe(2);
    expect(rate.stderr).toMatch(/--max-rate shapes how storage data moves; compute nodes hold no data/);
    expect(await nodeIds()).toEqual(['c1', 's1']);
  });

  it('the README autoscale sequence: --storage-policy with --once --dry-run decides and changes nothing', async () => {
    const policy = JSON.stringify({
      metric: 'keys', target: 1000000, highWatermark: 1.2, lowWatermark: 0.5,
      minNodes: 3, maxNodes: 12, scaleOutCooldownMs: 300000, scaleInCooldownMs: 3600000, stabilizationMs: 60000,
    });
    const r = await cli(['autoscale', '--storage-policy', policy, '--once', '--dry-run', '--dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^storage /m);
    expect(await nodeIds()).toEqual(['c1', 's1']);
  });

  it('scale and up on an attached directory (nodes that run elsewhere): refused, nothing started', async () => {
    const cluster = await new ClusterDir(dir).readCluster();
    const coordinator = cluster.coordinator as { host: string; port: number };
    const attached = join(root, 'attached');
    const a = await cli(['attach', '--dir', attached, '--coordinator', `embedded://${coordinator.host}:${coordinator.port}`, '--secret-file', join(dir, 'secret')]);
    expect(a.code, a.stderr).toBe(0);
    const members = await memberIds();
    for (const target of ['storage=3', 'compute=3']) {
      const r = await cli(['scale', target, '--dir', attached]);
      expect(r.code, target).toBe(2);
      expect(r.stderr).toMatch(/CONFIG_ERROR.*has started no node processes.*'scale' only starts and stops this directory's own local processes.*--hook/);
    }
    const up = await cli(['up', '--storage', '3', '--compute', '0', '--detach', '--dir', attached]);
    expect(up.code).toBe(2);
    expect(up.stderr).toMatch(/CONFIG_ERROR.*points at a cluster that runs elsewhere/);
    expect(await memberIds()).toEqual(members);
    expect(await readdir(attached)).toEqual(expect.not.arrayContaining(['nodes', 'coordinator']));
  });

  it('scale on a local directory whose cluster has nodes from elsewhere: refused, naming them', async () => {
    const { coordinator } = await openCoordinator({ dir });
    const other = await registerNode(coordinator, { id: 's7', role: 'storage', address: '10.9.9.9:7000', capacity: 1, pid: 1 });
    try {
      const r = await cli(['scale', 'storage=3', '--dir', dir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/CONFIG_ERROR.*storage node s7 of this cluster is not running processes started from/);
      expect(await nodeIds()).toEqual(['c1', 's1']);
    } finally {
      await other.leave();
      await coordinator.close();
    }
  });

  it('a second live node with an id in use is refused; a node restarted right after kill -9 registers', async () => {
    const s1 = (await new ClusterDir(dir).readNode('s1'))!;
    const dup = await cli(['node', '--role', 'storage', '--id', 's1', '--dir', dir, '--data', join(root, 'dup-data')], 60_000);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/error \[CONFIG_ERROR\]: node id s1 is in use by another live node \(at 127\.0\.0\.1:\d+, pid \d+\)/);
    expect((await new ClusterDir(dir).readNode('s1'))!.pid).toBe(s1.pid);
    const { coordinator } = await openCoordinator({ dir });
    try {
      const record = JSON.parse((await coordinator.get(`${MEMBERS_PREFIX}s1`))!.value) as { address: string; pid: number };
      expect(record).toMatchObject({ address: s1.address, pid: s1.pid }); // the live node's record, untouched
    } finally {
      await coordinator.close();
    }
    // kill -9, then start again at once, while the old lease still lives: the new process waits it out.
    process.kill(s1.pid!, 'SIGKILL');
    // Gone from the process table first (a signalled process lingers a moment; restart would take it for running).
    for (let i = 0; i < 200 && isAlive(s1.pid!); i++) await new Promise((r) => setTimeout(r, 10));
    const t0 = Date.now();
    const again = await restartLocalNode(dir, 's1');
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(again.pid).not.toBe(s1.pid);
    await waitForMembers(['c1', 's1']);
  }, 90_000);

  it('scale storage=N refuses before starting anything when an existing node does not answer', async () => {
    const s1 = (await new ClusterDir(dir).readNode('s1'))!;
    process.kill(s1.pid!, 'SIGSTOP');
    try {
      const r = await cli(['scale', 'storage=2', '--dir', dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/error \[UNAVAILABLE\]: storage node s1 (at 127\.0\.0\.1:\d+ does not answer|is not registered as ready)/);
      expect(await nodeIds()).toEqual(['c1', 's1']); // no s2 started
    } finally {
      process.kill(s1.pid!, 'SIGCONT');
    }
    await waitForMembers(['c1', 's1']); // s1 registers again if its lease lapsed while frozen
    expect(JSON.parse(await readFile(new ClusterDir(dir).clusterFile, 'utf8')).coordinator).toBeDefined();
  });
});
