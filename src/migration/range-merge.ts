/**
 * Merging small neighbouring ranges that live on different nodes. A node merges its own neighbours by itself (a
 * routing-only change, `storage/range-maintainer.ts`); two ranges on different nodes must first be put on one node.
 * {@link planMerges} finds such pairs from every owner's per-range sizes and rates and names the co-locating move —
 * the smaller range to its neighbour's owner — as an ordinary {@link PlannedMove}, so a rebalance can run it with the
 * others. {@link runMerges} carries the moves out with {@link movePartition} (the same machinery as any move) and
 * then asks the new owner to merge, which it does only once it sees both ranges as its own and neither moving.
 *
 * Replicated ranges merge only where leader and followers coincide: the smaller range's copies are first put where
 * its neighbour's are ({@link alignReplicas}: a copy moves from each node the neighbour does not use to one it uses,
 * then the lead is handed over if the leaders still differ), and the common leader merges them with both ranges'
 * requests held.
 */
import { alignReplicas, chooseMerges, type AlignmentStep, type RangeLoad } from '../partitioning/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { RoutingTable } from '../keyspace/index.js';
import { createLogger } from '../util/logger.js';
import { handOffLeads } from './lead-handoff.js';
import { moveBatch, movePartition, type MoveContext, type MoveOptions, type MoveResult } from './mover.js';
import type { PlannedMove } from './rebalance.js';

/**
 * A co-locating move: range `partition` goes to `to`, which owns its neighbour; then `left` and `right` merge. For a
 * replicated range, `to` is the neighbour's leader and `steps` put every copy where the neighbour's are.
 */
export interface PlannedMerge extends PlannedMove {
  from: string;
  /** The ranges to merge, in key order; one of them is `partition`. The merged range keeps `left`'s id. */
  left: number;
  right: number;
  /** Bytes of both ranges together when planned. */
  bytes: number;
  /** Replicated ranges: the copy moves and lead handoff that give `partition` its neighbour's leader and followers. */
  steps?: AlignmentStep[];
}

/** What became of one {@link PlannedMerge}. */
export interface MergeResult {
  namespace: string;
  left: number;
  right: number;
  move: MoveResult;
  /** Every step run to co-locate them, in order (one move for a range with one copy); `move` is the first. */
  moves: MoveResult[];
  /** Whether the new owner merged the two (false: it refused, `reason` says why; its own pass may merge them later). */
  merged: boolean;
  reason?: string;
}

/** What a storage node's `range.stats` answers. */
interface RangeStatsAnswer {
  epoch: number;
  ranges: { id: number; bytes: number; opsPerSec: number; settled: boolean; moving: boolean }[];
}

const log = createLogger('migration');
const STATS_TIMEOUT_MS = 5000;
const MERGE_TIMEOUT_MS = 30_000;

/**
 * The moves that put small neighbouring ranges on different nodes together, so they can merge: for each range
 * namespace, pairs of adjacent ranges that together hold less than a quarter of `splitBytes` and serve less than a
 * quarter of `splitOps`, neither moving nor too recently split or arrived to judge (as their owners report). Pairs
 * on one node are left to that node; each range is in at most one pair.
 *
 * @param namespaces - Only these namespaces (default: every range namespace).
 * @example
 * ```ts
 * const merges = await planMerges(driver.context);
 * const results = await runMerges(driver.context, merges);
 * ```
 */
export async function planMerges(
  ctx: Pick<MoveContext, 'catalog' | 'members' | 'pool'>,
  options: { namespaces?: string[] } = {},
): Promise<PlannedMerge[]> {
  const out: PlannedMerge[] = [];
  for (const name of options.namespaces ?? ctx.catalog.names()) {
    const table = await ctx.catalog.refresh(name);
    if (!table) throw new InvalidArgumentError(`no namespace ${name}`);
    if (table.scheme !== 'range') continue;
    const ranges = table.rangesFor('', null);
    // Ranges with several copies are grouped by their whole set of copies: a pair on one set is its leader's to
    // merge; a pair across sets needs the smaller range's copies aligned first. A range short of copies waits.
    const replicated = table.copies > 1;
    const placement = (id: number): string =>
      replicated ? `${table.ownerOf(id)}|${[...table.followersOf(id)].sort().join(',')}` : table.ownerOf(id)!;
    const short = (id: number) => replicated && table.followersOf(id).length + 1 < table.copies;
    const stats = new Map<number, RangeStatsAnswer['ranges'][number]>();
    await Promise.all(
      [...new Set(ranges.map((r) => r.owner))].map(async (owner) => {
        try {
          const peer = await ctx.pool.get(owner, Date.now() + STATS_TIMEOUT_MS);
          const answer = await peer.call<RangeStatsAnswer>('range.stats', { ns: name }, { timeoutMs: STATS_TIMEOUT_MS });
          for (const r of answer.ranges) stats.set(r.id, r);
        } catch (err) {
          // An owner that cannot say how big its ranges are keeps them out of this plan (they count as busy).
          log.warn('no range stats from a storage node; its ranges are left alone', { node: owner, namespace: name, error: String(err) });
        }
      }),
    );
    const loads = ranges.map((r): RangeLoad => {
      const s = stats.get(r.id);
      const ready = ctx.members.get(r.owner)?.state === 'ready';
      return {
        id: r.id,
        owner: placement(r.id),
        bytes: s?.bytes ?? 0,
        opsPerSec: s?.opsPerSec ?? 0,
        busy: !s || !s.settled || s.moving || table.migrationOf(r.id) !== undefined || !ready || short(r.id),
      };
    });
    const splitOps = table.record.splitOps;
    const pairs = chooseMerges(loads, {
      mergeBytes: Math.floor(table.record.splitBytes! / 4),
      mergeOps: splitOps === undefined ? undefined : splitOps / 4,
    });
    for (const p of pairs) {
      if (!p.move) continue; // same owner (same copies): that node merges them itself
      const moving = p.move.partition;
      const other = moving === p.left ? p.right : p.left;
      const base = { namespace: name, partition: moving, from: table.ownerOf(moving)!, to: table.ownerOf(other)!, left: p.left, right: p.right, bytes: p.bytes };
      if (!replicated) {
        out.push(base);
        continue;
      }
      const steps = alignReplicas(replicaSet(table, moving), replicaSet(table, other));
      if (steps && steps.length > 0) out.push({ ...base, steps });
    }
  }
  return out;
}

