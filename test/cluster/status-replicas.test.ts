/**
 * The replicas part of `shardflow status`, on routing tables built in memory: counts of under-replicated and
 * unwritable partitions, leaders and followers per node, lag from the followers' `following` maps, the flagged
 * partitions (grouped, capped) and the text lines.
 */
import { describe, expect, it } from 'vitest';
import { RoutingTable } from '../../src/keyspace/index.js';
import { compressIds, formatReplicas, summariseReplicas, type FollowingByNode } from '../../src/cluster/status-replicas.js';
import { formatStatus, type ClusterStatus } from '../../src/cluster/status.js';

const roundRobin = (nodes: string[]) => (partitions: number[]) => new Map(partitions.map((p) => [p, nodes[p % nodes.length]!]));

function table(copies = 3, nodes = ['s1', 's2', 's3'], slotCount = 16): RoutingTable {
  return RoutingTable.create('ns', { scheme: 'hash', slotCount, copies }, roundRobin(nodes));
}

/** Every node heard from every other one `ms` ago. */
function allHeard(nodes: string[], ms: number): FollowingByNode {
  return Object.fromEntries(nodes.map((n) => [n, Object.fromEntries(nodes.filter((l) => l !== n).map((l) => [l, { heardMsAgo: ms, broken: false }]))]));
}

/** Fails over every partition `dead` leads to its first follower, as the replica controller does. */
function failover(t: RoutingTable, dead: string): RoutingTable {
  const changes = new Map(t.partitionsOf(dead).map((p) => [p, t.followersOf(p)[0]!]));
  return t.withFailover(new Set([dead]), changes);
}

