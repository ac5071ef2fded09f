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
 * - Then, while some node holds more copies than its share and another fewer, copies go from the first to the
 *   second (as many at once as both differ from their shares): of partitions the second does not hold, preferably
 *   ones no earlier move touched; as many leader copies as even out both nodes' leaders, the rest followers; the
 *   taker's highest rendezvous score first.
 * - Where every taker already holds whatever the givers could give (few partitions, uneven capacities), a copy takes
 *   a detour through a node at its share, which then gives another on: one move more per detour.
 *
 * Each balancing move takes one copy off an over-full node, so without detours their number is the least any plan
 * meeting the shares can make. A partition may get more than one move (a copy leaving a drained node, then one
 * balancing): run them in plan order. Partitions with fewer copies than configured are left to re-replication (their
 * missing copies are not planned here), and none of a partition's copies ever lands on a node that already holds one.
 * Planning 4096 partitions x 3 copies onto a 4th node takes about 50 ms.
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
  const ids = nodes.map((n) => n.id).sort(cmp);
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
  // Partitions each node holds: the balancing loop scans a giver's, not every partition.
  const heldBy = new Map<string, Set<number>>(ids.map((id) => [id, new Set<number>()]));
  for (const p of partitions) for (const n of holders.get(p)!) heldBy.get(n)?.add(p);
  const move = (p: number, from: string, to: string) => {
    const h = holders.get(p)!;
    const role = h[0] === from ? 'leader' : 'follower';
    h[h.indexOf(from)] = to;
    heldBy.get(from)?.delete(p);
    heldBy.get(to)!.add(p);
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

  // Scores as doubles, per node: the inner scan below runs (moves x partitions per node) times.
  const scoreTable = new Map<string, Map<number, number>>();
  const fastScore = (p: number, node: string): number => {
    let t = scoreTable.get(node);
    if (!t) scoreTable.set(node, (t = new Map()));
    let v = t.get(p);
    if (v === undefined) t.set(p, (v = Number(rendezvousScore(p, node) >> 11n)));
    return v;
  };

  // Balance: copies go from the fullest node to the emptiest that can take them, as many at once as the two differ
  // from their shares (one scan of the giver's partitions per pair, not per copy).
  let detours = 0;
  const lastDetour = new Set<string>(); // (partition, node) a detour took a copy from: not handed straight back
  for (;;) {
    const givers = ids.filter((n) => deficit(n) < 0).sort((a, b) => deficit(a) - deficit(b) || cmp(a, b));
    const takers = ids.filter((n) => deficit(n) > 0).sort((a, b) => deficit(b) - deficit(a) || cmp(a, b));
    let moved = 0;
    for (const giver of givers) {
      for (const taker of takers) {
        const count = Math.min(-deficit(giver), deficit(taker));
        if (count <= 0) continue;
        const picked = pick(giver, taker, count);
        for (const p of picked) move(p, giver, taker);
        moved += picked.length;
        if (picked.length > 0) break;
      }
      if (moved > 0) break;
    }
    if (moved > 0) {
      detours = 0;
      continue;
    }
    // Stuck: every taker holds whatever a giver could give. A copy passed through a node at its share (which then
    // gives one on) gets around that; a few such detours at most, each costing one move more.
    if (givers.length === 0 || detours >= ids.length) return moves;
    detours++;
    let detoured = false;
    for (const giver of givers) {
      for (const via of ids.filter((n) => deficit(n) === 0 && n !== giver)) {
        const [p] = pick(giver, via, 1).filter((x) => !lastDetour.has(`${x}\u0000${via}`));
        if (p === undefined) continue;
        lastDetour.add(`${p}\u0000${giver}`);
        move(p, giver, via);
        detoured = true;
        break;
      }
      if (detoured) break;
    }
    if (!detoured) return moves;
  }

  /**
   * Up to `count` partitions to move from `giver` to `taker`: ones no earlier move touched first (their moves then
   * all run at once); as many leader copies as evens out both nodes' leaders, the rest followers; within each, the
   * taker's highest rendezvous score first.
   */
  function pick(giver: string, taker: string, count: number): number[] {
    const leaders = Math.max(0, Math.min(count, leads.get(giver)! - leaderShare.get(giver)!, leaderShare.get(taker)! - leads.get(taker)!));
    const buckets: number[][] = [[], [], [], []]; // fresh leader, fresh follower, touched leader, touched follower
    for (const p of heldBy.get(giver)!) {
      const h = holders.get(p)!;
      if (h.includes(taker)) continue;
      buckets[(touched.has(p) ? 2 : 0) + (h[0] === giver ? 0 : 1)]!.push(p);
    }
    for (const b of buckets) b.sort((x, y) => fastScore(y, taker) - fastScore(x, taker) || x - y);
    const out: number[] = [];
    const take = (b: number[], n: number) => {
      while (n-- > 0 && b.length > 0 && out.length < count) out.push(b.shift()!);
    };
    take(buckets[0]!, leaders);
    take(buckets[1]!, count - out.length);
    for (const b of buckets) take(b, count - out.length);
    return out;
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
