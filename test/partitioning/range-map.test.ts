import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  RangeMap,
  chooseSplitKey,
  compareKeys,
  shouldMerge,
  shouldSplit,
  type Range,
} from '../../src/partitioning/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const utf8Compare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const sign = (n: number) => Math.sign(n);

// Small alphabet including a character above U+FFFF and one in U+E000–FFFF, where byte and code-unit order differ.
const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'é', '\uFFEE', '\u{1F600}'), maxLength: 5 });

/** A random valid map: distinct non-empty boundary keys, sorted, with distinct ids in reverse order. */
const rangeMap = fc
  .tuple(fc.uniqueArray(key.filter((k) => k !== ''), { maxLength: 20 }), fc.integer({ min: 0, max: 1000 }))
  .map(([bounds, idBase]) => {
    const sorted = [...bounds].sort(compareKeys);
    const starts = ['', ...sorted];
    return new RangeMap(
      starts.map((start, i) => ({ id: idBase + starts.length - 1 - i, start, end: starts[i + 1] ?? null })),
    );
  });

const contains = (r: Range, k: string) => compareKeys(r.start, k) <= 0 && (r.end === null || compareKeys(k, r.end) < 0);

describe('compareKeys', () => {
  it('is UTF-8 byte order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(sign(compareKeys(a, b))).toBe(sign(utf8Compare(a, b)));
      }),
      { seed: 42, numRuns: 500 },
    );
    expect(compareKeys('\uFFFF', '\u{1F600}')).toBeLessThan(0); // '<' on strings says the opposite
    expect(compareKeys('', 'a')).toBeLessThan(0);
    expect(compareKeys('ab', 'a')).toBeGreaterThan(0);
  });
});

