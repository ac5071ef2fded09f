/**
 * Pure decisions for keeping key ranges the right size: how busy a range is (a decaying request rate), when it is
 * hot for long enough to split, and which neighbouring ranges are small and quiet enough to merge. No clocks, no I/O:
 * callers pass the time and the counts, so the same inputs always give the same answer.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';
import { chooseSplitKey, compareKeys } from './range-map.js';

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new InvalidArgumentError(message, { details });
}

function checkCount(value: number, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`${what} must be a finite number >= 0`);
}

/** A range's smoothed request rate, as {@link observeLoad} keeps it. */
export interface LoadState {
  /** Smoothed requests per second. */
  readonly rate: number;
  /** When `rate` was last brought up to date (ms, caller's clock). */
  readonly at: number;
  /** When the range was first observed (ms): a range with a short history has no trustworthy rate yet. */
  readonly since: number;
  /** Since when `rate` has stayed above the hot threshold at every observation, or `null` if it is not above it now. */
  readonly hotSince: number | null;
}

/** How {@link observeLoad} smooths and what it counts as hot. */
export interface LoadOptions {
  /** Time for the weight of past traffic to halve (ms, > 0). */
  halfLifeMs: number;
  /** Requests per second above which the range is hot; `undefined` or `Infinity`: never hot. */
  hotOps?: number;
}

/**
 * Folds the requests counted since the last observation into a range's rate: an exponentially weighted average of
 * the rate over each interval, weighted by how long ago it was (half-life `halfLifeMs`), so a range's rate follows
 * its traffic within a few half-lives and a single burst fades instead of lingering. Also tracks since when the rate
 * has been above `hotOps`, which {@link isHot} reads.
 *
 * @param previous - The state from the last observation, or `undefined` for a range not seen before: its first
 *   observation only starts the clock (the counts before it cover an unknown interval) unless `initialRate` is given.
 * @param ops - Requests counted since `previous.at`.
 * @param now - The current time in ms; an observation at or before `previous.at` changes nothing (its `ops` are
 *   dropped: they cover no time).
 * @param initialRate - For a new range: the rate to start from (e.g. its share of the range it was split from).
 * @throws InvalidArgumentError on a negative or non-finite count, time or option.
 * @example
 * ```ts
 * let s = observeLoad(undefined, 0, 0, { halfLifeMs: 1000 });
 * for (let t = 1000; t <= 10_000; t += 1000) s = observeLoad(s, 500, t, { halfLifeMs: 1000, hotOps: 400 });
 * s.rate;     // ≈ 500
 * s.hotSince; // 3000: the first observation where the smoothed rate (250, 375, 437.5, …) passed 400
 * ```
 */
export function observeLoad(
  previous: LoadState | undefined,
  ops: number,
  now: number,
  options: LoadOptions,
  initialRate = 0,
): LoadState {
  checkCount(ops, 'ops');
  checkCount(now, 'now');
  checkCount(initialRate, 'initialRate');
  if (typeof options.halfLifeMs !== 'number' || !(options.halfLifeMs > 0) || !Number.isFinite(options.halfLifeMs)) {
    fail('halfLifeMs must be a finite number > 0');
  }
  const hotOps = options.hotOps ?? Infinity;
  if (typeof hotOps !== 'number' || Number.isNaN(hotOps) || hotOps < 0) fail('hotOps must be a number >= 0');
  const hot = (rate: number, since: number | null) => (rate > hotOps ? (since ?? now) : null);
  if (!previous) return { rate: initialRate, at: now, since: now, hotSince: hot(initialRate, null) };
  const dt = now - previous.at;
  if (dt <= 0) return previous;
  const keep = Math.pow(2, -dt / options.halfLifeMs);
  const rate = keep * previous.rate + (1 - keep) * ((ops * 1000) / dt);
  return { rate, at: now, since: previous.since, hotSince: hot(rate, previous.hotSince) };
}

/**
 * Whether a range has been hot — its smoothed rate above the threshold at every observation — for at least
 * `sustainMs` up to `now`. Requiring a sustained period keeps a short burst from splitting a range that would only
 * merge back once it passes.
 */
export function isHot(state: LoadState | undefined, now: number, sustainMs: number): boolean {
  checkCount(sustainMs, 'sustainMs');
  return state !== undefined && state.hotSince !== null && now - state.hotSince >= sustainMs;
}

/**
 * Where to split a hot range so that each side gets about half of its traffic: the median of a sample of the keys its
 * requests named (one entry per sampled request, so a key asked for often appears often). Unlike a size split this
 * can refuse: when one key carries most of the traffic no cut gives each side at least `minShare` of it, and a split
 * would only make a cold neighbour beside a range that is as hot as before.
 *
 * @param sampledKeys - Keys of sampled requests, in any order, duplicates kept; keys outside the range are ignored.
 * @param range - The range's bounds.
 * @param minShare - The least fraction of the sampled requests inside the range each side must get (default 0.25).
 * @returns The split key (strictly inside the range) and the fraction of sampled requests left of it, or `undefined`.
 * @example
 * ```ts
 * chooseLoadSplitKey(['a', 'b', 'c', 'd', 'c', 'd'], { start: '', end: null });  // { key: 'c', leftShare: 1/3 }
 * chooseLoadSplitKey(['a', 'k', 'k', 'k', 'k', 'k'], { start: '', end: null });  // undefined: 'k' is the traffic
 * ```
 */
