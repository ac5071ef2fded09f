/**
 * The replicas part of `shardflow status`: per namespace, how many copies each partition has against how many it
 * should, who leads and follows, and how far behind each follower is. Pure: it reads a routing table (the in-sync
 * copies it lists are what decides) and what each storage node's `node.stats` said it follows (`following`), so it
 * is tested without a cluster.
 *
 * Text stays short for 4096 partitions: one summary line per replicated namespace, then the flagged partitions
 * grouped by leader, followers and problem (at most {@link MAX_FLAGGED_LINES} lines); `--partitions` lists them all.
 */
import type { RoutingTable } from '../keyspace/index.js';
import { compareIds } from '../config/cluster-dir.js';

/** One leader as a follower sees it (`node.stats` → `following[leader]`). */
export interface FollowerLink {
  /** Ms since the follower last heard from the leader; -1: never. */
  heardMsAgo: number;
  /** The stream broke: this copy waits for a fresh copy. */
  broken: boolean;
}

/** Per storage node id: its `following` map; a node that did not answer is absent. */
export type FollowingByNode = Readonly<Record<string, Readonly<Record<string, FollowerLink>> | undefined>>;

/** Why a partition is flagged, worst first. */
export type ReplicaProblem = 'unwritable' | 'broken' | 'under-replicated';

/** One partition's copies (`status --json`: `namespaces[].replicas[]`). */
export interface PartitionReplicas {
  partition: number;
  leader: string;
  /** In-sync followers, per the routing table. */
  followers: string[];
  /** A node a copy is being made to (it joins the followers when done). */
  copying?: string;
  /** Per follower: ms since it last heard from the leader (-1: never; null: the follower did not answer). */
  lagMs: Record<string, number | null>;
  /** Followers whose stream from the leader broke. */
  broken?: string[];
  /** Set when the partition is flagged: below its copies, below minInSync, or a follower's stream broke. */
  problems?: ReplicaProblem[];
}

/** The replica fields of a namespace in `status` (for one-copy namespaces only the first five, and trivially). */
export interface ReplicaSummary {
  /** Configured copies per partition. */
  copies: number;
  /** In-sync copies a write needs. */
  minInSync: number;
  /** Partitions with fewer in-sync copies than `copies`. */
  underReplicated: number;
  /** Partitions with fewer in-sync copies than `minInSync`: writes to them are refused. */
  unwritable: number;
  /** Partitions led per node. */
  leaders: Record<string, number>;
  /** Replicated only: partitions followed (in sync) per node. */
  followers?: Record<string, number>;
  /** Replicated only: partitions with a follower whose stream broke. */
  broken?: number;
  /** Replicated only: the largest `lagMs` among in-sync followers that answered and have heard (null: none). */
  maxLagMs?: number | null;
  /** Replicated only: every partition with its copies. */
  replicas?: PartitionReplicas[];
}

/** Most lines of flagged partitions the text shows per namespace. */
export const MAX_FLAGGED_LINES = 20;

/** Summarises a namespace's copies from its table and the followers' `following` maps. */
export function summariseReplicas(table: RoutingTable, following: FollowingByNode): ReplicaSummary {
  const copies = table.copies;
  const minInSync = table.minInSync;
  const leaders: Record<string, number> = {};
  const followers: Record<string, number> = {};
  const replicas: PartitionReplicas[] = [];
  let underReplicated = 0;
  let unwritable = 0;
  let broken = 0;
  let maxLagMs: number | null = null;
  for (const p of table.partitions()) {
    const leader = table.ownerOf(p)!;
    leaders[leader] = (leaders[leader] ?? 0) + 1;
    const list = [...table.followersOf(p)];
    const inSync = 1 + list.length;
    if (inSync < copies) underReplicated++;
    if (inSync < minInSync) unwritable++;
    if (copies === 1) continue;
    const lagMs: Record<string, number | null> = {};
    const brokenHere: string[] = [];
    for (const f of list) {
      followers[f] = (followers[f] ?? 0) + 1;
      const link = following[f]?.[leader];
      lagMs[f] = link ? link.heardMsAgo : null;
      if (link?.broken) brokenHere.push(f);
      if (link && link.heardMsAgo >= 0) maxLagMs = Math.max(maxLagMs ?? 0, link.heardMsAgo);
    }
    const entry: PartitionReplicas = { partition: p, leader, followers: list, lagMs };
    const copy = table.migrationOf(p);
    if (copy?.copy) entry.copying = copy.to;
    if (brokenHere.length > 0) {
      entry.broken = brokenHere;
      broken++;
    }
    const problems: ReplicaProblem[] = [];
    if (inSync < minInSync) problems.push('unwritable');
    if (brokenHere.length > 0) problems.push('broken');
    if (inSync < copies) problems.push('under-replicated');
    if (problems.length > 0) entry.problems = problems;
    replicas.push(entry);
  }
  const summary: ReplicaSummary = { copies, minInSync, underReplicated, unwritable, leaders: sortedRecord(leaders) };
  if (copies === 1) return summary;
  return { ...summary, followers: sortedRecord(followers), broken, maxLagMs, replicas };
}

