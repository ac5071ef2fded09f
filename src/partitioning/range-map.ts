/**
 * The range map: the string key space cut into ordered, non-overlapping, gap-free ranges, each one a partition.
 *
 * Key order is **UTF-8 byte order** (the same as Unicode code-point order), via {@link compareKeys}. It is the order
 * byte-ordered stores (LMDB) and other languages (Go, Rust, Java byte arrays) use, so a range boundary means the same
 * thing everywhere. It differs from JavaScript's `<` on strings only for characters above U+FFFF versus
 * U+E000–U+FFFF.
 * (A lone surrogate has no UTF-8 form; such keys still get a consistent total order, as if it were a code point
 * above U+FFFF.)
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';

/**
 * One key range `[start, end)`, served as one partition.
 *
 * `start` is inclusive (`''` is the smallest key, so the first range, starting at `''`, reaches minus infinity);
 * `end` is exclusive, `null` meaning plus infinity.
 */
export interface Range {
  /** The partition id; unique in a map. A non-negative safe integer. */
  readonly id: number;
  /** Smallest key in the range (inclusive). */
  readonly start: string;
  /** First key after the range (exclusive); `null` for the last range. */
  readonly end: string | null;
}

/** The JSON form of a {@link RangeMap}: `{ ranges: [{ id, start, end }, …] }` in key order. */
export interface RangeMapJSON {
  ranges: Range[];
}

/**
 * Compares two keys in UTF-8 byte order (= code-point order): negative if `a` sorts first, 0 if equal, positive after.
 *
 * @example
 * ```ts
 * ['b', 'a', '\u{1F600}', '\uFFFF'].sort(compareKeys); // ['a', 'b', '\uFFFF', '\u{1F600}']
 * ```
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Code-unit order equals code-point order except that surrogates (U+D800–DFFF, which encode code points above
    // U+FFFF) sort below U+E000–FFFF. Shifting both ranges fixes that; below U+D800 nothing changes.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new InvalidArgumentError(message, { details });
}

function checkKey(key: unknown, what: string): asserts key is string {
  if (typeof key !== 'string') fail(`${what} must be a string`);
}

/**
 * An immutable, validated set of ranges covering the whole key space. Lookups are O(log n); `split` and `merge` return
 * new maps (O(n)), which suits routing tables that are replaced as a whole at each epoch.
 *
 * @example
 * ```ts
 * const map = new RangeMap([{ id: 0, start: '', end: null }]).split(0, 'm', 1);
 * map.lookup('apple').id;                 // 0   (['', 'm'))
 * map.lookup('zebra').id;                 // 1   (['m', +inf))
 * map.rangesOverlapping('k', 'p').length; // 2
 * ```
 */
export class RangeMap {
  readonly #ranges: readonly Range[];
  /** `#starts[i] === #ranges[i].start`: a flat array keeps the binary search tight. */
  readonly #starts: readonly string[];
  readonly #indexById: ReadonlyMap<number, number>;

