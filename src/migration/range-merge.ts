/**
 * Merging small neighbouring ranges that live on different nodes. A node merges its own neighbours by itself (a
 * routing-only change, `storage/range-maintainer.ts`); two ranges on different nodes must first be put on one node.
 * {@link planMerges} finds such pairs from every owner's per-range sizes and rates and names the co-locating move —
 * the smaller range to its neighbour's owner — as an ordinary {@link PlannedMove}, so a rebalance can run it with the
 * others. {@link runMerges} carries the moves out with {@link movePartition} (the same machinery as any move) and
 * then asks the new owner to merge, which it does only once it sees both ranges as its own and neither moving.
 */
import { chooseMerges, type RangeLoad } from '../partitioning/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import { movePartition, type MoveContext, type MoveOptions, type MoveResult } from './mover.js';
import type { PlannedMove } from './rebalance.js';

/** A co-locating move: range `partition` goes to `to`, which owns its neighbour; then `left` and `right` merge. */
export interface PlannedMerge extends PlannedMove {
  from: string;
  /** The ranges to merge, in key order; one of them is `partition`. The merged range keeps `left`'s id. */
  left: number;
  right: number;
  /** Bytes of both ranges together when planned. */
  bytes: number;
}

/** What became of one {@link PlannedMerge}. */
export interface MergeResult {
  namespace: string;
  left: number;
  right: number;
  move: MoveResult;
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
    // Replicated ranges merge only where leader and followers already coincide (their leader does it): putting
    // two replica sets together would move every copy, not one range.
    if (table.scheme !== 'range' || table.copies > 1) continue;
    const ranges = table.rangesFor('', null);
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
        owner: r.owner,
        bytes: s?.bytes ?? 0,
        opsPerSec: s?.opsPerSec ?? 0,
        busy: !s || !s.settled || s.moving || table.migrationOf(r.id) !== undefined || !ready,
      };
    });
    const splitOps = table.record.splitOps;
    const pairs = chooseMerges(loads, {
      mergeBytes: Math.floor(table.record.splitBytes! / 4),
      mergeOps: splitOps === undefined ? undefined : splitOps / 4,
    });
    for (const p of pairs) {
      if (!p.move) continue; // same owner: that node merges them itself
      out.push({ namespace: name, ...p.move, left: p.left, right: p.right, bytes: p.bytes });
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
  const move = await movePartition(ctx, m.namespace, m.partition, m.to, moveOptions);
  // The merge is the owner's to make, not ours: it first reads the newest table, so it has seen the cutover (and
  // finished its side of the move) before the two ranges become one.
  const peer = await ctx.pool.get(m.to, Date.now() + MERGE_TIMEOUT_MS);
  const answer = await peer.call<{ merged: boolean; epoch: number; reason?: string }>(
    'range.merge',
    { ns: m.namespace, left: m.left, right: m.right },
    { timeoutMs: MERGE_TIMEOUT_MS },
  );
  const result: MergeResult = { namespace: m.namespace, left: m.left, right: m.right, move, merged: answer.merged };
  if (answer.reason !== undefined) result.reason = answer.reason;
  log.info(answer.merged ? 'merged ranges across nodes' : 'merge refused after the move', { ...result, move: undefined });
  return result;
}