/**
 * Carries out co-locating moves, `concurrency` at a time, each followed by its merge. Like {@link runMoves}: after a
 * failure no new one starts, the ones in flight finish, and the first failure is thrown with the results so far in
 * `details.completed`. A merge the new owner refuses (the ranges changed meanwhile) is not a failure: see `merged`.
 */
export async function runMerges(
  ctx: MoveContext,
  merges: PlannedMerge[],
  options: { concurrency?: number; move?: MoveOptions; onMerged?: (r: MergeResult) => void } = {},
): Promise<MergeResult[]> {
  const results: MergeResult[] = [];
  let failure: unknown;
  let next = 0;
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 2) }, async () => {
    while (next < merges.length && failure === undefined) {
      const m = merges[next++]!;
      try {
        const r = await mergeAfterMove(ctx, m, options.move);
        results.push(r);
        options.onMerged?.(r);
      } catch (err) {
        failure ??= err;
      }
    }
  });
  await Promise.all(workers);
  if (failure !== undefined) {
    if (failure instanceof Error) Object.assign(failure, { completed: results });
    throw failure;
  }
  return results;
}

/** One co-locating move, then the merge, asked of the node that now owns both ranges. */
export async function mergeAfterMove(ctx: MoveContext, m: PlannedMerge, moveOptions?: MoveOptions): Promise<MergeResult> {
  if (m.partition !== m.left && m.partition !== m.right) {
    throw new InvalidArgumentError(`the range to move (${m.partition}) must be one of the pair ${m.left}, ${m.right}`);
  }
  const moves: MoveResult[] = [];
  if (m.steps) for (const step of m.steps) moves.push(await alignStep(ctx, m.namespace, m.partition, step, moveOptions));
  else moves.push(await movePartition(ctx, m.namespace, m.partition, m.to, moveOptions));
  // The merge is the owner's to make, not ours: it first reads the newest table, so it has seen the cutover (and
  // finished its side of the move) before the two ranges become one.
  const peer = await ctx.pool.get(m.to, Date.now() + MERGE_TIMEOUT_MS);
  const answer = await peer.call<{ merged: boolean; epoch: number; reason?: string }>(
    'range.merge',
    { ns: m.namespace, left: m.left, right: m.right },
    { timeoutMs: MERGE_TIMEOUT_MS },
  );
  const result: MergeResult = { namespace: m.namespace, left: m.left, right: m.right, move: moves[0]!, moves, merged: answer.merged };
  if (answer.reason !== undefined) result.reason = answer.reason;
  log.info(answer.merged ? 'merged ranges across nodes' : 'merge refused after the move', { ...result, move: undefined, moves: moves.length });
  return result;
}

function replicaSet(table: RoutingTable, partition: number): { leader: string; followers: readonly string[] } {
  return { leader: table.ownerOf(partition)!, followers: table.followersOf(partition) };
}

/**
 * One step of aligning a replicated range's copies, with the same machinery as a rebalance's: a leader copy moves as
 * any move; a follower copy is copied from the range's leader of the moment and replaces `from` at the switch; a lead
 * goes to a node that already follows. Each checks the table as it is when it starts.
 */
async function alignStep(ctx: MoveContext, namespace: string, partition: number, step: AlignmentStep, options?: MoveOptions): Promise<MoveResult> {
  if (step.role === 'lead') return handOffLeads(ctx, { namespace, from: step.from, to: step.to, partitions: [partition] });
  if (step.role === 'leader') return moveBatch(ctx, { namespace, from: step.from, to: step.to, partitions: [partition] }, options);
  const table = await ctx.catalog.refresh(namespace);
  const leader = table?.ownerOf(partition);
  if (leader === undefined) throw new InvalidArgumentError(`${namespace} has no range ${partition}`);
  return moveBatch(ctx, { namespace, from: leader, to: step.to, partitions: [partition], copy: true, replace: step.from }, options);
}