  /**
   * @param ranges - In key order: the first starts at `''`, each ends where the next starts, the last ends at `null`,
   *   every range is non-empty, ids are unique non-negative safe integers.
   * @throws InvalidArgumentError if any of that does not hold.
   */
  constructor(ranges: readonly Range[]) {
    if (!Array.isArray(ranges) || ranges.length === 0) fail('a range map needs at least one range');
    const copy: Range[] = [];
    const indexById = new Map<number, number>();
    for (let i = 0; i < ranges.length; i++) {
      const r: unknown = ranges[i];
      if (typeof r !== 'object' || r === null) fail(`range ${i} is not an object`);
      const { id, start, end } = r as Record<string, unknown>;
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
        fail(`range ${i}: id must be a non-negative safe integer`, { index: i, id });
      }
      checkKey(start, `range ${i}: start`);
      if (end !== null) checkKey(end, `range ${i}: end`);
      if (indexById.has(id)) fail(`duplicate range id ${id}`, { id });
      if (i === 0 && start !== '') fail(`the first range must start at '' (minus infinity)`, { start });
      if (i > 0 && copy[i - 1]!.end !== start) {
        fail(`range ${i} does not start where range ${i - 1} ends (gap, overlap or wrong order)`, { index: i });
      }
      if (end === null && i !== ranges.length - 1) fail(`only the last range may end at null (plus infinity)`, { id });
      if (end !== null && compareKeys(start, end) >= 0) fail(`range ${id} is empty or reversed`, { id, start, end });
      indexById.set(id, i);
      copy.push(Object.freeze({ id, start, end }));
    }
    if (copy[copy.length - 1]!.end !== null) fail('the last range must end at null (plus infinity)');
    this.#ranges = Object.freeze(copy);
    this.#starts = Object.freeze(copy.map((r) => r.start));
    this.#indexById = indexById;
  }

  /** A map of one range covering every key. */
  static single(id = 0): RangeMap {
    return new RangeMap([{ id, start: '', end: null }]);
  }

  /**
   * Rebuilds a map from {@link RangeMap.toJSON}'s output (or that output after `JSON.parse`), validating it fully.
   * @throws InvalidArgumentError on anything that is not a valid map.
   */
  static fromJSON(json: unknown): RangeMap {
    if (typeof json !== 'object' || json === null || !Array.isArray((json as { ranges?: unknown }).ranges)) {
      fail('range map JSON must be an object with a ranges array');
    }
    return new RangeMap((json as RangeMapJSON).ranges);
  }

  /** The number of ranges. */
  get size(): number {
    return this.#ranges.length;
  }

  /** All ranges in key order (frozen). */
  ranges(): readonly Range[] {
    return this.#ranges;
  }

  /** The range with this id, if any. */
  get(id: number): Range | undefined {
    const i = this.#indexById.get(id);
    return i === undefined ? undefined : this.#ranges[i];
  }

  /**
   * The range holding `key` (`start <= key < end`). O(log n).
   * @throws InvalidArgumentError if `key` is not a string.
   */
  lookup(key: string): Range {
    checkKey(key, 'key');
    return this.#ranges[this.#indexOf(key)]!;
  }

  /**
   * The ranges a scan over `[from, to)` must visit, in key order: every range sharing at least one key with it.
   * `to === null` scans to the end; an empty interval (`to <= from`) gives `[]`.
   *
   * @example
   * ```ts
   * for (const r of map.rangesOverlapping('user:', 'user;')) { ... } // then scan max(from, r.start)..min(to, r.end)
   * ```
   */
  rangesOverlapping(from: string, to: string | null): Range[] {
    checkKey(from, 'from');
    if (to !== null) checkKey(to, 'to');
    if (to !== null && compareKeys(from, to) >= 0) return [];
    const first = this.#indexOf(from);
    let last = this.#ranges.length - 1;
    if (to !== null) {
      last = this.#indexOf(to);
      // A range that starts exactly at `to` holds no key of [from, to).
      if (this.#starts[last] === to) last--;
    }
    return this.#ranges.slice(first, last + 1);
  }

  /**
   * Cuts range `rangeId` at `atKey`: it keeps its id for `[start, atKey)` and `newId` takes `[atKey, end)`.
   * @returns A new map; this one is unchanged.
   * @throws InvalidArgumentError if the range does not exist, `newId` is taken or invalid, or `atKey` is not strictly
   *   inside the range (`start < atKey < end`).
   */
  split(rangeId: number, atKey: string, newId: number): RangeMap {
    const i = this.#requireIndex(rangeId);
    checkKey(atKey, 'split key');
    const r = this.#ranges[i]!;
    if (compareKeys(atKey, r.start) <= 0 || (r.end !== null && compareKeys(atKey, r.end) >= 0)) {
      fail(`split key is not strictly inside range ${rangeId}`, { rangeId, atKey, start: r.start, end: r.end });
    }
    if (this.#indexById.has(newId)) fail(`range id ${newId} is already in use`, { newId });
    const next = this.#ranges.slice();
    next.splice(i, 1, { id: r.id, start: r.start, end: atKey }, { id: newId, start: atKey, end: r.end });
    return new RangeMap(next);
  }

  /**
   * Joins range `leftId` with the range right after it, `rightId`; the result keeps `leftId`.
   * @returns A new map; this one is unchanged.
   * @throws InvalidArgumentError if either range does not exist or `rightId` does not immediately follow `leftId`.
   */
  merge(leftId: number, rightId: number): RangeMap {
    const i = this.#requireIndex(leftId);
    const j = this.#requireIndex(rightId);
    if (j !== i + 1) fail(`range ${rightId} does not immediately follow range ${leftId}`, { leftId, rightId });
    const left = this.#ranges[i]!;
    const right = this.#ranges[j]!;
    const next = this.#ranges.slice();
    next.splice(i, 2, { id: left.id, start: left.start, end: right.end });
    return new RangeMap(next);
  }

  /** `{ ranges }` in key order; {@link RangeMap.fromJSON} reverses it. Used by `JSON.stringify`. */
  toJSON(): RangeMapJSON {
    return { ranges: this.#ranges.map((r) => ({ id: r.id, start: r.start, end: r.end })) };
  }

  /** Index of the last range whose start is <= key (the first range starts at '', which is <= every key). */
  #indexOf(key: string): number {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (compareKeys(starts[mid]!, key) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #requireIndex(id: number): number {
    const i = this.#indexById.get(id);
    if (i === undefined) fail(`no range with id ${String(id)}`, { id });
    return i;
  }
}

function checkSize(value: number, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`${what} must be a finite number >= 0`);
}

