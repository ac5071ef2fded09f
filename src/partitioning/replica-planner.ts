/**
 * The replica planner: which copies of a replicated namespace's partitions move where, so that every node holds its
 * capacity's share of the copies (and, as far as the same moves allow, of the leaders), moving as few copies as that
 * balance allows. Where {@link planAssignment} places one owner per partition, this places every copy: a leader copy
 * moving is a move of the lead; a follower copy moving is a new copy made on the target from the leader while the old
 * follower leaves at the switch.
 *
 * Pure and deterministic; property-tested in test/partitioning/replica-planner.test.ts.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';
import { rendezvousScore } from './replica-placement.js';
import { proportionalTargets, type PlannerNode } from './planner.js';

/** A partition's copies now: its leader and in-sync followers. */
export interface ReplicaSet {
  leader: string;
  followers: readonly string[];
}

/** One copy changing node. `role` is the copy's role: a leader move hands the lead to `to`. */
export interface ReplicaMove {
  partition: number;
  from: string;
  to: string;
  role: 'leader' | 'follower';
}

/** Replica placement's rendezvous score, remembered (the balancing loop asks for the same pairs many times). */
const scores = new Map<string, bigint>();
function score(partition: number, node: string): bigint {
  const key = `${partition}\u0000${node}`;
  let s = scores.get(key);
  if (s === undefined) {
    if (scores.size > 1_000_000) scores.clear();
    scores.set(key, (s = rendezvousScore(partition, node)));
  }
  return s;
}

/**
 * Plans the copy moves that balance a replicated namespace over `nodes`.
 *
 * - A copy on a node not among `nodes` (a node being drained, or gone) must move: it goes to the node furthest below
 *   its share that does not hold the partition yet.
 * - Then, while some node holds more copies than its share and another fewer, one copy goes from the first to the
 *   second — a copy of a partition the second does not hold, preferably one no earlier move touched. Whether it is a leader or a
 *   follower copy is chosen to even out leaders too: a leader copy when the giver leads more than its share and the
 *   taker less, else a follower copy when there is one.
 *
 * Each balancing move takes one copy off an over-full node, so their number is the least any plan meeting the shares
 * can make. A partition may get more than one move (a copy leaving a drained node, then one balancing): run them in
 * plan order. Partitions with fewer copies than configured are left to re-replication (their missing copies are not
 * planned here), and none of a partition's copies ever lands on a node that already holds one.
 *
 * @param sets every partition's current copies
 * @param nodes the nodes to balance over (ready storage nodes, or those that stay when draining)
 * @example
 * ```ts
 * const sets = new Map([[0, { leader: 'a', followers: ['b', 'c'] }], [1, { leader: 'b', followers: ['c', 'a'] }]]);
 * planReplicaMoves(sets, ['a', 'b', 'c', 'd'].map((id) => ({ id, capacity: 1 })));
 * // e.g. [{ partition: 0, from: 'a', to: 'd', role: 'leader' }]
 * ```
 */