export function chooseLoadSplitKey(
  sampledKeys: readonly string[],
  range: { readonly start: string; readonly end: string | null },
  minShare = 0.25,
): { key: string; leftShare: number } | undefined {
  if (!Array.isArray(sampledKeys)) fail('sampledKeys must be an array');
  if (typeof minShare !== 'number' || !(minShare >= 0 && minShare <= 0.5)) fail('minShare must be from 0 to 0.5');
  const inside = sampledKeys
    .filter((k) => typeof k === 'string' && compareKeys(k, range.start) >= 0 && (range.end === null || compareKeys(k, range.end) < 0))
    .sort(compareKeys);
  const key = chooseSplitKey(inside, range);
  if (key === undefined) return undefined;
  let left = 0;
  while (left < inside.length && compareKeys(inside[left]!, key) < 0) left++;
  const leftShare = left / inside.length;
  return Math.min(leftShare, 1 - leftShare) >= minShare ? { key, leftShare } : undefined;
}

/** One range as {@link chooseMerges} sees it. */
export interface RangeLoad {
  readonly id: number;
  readonly owner: string;
  /** Bytes the range holds. */
  readonly bytes: number;
  /** Smoothed requests per second. */
  readonly opsPerSec: number;
  /**
   * Not to be merged now: it is moving, or its size or rate is not known well enough yet (just arrived, just split,
   * or its owner did not report).
   */
  readonly busy: boolean;
}

/** What {@link chooseMerges} may merge. */
export interface MergeLimits {
  /** Two ranges merge only if together they hold fewer bytes than this. */
  mergeBytes: number;
  /** ... and together serve fewer requests per second than this (default: no limit). */
  mergeOps?: number;
  /** Only pairs whose two ranges have one owner (a node planning its own merges, which move no data). */
  sameOwnerOnly?: boolean;
}

/** Two neighbouring ranges to join; the merged range keeps `left`'s id. */
export interface MergePair {
  left: number;
  right: number;
  /** Bytes of both together. */
  bytes: number;
  /**
   * When the two have different owners: the smaller range (fewer bytes; the left one on a tie) goes to the other's
   * owner first, so the merge itself moves no data and the move copies as little as it can.
   */
  move?: { partition: number; from: string; to: string };
}

/**
 * Which neighbouring ranges to merge: pairs of adjacent ranges, neither busy, that together hold fewer than
 * `mergeBytes` bytes and serve fewer than `mergeOps` requests per second. Pairs never share a range (each pair can be
 * merged independently, in any order), and the choice is maximal: once it is made, no two adjacent unpaired ranges
 * qualify. Pairs on one owner are chosen first (they move no data), then, unless `sameOwnerOnly`, pairs across owners
 * among the ranges left; within each pass, left to right.
 *
 * Keep `mergeBytes` well under the split threshold (a quarter of it, say) and `mergeOps` well under the hot
 * threshold, so that a merged range is not split again at once.
 *
 * @param rangesInKeyOrder - Every range of a namespace in key order (adjacent entries are neighbours).
 * @returns The pairs in key order.
 * @throws InvalidArgumentError on a negative or non-finite size or rate, a duplicate id, or a bad limit.
 * @example
 * ```ts
 * chooseMerges(
 *   [
 *     { id: 0, owner: 'a', bytes: 10, opsPerSec: 0, busy: false },
 *     { id: 3, owner: 'a', bytes: 20, opsPerSec: 0, busy: false },
 *     { id: 1, owner: 'b', bytes: 5, opsPerSec: 0, busy: false },
 *   ],
 *   { mergeBytes: 100 },
 * ); // [{ left: 0, right: 3, bytes: 30 }]: range 1 has no free neighbour left
 * ```
 */
export function chooseMerges(rangesInKeyOrder: readonly RangeLoad[], limits: MergeLimits): MergePair[] {
  if (!Array.isArray(rangesInKeyOrder)) fail('rangesInKeyOrder must be an array');
  checkCount(limits.mergeBytes, 'mergeBytes');
  const mergeOps = limits.mergeOps ?? Infinity;
  if (typeof mergeOps !== 'number' || Number.isNaN(mergeOps) || mergeOps < 0) fail('mergeOps must be a number >= 0');
  const ids = new Set<number>();
  for (const r of rangesInKeyOrder) {
    if (ids.has(r.id)) fail(`duplicate range id ${r.id}`, { id: r.id });
    ids.add(r.id);
    checkCount(r.bytes, `range ${r.id}: bytes`);
    checkCount(r.opsPerSec, `range ${r.id}: opsPerSec`);
  }
  const ranges = rangesInKeyOrder;
  const taken = new Array<boolean>(ranges.length).fill(false);
  const chosen = new Map<number, MergePair>(); // by index of the left range, to return them in key order
  const fits = (i: number) => {
    const a = ranges[i]!;
    const b = ranges[i + 1]!;
    return (
      !taken[i] &&
      !taken[i + 1] &&
      !a.busy &&
      !b.busy &&
      a.bytes + b.bytes < limits.mergeBytes &&
      a.opsPerSec + b.opsPerSec < mergeOps
    );
  };
  for (const sameOwner of limits.sameOwnerOnly ? [true] : [true, false]) {
    for (let i = 0; i + 1 < ranges.length; i++) {
      const a = ranges[i]!;
      const b = ranges[i + 1]!;
      if ((a.owner === b.owner) !== sameOwner || !fits(i)) continue;
      taken[i] = taken[i + 1] = true;
      const pair: MergePair = { left: a.id, right: b.id, bytes: a.bytes + b.bytes };
      if (!sameOwner) {
        const [moved, stays] = b.bytes < a.bytes ? [b, a] : [a, b];
        pair.move = { partition: moved.id, from: moved.owner, to: stays.owner };
      }
      chosen.set(i, pair);
    }
  }
  return [...chosen.entries()].sort((x, y) => x[0] - y[0]).map(([, pair]) => pair);
}
