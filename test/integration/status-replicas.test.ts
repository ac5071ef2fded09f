/**
 * `shardflow status` on a real cluster with a replicated namespace: copies, leaders and follower lag in `--json`;
 * after kill -9 of a node, its partitions led elsewhere and every partition flagged under-replicated (3 nodes, 3
 * copies: no spare node to copy to).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { cli } from '../harness/cli.js';
import type { ClusterStatus, NamespaceStatus } from '../../src/cluster/status.js';

const NS = 'rep';
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 }); // the default namespace: one copy, so that status lists only NS as replicated
  const client = await cluster.client();
  await client.createNamespace(NS, { scheme: 'hash', slotCount: 32, copies: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

/** Runs `status --json` until `ok` holds for the namespace, or fails at the deadline with the last answer. */
async function statusWhen(ok: (ns: NamespaceStatus, s: ClusterStatus) => boolean, timeoutMs = 30_000): Promise<{ ns: NamespaceStatus; s: ClusterStatus }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await cli(['status', '--json', '--dir', cluster.dir]);
    last = r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr}`;
    if (r.code === 0) {
      const s = JSON.parse(r.stdout) as ClusterStatus;
      const ns = s.namespaces.find((n) => n.name === NS);
      if (ns && ok(ns, s)) return { ns, s };
    }
    if (Date.now() > deadline) throw new Error(`status condition not met in ${timeoutMs} ms; last: ${last.slice(0, 4000)}`);
    await sleep(200);
  }
}

const lagsKnown = (ns: NamespaceStatus) =>
  ns.replicas !== undefined && ns.replicas.every((r) => Object.values(r.lagMs).every((ms) => typeof ms === 'number' && ms >= 0));

describe('status: replicas on a real cluster', () => {
  it('shows copies 3, nothing under-replicated, and every follower\'s lag', async () => {
    const { ns } = await statusWhen((n) => n.underReplicated === 0 && lagsKnown(n));
    expect(ns).toMatchObject({ copies: 3, minInSync: 2, underReplicated: 0, unwritable: 0, broken: 0 });
    expect(Object.keys(ns.leaders).sort()).toEqual(['s1', 's2', 's3']);
    expect(Object.values(ns.leaders).reduce((a, b) => a + b, 0)).toBe(32);
    expect(ns.replicas).toHaveLength(32);
    for (const r of ns.replicas!) {
      expect(r.followers).toHaveLength(2);
      expect(Object.keys(r.lagMs).sort()).toEqual([...r.followers].sort());
    }
    expect(typeof ns.maxLagMs).toBe('number');

    const text = await cli(['status', '--dir', cluster.dir]);
    expect(text.code).toBe(0);
    console.log(text.stdout);
    expect(text.stdout).toMatch(/^ {4}copies 3 \(writes need 2\) {2}leaders s1:\d+ s2:\d+ s3:\d+ {2}followers .* under-replicated 0 {2}unwritable 0 {2}max lag \d+ ms$/m);
    expect(text.stdout).not.toContain('flagged partitions');
  });

  it('after kill -9 of s2: its partitions led elsewhere and flagged under-replicated', async () => {
    const { ns: before } = await statusWhen(() => true);
    const s2Led = before.replicas!.filter((r) => r.leader === 's2').map((r) => r.partition);
    expect(s2Led.length).toBeGreaterThan(0);

    await cluster.kill9('s2');
    const { ns, s } = await statusWhen((n) => n.leaders.s2 === undefined && n.underReplicated > 0);
    expect(s.nodes.find((n) => n.id === 's2')?.state).toBe('down');
    expect(ns.underReplicated).toBe(32);
    expect(ns.unwritable).toBe(0);
    for (const p of s2Led) expect(['s1', 's3']).toContain(ns.replicas![p]!.leader);
    expect(ns.replicas!.every((r) => !r.followers.includes('s2') && r.problems?.includes('under-replicated'))).toBe(true);

    const text = await cli(['status', '--dir', cluster.dir]);
    console.log(text.stdout);
    expect(text.stdout).toMatch(/under-replicated 32 {2}unwritable 0/);
    expect(text.stdout).toContain('flagged partitions (32):');
    const all = await cli(['status', '--partitions', '--dir', cluster.dir]);
    expect(all.stdout.split('\n').filter((l) => /^ {6}\d+ {2}leader s[13] {2}followers s[13]\([^)]*\) {2}2\/3 copies {2}under-replicated$/.test(l))).toHaveLength(32);
  });
});