describe('RangeMap', () => {
  it('lookup agrees with a linear scan', () => {
    fc.assert(
      fc.property(rangeMap, fc.array(key, { maxLength: 30 }), (map, keys) => {
        for (const k of keys) expect(map.lookup(k)).toBe(map.ranges().find((r) => contains(r, k)));
        for (const r of map.ranges()) expect(map.lookup(r.start)).toBe(r); // boundaries belong to the right
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('rangesOverlapping returns exactly the ranges a scan of [from, to) needs, in order', () => {
    fc.assert(
      fc.property(rangeMap, key, fc.option(key, { nil: null }), (map, from, to) => {
        const got = map.rangesOverlapping(from, to);
        // A range overlaps [from, to) iff start < to and from < end (and the interval is non-empty).
        const nonEmpty = to === null || compareKeys(from, to) < 0;
        const startsBeforeTo = (r: Range) => to === null || compareKeys(r.start, to) < 0;
        const endsAfterFrom = (r: Range) => r.end === null || compareKeys(from, r.end) < 0;
        const expected = map.ranges().filter((r) => nonEmpty && startsBeforeTo(r) && endsAfterFrom(r));
        expect(got).toEqual(expected);
        // Consecutive ranges, so a scan visiting them in order sees keys in order.
        for (let i = 1; i < got.length; i++) expect(got[i]!.start).toBe(got[i - 1]!.end);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('split then merge gives back the same map; split keys route correctly', () => {
    fc.assert(
      fc.property(rangeMap, key, (map, at) => {
        const r = map.lookup(at);
        if (at === r.start) {
          expect(() => map.split(r.id, at, 99_999)).toThrow(InvalidArgumentError);
          return;
        }
        const split = map.split(r.id, at, 99_999);
        expect(split.size).toBe(map.size + 1);
        expect(split.lookup(at).id).toBe(99_999);
        expect(split.get(r.id)).toEqual({ id: r.id, start: r.start, end: at });
        expect(split.get(99_999)).toEqual({ id: 99_999, start: at, end: r.end });
        expect(map.lookup(at)).toBe(r); // the original is unchanged
        expect(split.merge(r.id, 99_999).toJSON()).toEqual(map.toJSON());
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('round-trips through JSON', () => {
    fc.assert(
      fc.property(rangeMap, (map) => {
        const back = RangeMap.fromJSON(JSON.parse(JSON.stringify(map)));
        expect(back.ranges()).toEqual(map.ranges());
      }),
      { seed: 42, numRuns: 100 },
    );
  });

  it('works on a small example', () => {
    const map = RangeMap.single(0).split(0, 'm', 1).split(0, 'f', 2);
    expect(map.ranges().map((r) => [r.id, r.start, r.end])).toEqual([
      [0, '', 'f'],
      [2, 'f', 'm'],
      [1, 'm', null],
    ]);
    expect(map.lookup('').id).toBe(0);
    expect(map.lookup('g').id).toBe(2);
    expect(map.lookup('zzz').id).toBe(1);
    expect(map.rangesOverlapping('a', 'f').map((r) => r.id)).toEqual([0]);
    expect(map.rangesOverlapping('a', 'f\0').map((r) => r.id)).toEqual([0, 2]);
    expect(map.rangesOverlapping('g', null).map((r) => r.id)).toEqual([2, 1]);
    expect(map.rangesOverlapping('g', 'g')).toEqual([]);
    expect(map.merge(0, 2).merge(0, 1).ranges()).toEqual([{ id: 0, start: '', end: null }]);
  });

  it('rejects invalid maps and operations', () => {
    const bad: unknown[] = [
      [],
      [{ id: 0, start: 'a', end: null }], // does not start at ''
      [{ id: 0, start: '', end: 'm' }], // does not reach +inf
      [{ id: 0, start: '', end: 'm' }, { id: 1, start: 'n', end: null }], // gap
      [{ id: 0, start: '', end: 'm' }, { id: 1, start: 'k', end: null }], // overlap
      [{ id: 0, start: '', end: 'm' }, { id: 0, start: 'm', end: null }], // duplicate id
      [{ id: 1, start: 'm', end: null }, { id: 0, start: '', end: 'm' }], // unsorted
      [{ id: 0, start: '', end: '' }, { id: 1, start: '', end: null }], // empty range
      [{ id: 0, start: '', end: 'z' }, { id: 1, start: 'z', end: 'a' }, { id: 2, start: 'a', end: null }], // reversed
      [{ id: 0, start: '', end: null }, { id: 1, start: 'a', end: null }], // null end in the middle
      [{ id: -1, start: '', end: null }],
      [{ id: 1.5, start: '', end: null }],
      [{ id: 0, start: '', end: 5 }],
    ];
    for (const ranges of bad) expect(() => new RangeMap(ranges as Range[])).toThrow(InvalidArgumentError);
    for (const json of [null, 5, {}, { ranges: 'x' }]) {
      expect(() => RangeMap.fromJSON(json)).toThrow(InvalidArgumentError);
    }

    const map = RangeMap.single(0).split(0, 'm', 1);
    expect(() => map.split(0, 'm', 2)).toThrow(InvalidArgumentError); // at the end: not strictly inside
    expect(() => map.split(0, '', 2)).toThrow(InvalidArgumentError); // at the start
    expect(() => map.split(0, 'c', 1)).toThrow(InvalidArgumentError); // id taken
    expect(() => map.split(7, 'c', 2)).toThrow(InvalidArgumentError); // no such range
    expect(() => map.merge(1, 0)).toThrow(InvalidArgumentError); // wrong order
    expect(() => map.split(0, 'c', 2).merge(0, 1)).toThrow(InvalidArgumentError); // not adjacent
    expect(() => map.lookup(3 as unknown as string)).toThrow(InvalidArgumentError);
  });
});

describe('split and merge helpers', () => {
  it('shouldSplit / shouldMerge compare against thresholds', () => {
    expect(shouldSplit(101, 100)).toBe(true);
    expect(shouldSplit(100, 100)).toBe(false);
    expect(shouldMerge(10, 20, 31)).toBe(true);
    expect(shouldMerge(10, 20, 30)).toBe(false);
    expect(() => shouldSplit(-1, 100)).toThrow(InvalidArgumentError);
    expect(() => shouldSplit(1, 0)).toThrow(InvalidArgumentError);
    expect(() => shouldMerge(1, Number.NaN, 3)).toThrow(InvalidArgumentError);
  });

  it('chooseSplitKey picks the median key strictly inside the range', () => {
    expect(chooseSplitKey(['a', 'b', 'c', 'd'])).toBe('c');
    expect(chooseSplitKey(['a', 'b', 'c'])).toBe('b');
    expect(chooseSplitKey(['k', 'k', 'l'], { start: 'k', end: null })).toBe('l');
    expect(chooseSplitKey(['a', 'a', 'a', 'b'])).toBe('b');
    expect(chooseSplitKey(['a', 'b', 'b', 'b'])).toBe('b');
    expect(chooseSplitKey(['x'])).toBe('x');
    expect(chooseSplitKey(['k'], { start: 'k', end: null })).toBeUndefined();
    expect(chooseSplitKey([])).toBeUndefined();
    expect(chooseSplitKey([''])).toBeUndefined();
    expect(chooseSplitKey(['m', 'n'], { start: 'a', end: 'm' })).toBeUndefined();
    expect(() => chooseSplitKey(['b', 'a'])).toThrow(InvalidArgumentError);
  });

  it('chooseSplitKey gives a valid split point that balances the sample best', () => {
    fc.assert(
      fc.property(rangeMap, fc.array(key, { maxLength: 20 }), fc.nat(), (map, sample, pick) => {
        const r = map.ranges()[pick % map.size]!;
        const inRange = sample.filter((k) => contains(r, k)).sort(compareKeys);
        const at = chooseSplitKey(inRange, r);
        const imbalance = (cut: string) => {
          const left = inRange.filter((k) => compareKeys(k, cut) < 0).length;
          return Math.abs(2 * left - inRange.length);
        };
        const candidates = inRange.filter((k) => k !== r.start);
        if (at === undefined) {
          expect(candidates).toEqual([]);
          return;
        }
        const split = map.split(r.id, at, 99_999); // strictly inside, or this throws
        expect(inRange.some((k) => split.lookup(k).id === 99_999)).toBe(true);
        for (const c of candidates) expect(imbalance(at)).toBeLessThanOrEqual(imbalance(c));
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