describe('status: replicas', () => {
  it('counts leaders, followers and lag of a fully replicated namespace and flags nothing', () => {
    const t = table();
    const s = summariseReplicas(t, { ...allHeard(['s1', 's2', 's3'], 40), s2: { s1: { heardMsAgo: 120, broken: false }, s3: { heardMsAgo: 7, broken: false } } });
    expect(s).toMatchObject({ copies: 3, minInSync: 2, underReplicated: 0, unwritable: 0, broken: 0, maxLagMs: 120 });
    expect(s.leaders).toEqual({ s1: 6, s2: 5, s3: 5 });
    expect(s.followers).toEqual({ s1: 10, s2: 11, s3: 11 });
    expect(s.replicas).toHaveLength(16);
    const p0 = s.replicas![0]!;
    expect(p0.leader).toBe('s1');
    expect(p0.followers.sort()).toEqual(['s2', 's3']);
    expect(p0.lagMs).toEqual({ s2: 120, s3: 40 });
    expect(s.replicas!.every((r) => r.problems === undefined && r.copying === undefined)).toBe(true);

    const lines = formatReplicas(s);
    expect(lines).toEqual([
      '    copies 3 (writes need 2)  leaders s1:6 s2:5 s3:5  followers s1:10 s2:11 s3:11  under-replicated 0  unwritable 0  max lag 120 ms',
    ]);
  });

  it('after a failover of s1: its partitions led elsewhere, every partition under-replicated, none unwritable', () => {
    const t = failover(table(), 's1');
    const s = summariseReplicas(t, allHeard(['s2', 's3'], 10));
    expect(s).toMatchObject({ copies: 3, underReplicated: 16, unwritable: 0 });
    expect(Object.keys(s.leaders)).toEqual(['s2', 's3']);
    expect(s.followers).toEqual({ s2: 8, s3: 8 });
    expect(s.replicas!.every((r) => r.leader !== 's1' && !r.followers.includes('s1') && r.problems?.join() === 'under-replicated')).toBe(true);

    const lines = formatReplicas(s);
    expect(lines[0]).toContain('under-replicated 16  unwritable 0  max lag 10 ms');
    expect(lines[1]).toBe('    flagged partitions (16):');
    // Grouped by leader and followers: two lines for 16 partitions.
    expect(lines).toHaveLength(4);
    const s2Led = t.partitions().filter((p) => t.ownerOf(p) === 's2');
    expect(lines).toContain(`      ${compressIds(s2Led)} (${s2Led.length})  leader s2  followers s3(10 ms)  2/3 copies  under-replicated`);
  });

  it('counts a partition with fewer than minInSync copies as unwritable and lists it first', () => {
    const base = table();
    const t = base.withFollowers(new Map([[3, []], [4, [base.followersOf(4)[0]!]]]));
    const s = summariseReplicas(t, allHeard(['s1', 's2', 's3'], 5));
    expect(s).toMatchObject({ underReplicated: 2, unwritable: 1 });
    expect(s.replicas![3]!.problems).toEqual(['unwritable', 'under-replicated']);
    expect(s.replicas![4]!.problems).toEqual(['under-replicated']);
    const lines = formatReplicas(s);
    expect(lines[0]).toContain('under-replicated 2  unwritable 1');
    expect(lines[1]).toBe('    flagged partitions (2):');
    expect(lines[2]).toBe(`      3  leader ${t.ownerOf(3)}  followers (none)  1/3 copies  UNWRITABLE, under-replicated`);
    expect(lines[3]).toMatch(/^ {6}4 {2}leader s2 {2}followers s\d\(5 ms\) {2}2\/3 copies {2}under-replicated$/);
  });

  it('flags partitions whose follower stream broke, shows unknown and never-heard lag, and a copy in progress', () => {
    const base = table();
    let t = base.withFollowers(new Map([[1, [base.followersOf(1)[0]!]]]));
    const missing = ['s1', 's2', 's3'].find((n) => !t.holds(1, n))!;
    t = t.withMigration(1, { to: missing, job: 'j1', startedAt: new Date(0).toISOString(), copy: true });
    const following: FollowingByNode = {
      s1: { s2: { heardMsAgo: 3, broken: false }, s3: { heardMsAgo: -1, broken: false } },
      s2: undefined, // did not answer
      s3: { s1: { heardMsAgo: 9000, broken: true }, s2: { heardMsAgo: 4, broken: false } },
    };
    const s = summariseReplicas(t, following);
    const ledByS1WithS3 = t.partitions().filter((p) => t.ownerOf(p) === 's1' && t.followersOf(p).includes('s3'));
    expect(s.broken).toBe(ledByS1WithS3.length);
    for (const p of ledByS1WithS3) expect(s.replicas![p]!.broken).toEqual(['s3']);
    expect(s.maxLagMs).toBe(9000);
    const p2 = s.replicas![2]!; // led by s3
    expect(p2.lagMs).toEqual({ s1: -1, s2: null });
    expect(s.replicas![1]!.copying).toBe(missing);

    const lines = formatReplicas(s);
    expect(lines[0]).toContain(`broken streams ${ledByS1WithS3.length}  max lag 9000 ms`);
    const brokenLine = lines.find((l) => l.includes('stream broken: s3'))!;
    expect(brokenLine).toContain('leader s1');
    expect(lines.indexOf(brokenLine)).toBeLessThan(lines.findIndex((l) => l.includes('copying to')));
    expect(lines.find((l) => l.includes('copying to'))).toMatch(/^ {6}1 {2}leader s2 {2}followers s\d\(.*\) {2}2\/3 copies {2}copying to s\d {2}under-replicated$/);

    const all = formatReplicas(s, { all: true });
    expect(all[1]).toBe('    partitions:');
    expect(all).toHaveLength(2 + 16);
    expect(all[2 + 2]).toMatch(/^ {6}2 {2}leader s3 {2}followers (s1\(never heard\) s2\(\?\)|s2\(\?\) s1\(never heard\)) {2}3\/3 copies$/);
  });

  it('shows at most 20 lines of flagged groups, worst and largest first, and says how many more', () => {
    const nodes = Array.from({ length: 12 }, (_, i) => `s${i + 1}`);
    const base = table(3, nodes, 256);
    const t = base.withFollowers(new Map(base.partitions().map((p) => [p, base.followersOf(p).slice(0, 1)])));
    const s = summariseReplicas(t, allHeard(nodes, 1));
    expect(s.underReplicated).toBe(256);
    const lines = formatReplicas(s);
    expect(lines[1]).toBe('    flagged partitions (256):');
    expect(lines).toHaveLength(2 + 20 + 1);
    const shown = lines.slice(2, 22).reduce((n, l) => n + (/\((\d+)\) {2}leader/.exec(l) ? Number(/\((\d+)\) {2}leader/.exec(l)![1]) : 1), 0);
    expect(lines[22]).toBe(`      ... ${256 - shown} more partitions (status --partitions lists every one)`);
    expect(formatReplicas(s, { maxFlaggedLines: 3 })).toHaveLength(2 + 3 + 1);
  });

  it('keeps one-copy namespaces as they were: trivial counts, no per-partition list, no extra lines', () => {
    const t = table(1);
    const s = summariseReplicas(t, {});
    expect(s).toEqual({ copies: 1, minInSync: 1, underReplicated: 0, unwritable: 0, leaders: { s1: 6, s2: 5, s3: 5 } });
    expect(formatReplicas(s)).toEqual([]);
  });

  it('prints the replica lines under the namespace line in formatStatus; --partitions lists every partition', () => {
    const one = table(1);
    const rep = failover(table(), 's1');
    const status: ClusterStatus = {
      dir: '/tmp/c',
      coordinator: 'embedded 127.0.0.1:1',
      nodes: [],
      namespaces: [
        { name: 'plain', scheme: 'hash', epoch: one.epoch, partitions: 16, ...summariseReplicas(one, {}) },
        { name: 'rep', scheme: 'hash', epoch: rep.epoch, partitions: 16, ...summariseReplicas(rep, allHeard(['s2', 's3'], 10)) },
      ],
      autoscaler: [],
      migrations: { rebalance: null, migrations: [] },
      jobs: [],
    };
    const text = formatStatus(status).split('\n');
    const at = text.indexOf('namespaces:');
    expect(text[at + 1]).toBe('  plain  hash  16 partitions  epoch 1');
    expect(text[at + 2]).toBe('  rep  hash  16 partitions  epoch 2');
    expect(text[at + 3]).toMatch(/^ {4}copies 3 \(writes need 2\) {2}leaders s2:\d+ s3:\d+ {2}followers s2:8 s3:8 {2}under-replicated 16 {2}unwritable 0 {2}max lag 10 ms$/);
    expect(text[at + 4]).toBe('    flagged partitions (16):');
    const full = formatStatus(status, { partitions: true }).split('\n');
    expect(full.filter((l) => /^ {6}\d+ {2}leader /.test(l))).toHaveLength(16);
  });

  it('compresses partition ids into runs', () => {
    expect(compressIds([9, 0, 1, 2, 3, 7, 10])).toBe('0-3,7,9-10');
    expect(compressIds([5])).toBe('5');
    expect(compressIds([])).toBe('');
  });
});