/**
 * Whether a range of `rangeBytes` should be split: it holds more than `thresholdBytes`.
 * @throws InvalidArgumentError if a size is negative or not finite, or the threshold is 0.
 */
export function shouldSplit(rangeBytes: number, thresholdBytes: number): boolean {
  checkSize(rangeBytes, 'rangeBytes');
  checkSize(thresholdBytes, 'thresholdBytes');
  if (thresholdBytes === 0) fail('thresholdBytes must be > 0');
  return rangeBytes > thresholdBytes;
}

/**
 * Whether two adjacent ranges should be merged: together they hold less than `mergeThresholdBytes`. Keep the merge
 * threshold well below the split threshold (a quarter, say) so a merged range does not immediately split again.
 * @throws InvalidArgumentError if a size is negative or not finite.
 */
export function shouldMerge(leftBytes: number, rightBytes: number, mergeThresholdBytes: number): boolean {
  checkSize(leftBytes, 'leftBytes');
  checkSize(rightBytes, 'rightBytes');
  checkSize(mergeThresholdBytes, 'mergeThresholdBytes');
  return leftBytes + rightBytes < mergeThresholdBytes;
}

/**
 * Picks where to split a range from a sample of its keys, in key order ({@link compareKeys}): the sampled key strictly
 * inside the range (after `range.start`, before `range.end`) that divides the sample most evenly, which is the median
 * when the keys are distinct. Copies of a key stay on one side (the split key starts the right-hand range), so with
 * duplicates this is the best balance rather than the exact median; ties go to the smaller key. The result is always a
 * valid {@link RangeMap.split} point.
 *
 * @param sampleKeysInOrder - Keys sampled from the range, sorted by {@link compareKeys}; duplicates are allowed, keys
 *   outside the range are ignored.
 * @param range - The range's bounds; the whole key space (`''` to `null`) unless given.
 * @returns The split key, or `undefined` if no sampled key is strictly inside the range (the range cannot be split).
 * @throws InvalidArgumentError if the sample is not in key order.
 * @example
 * ```ts
 * chooseSplitKey(['a', 'b', 'c', 'd']);              // 'c'
 * chooseSplitKey(['a', 'a', 'a', 'b']);              // 'b'
 * chooseSplitKey(['k'], { start: 'k', end: null });  // undefined: only the start key
 * ```
 */
export function chooseSplitKey(
  sampleKeysInOrder: readonly string[],
  range: { readonly start: string; readonly end: string | null } = { start: '', end: null },
): string | undefined {
  if (!Array.isArray(sampleKeysInOrder)) fail('sampleKeysInOrder must be an array');
  checkKey(range.start, 'range.start');
  if (range.end !== null) checkKey(range.end, 'range.end');
  let atStart = 0; // sampled copies of the start key: always on the left
  const inside: string[] = [];
  let previous: string | undefined;
  for (const key of sampleKeysInOrder) {
    checkKey(key, 'sample key');
    if (previous !== undefined && compareKeys(previous, key) > 0) fail('sample keys are not in key order');
    previous = key;
    const c = compareKeys(key, range.start);
    if (c === 0) atStart++;
    else if (c > 0 && (range.end === null || compareKeys(key, range.end) < 0)) inside.push(key);
  }
  const total = atStart + inside.length;
  let best: string | undefined;
  let bestImbalance = Infinity;
  for (let i = 0; i < inside.length; i++) {
    if (i > 0 && inside[i] === inside[i - 1]) continue; // only where a new key begins can the range be cut
    const imbalance = Math.abs(2 * (atStart + i) - total); // |left - right| when cutting before inside[i]
    if (imbalance < bestImbalance) [best, bestImbalance] = [inside[i], imbalance];
  }
  return best;
}