/**
 * Text lines for a replicated namespace, indented under its namespace line: the summary, then the flagged
 * partitions grouped (or, with `all`, one line per partition). Empty for one-copy namespaces.
 */
export function formatReplicas(s: ReplicaSummary, options: { all?: boolean; maxFlaggedLines?: number } = {}): string[] {
  if (s.copies === 1 || !s.replicas) return [];
  const lag = s.maxLagMs === null || s.maxLagMs === undefined ? '-' : `${s.maxLagMs} ms`;
  const out = [
    `    copies ${s.copies} (writes need ${s.minInSync})  leaders ${perNode(s.leaders)}  followers ${perNode(s.followers ?? {})}  ` +
      `under-replicated ${s.underReplicated}  unwritable ${s.unwritable}` +
      (s.broken ? `  broken streams ${s.broken}` : '') +
      `  max lag ${lag}`,
  ];
  if (options.all) {
    out.push('    partitions:');
    for (const r of s.replicas) out.push(`      ${r.partition}  ${describe(r, s.copies)}${r.problems ? `  ${problemText(r)}` : ''}`);
    return out;
  }
  const groups = new Map<string, { partitions: number[]; first: PartitionReplicas }>();
  for (const r of s.replicas) {
    if (!r.problems) continue;
    const key = `${r.leader}|${r.followers.join(',')}|${r.copying ?? ''}|${(r.broken ?? []).join(',')}|${r.problems.join(',')}`;
    const g = groups.get(key);
    if (g) g.partitions.push(r.partition);
    else groups.set(key, { partitions: [r.partition], first: r });
  }
  if (groups.size === 0) return out;
  // Worst problem first, then the largest groups.
  const rank = (r: PartitionReplicas) => (['unwritable', 'broken', 'under-replicated'] as const).indexOf(r.problems![0]!);
  const sorted = [...groups.values()].sort(
    (a, b) => rank(a.first) - rank(b.first) || b.partitions.length - a.partitions.length || a.partitions[0]! - b.partitions[0]!,
  );
  const max = options.maxFlaggedLines ?? MAX_FLAGGED_LINES;
  const flagged = sorted.reduce((n, g) => n + g.partitions.length, 0);
  out.push(`    flagged partitions (${flagged}):`);
  for (const g of sorted.slice(0, max)) {
    const count = g.partitions.length > 1 ? ` (${g.partitions.length})` : '';
    out.push(`      ${compressIds(g.partitions)}${count}  ${describe(g.first, s.copies)}  ${problemText(g.first)}`);
  }
  if (sorted.length > max) {
    const rest = sorted.slice(max).reduce((n, g) => n + g.partitions.length, 0);
    out.push(`      ... ${rest} more partitions (status --partitions lists every one)`);
  }
  return out;
}

/** `0-3,7,9-10`: sorted partition ids as runs, so thousands of them stay one short line. */
export function compressIds(ids: number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function describe(r: PartitionReplicas, copies: number): string {
  const followers = r.followers.length ? r.followers.map((f) => `${f}${lagText(r.lagMs[f])}`).join(' ') : '(none)';
  return `leader ${r.leader}  followers ${followers}  ${1 + r.followers.length}/${copies} copies${r.copying ? `  copying to ${r.copying}` : ''}`;
}

function lagText(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '(?)';
  return ms < 0 ? '(never heard)' : `(${ms} ms)`;
}

function problemText(r: PartitionReplicas): string {
  return (r.problems ?? [])
    .map((p) => (p === 'broken' ? `stream broken: ${r.broken!.join(',')}` : p === 'unwritable' ? 'UNWRITABLE' : p))
    .join(', ');
}

function perNode(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length ? entries.map(([n, c]) => `${n}:${c}`).join(' ') : '-';
}

function sortedRecord(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => compareIds(a, b)));
}