export function planReplicaMoves(sets: ReadonlyMap<number, ReplicaSet>, nodes: readonly PlannerNode[]): ReplicaMove[] {
  if (nodes.length === 0) throw new InvalidArgumentError('at least one node is needed');
  const ids = nodes.map((n) => n.id);
  const inSet = new Set(ids);
  const partitions = [...sets.keys()].sort((a, b) => a - b);
  // Working state: holders per partition (leader first), copies and leaders per node.
  const holders = new Map<number, string[]>();
  const copies = new Map<string, number>(ids.map((id) => [id, 0]));
  const leads = new Map<string, number>(ids.map((id) => [id, 0]));
  let total = 0;
  for (const p of partitions) {
    const s = sets.get(p)!;
    const h = [s.leader, ...s.followers];
    if (new Set(h).size !== h.length) throw new InvalidArgumentError(`partition ${p}: a node holds two of its copies`);
    holders.set(p, h);
    total += Math.min(h.length, ids.length);
    for (const n of h) if (inSet.has(n)) copies.set(n, copies.get(n)! + 1);
    if (inSet.has(s.leader)) leads.set(s.leader, leads.get(s.leader)! + 1);
  }
  const share = cappedShares(total, nodes, copies, partitions.length);
  const leaderShare = proportionalTargets(partitions.length, nodes, leads);
  const moves: ReplicaMove[] = [];
  const touched = new Set<number>();
  const move = (p: number, from: string, to: string) => {
    const h = holders.get(p)!;
    const role = h[0] === from ? 'leader' : 'follower';
    h[h.indexOf(from)] = to;
    if (inSet.has(from)) copies.set(from, copies.get(from)! - 1);
    copies.set(to, copies.get(to)! + 1);
    if (role === 'leader') {
      if (inSet.has(from)) leads.set(from, leads.get(from)! - 1);
      leads.set(to, leads.get(to)! + 1);
    }
    touched.add(p);
    moves.push({ partition: p, from, to, role });
  };
  const deficit = (n: string) => share.get(n)! - copies.get(n)!;

  // Copies on nodes outside the set must move.
  for (const p of partitions) {
    for (const from of [...holders.get(p)!]) {
      if (inSet.has(from)) continue;
      const h = holders.get(p)!;
      const to = best(
        ids.filter((n) => !h.includes(n)),
        (a, b) => deficit(b) - deficit(a) || cmpScore(p, a, b),
      );
      if (to !== undefined) move(p, from, to);
    }
  }

  // Balance: one copy at a time from the fullest node to the emptiest that can take one.
  for (;;) {
    const givers = ids.filter((n) => deficit(n) < 0).sort((a, b) => deficit(a) - deficit(b) || cmp(a, b));
    const takers = ids.filter((n) => deficit(n) > 0).sort((a, b) => deficit(b) - deficit(a) || cmp(a, b));
    let done = false;
    for (const giver of givers) {
      for (const taker of takers) {
        const movable = partitions.filter((p) => holders.get(p)!.includes(giver) && !holders.get(p)!.includes(taker));
        if (movable.length === 0) continue;
        // A partition no earlier move touched, when there is one: its moves then all run at once.
        const fresh = movable.filter((p) => !touched.has(p));
        const candidates = fresh.length > 0 ? fresh : movable;
        const wantLeader = leads.get(giver)! > leaderShare.get(giver)! && leads.get(taker)! < leaderShare.get(taker)!;
        const isLeader = (p: number) => holders.get(p)![0] === giver;
        const preferred = candidates.filter((p) => isLeader(p) === wantLeader);
        const pool = preferred.length > 0 ? preferred : candidates;
        const p = best(pool, (a, b) => cmpScore(a, taker, taker, b))!;
        move(p, giver, taker);
        done = true;
        break;
      }
      if (done) break;
    }
    if (!done) return moves;
  }
}

/**
 * Each node's share of `total` copies by capacity, at most one copy of each partition per node: a share above the
 * partition count is cut to it and the rest spread over the others.
 */
function cappedShares(total: number, nodes: readonly PlannerNode[], counts: ReadonlyMap<string, number>, perNodeMax: number): Map<string, number> {
  const out = new Map<string, number>();
  let left = [...nodes];
  let remaining = total;
  for (;;) {
    const shares = proportionalTargets(remaining, left, counts);
    const over = left.filter((n) => shares.get(n.id)! > perNodeMax);
    if (over.length === 0 || left.length === over.length) {
      for (const n of left) out.set(n.id, Math.min(shares.get(n.id)!, perNodeMax));
      return out;
    }
    for (const n of over) out.set(n.id, perNodeMax);
    remaining -= over.length * perNodeMax;
    left = left.filter((n) => !over.includes(n));
  }
}

function best<T>(items: T[], order: (a: T, b: T) => number): T | undefined {
  let top: T | undefined;
  for (const x of items) if (top === undefined || order(x, top) < 0) top = x;
  return top;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Higher rendezvous score first: for (partition pa, node a) against (partition pb, node b). */
function cmpScore(pa: number, a: string, b: string, pb: number = pa): number {
  const sa = score(pa, a);
  const sb = score(pb, b);
  return sa === sb ? cmp(a, b) || pa - pb : sa > sb ? -1 : 1;
}
