/**
 * The pure split/merge decisions: the decaying request rate and sustained-heat detection, the traffic-halving split
 * key, and the choice of neighbours to merge — property-tested with fixed seeds.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  RangeMap,
  chooseLoadSplitKey,
  chooseMerges,
  compareKeys,
  isHot,
  observeLoad,
  type LoadState,
  type RangeLoad,
} from '../../src/partitioning/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const SEED = 42;

describe('observeLoad / isHot', () => {
  it('converges to a steady rate and stays between the old rate and the new interval rate', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e5, noNaN: true }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 10_000 }),
        (prevRate, ops, dt, halfLifeMs) => {
          const prev: LoadState = { rate: prevRate, at: 1000, since: 0, hotSince: null };
          const next = observeLoad(prev, ops, 1000 + dt, { halfLifeMs });
          const interval = (ops * 1000) / dt;
          const tolerance = 1e-9 * Math.max(1, prevRate, interval);
          expect(next.rate).toBeGreaterThanOrEqual(Math.min(prevRate, interval) - tolerance);
          expect(next.rate).toBeLessThanOrEqual(Math.max(prevRate, interval) + tolerance);
          expect(next.since).toBe(0);
          expect(next.at).toBe(1000 + dt);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
    let s = observeLoad(undefined, 0, 0, { halfLifeMs: 1000 });
    for (let t = 1000; t <= 20_000; t += 1000) s = observeLoad(s, 700, t, { halfLifeMs: 1000 });
    expect(s.rate).toBeCloseTo(700, 2); // 700 · (1 − 2^−20)
    for (let t = 21_000; t <= 40_000; t += 1000) s = observeLoad(s, 0, t, { halfLifeMs: 1000 });
    expect(s.rate).toBeLessThan(0.01);
  });

  it('is hot only after the rate has stayed above the threshold for the whole sustain window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 100, max: 1500 }),
        fc.integer({ min: 1000, max: 10_000 }),
        (perSecond, hotOps, sustainMs) => {
          const opts = { halfLifeMs: 1000, hotOps };
          let s = observeLoad(undefined, 0, 0, opts);
          const above: boolean[] = [];
          for (let i = 0; i < perSecond.length; i++) {
            const now = (i + 1) * 1000;
            s = observeLoad(s, perSecond[i]!, now, opts);
            above.push(s.rate > hotOps);
            // Hot exactly when every observation in [now - sustainMs, now] was above the threshold.
            let run = 0;
            for (let j = above.length - 1; j >= 0 && above[j]; j--) run++;
            const expected = run > 0 && (run - 1) * 1000 >= sustainMs;
            expect(isHot(s, now, sustainMs)).toBe(expected);
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('a short burst does not make a range hot; sustained traffic does', () => {
    const opts = { halfLifeMs: 1000, hotOps: 500 };
    let s = observeLoad(undefined, 0, 0, opts);
    s = observeLoad(s, 5000, 1000, opts); // one second at 5000/s
    for (let t = 2000; t <= 4000; t += 1000) s = observeLoad(s, 0, t, opts);
    expect(isHot(s, 4000, 3000)).toBe(false);
    for (let t = 5000; t <= 12_000; t += 1000) s = observeLoad(s, 800, t, opts);
    expect(isHot(s, 12_000, 3000)).toBe(true);
  });

  it('refuses negative, non-finite or missing numbers', () => {
    expect(() => observeLoad(undefined, -1, 0, { halfLifeMs: 1000 })).toThrow(InvalidArgumentError);
    expect(() => observeLoad(undefined, 1, Number.NaN, { halfLifeMs: 1000 })).toThrow(InvalidArgumentError);
    expect(() => observeLoad(undefined, 1, 0, { halfLifeMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => isHot(undefined, 0, -5)).toThrow(InvalidArgumentError);
  });
});

const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', 'é', '\u{1F600}'), minLength: 1, maxLength: 3 });

describe('chooseLoadSplitKey', () => {
  it('returns a key strictly inside the range that gives each side at least minShare of the sampled requests', () => {
    fc.assert(
      fc.property(
        fc.array(key, { maxLength: 200 }),
        fc.option(key, { nil: undefined }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (sample, end, minShare) => {
          const range = { start: 'a', end: end !== undefined && compareKeys(end, 'a') > 0 ? end : null };
          const inside = sample.filter((k) => compareKeys(k, range.start) >= 0 && (range.end === null || compareKeys(k, range.end) < 0));
          const cut = chooseLoadSplitKey(sample, range, minShare);
          if (!cut) return;
          expect(compareKeys(cut.key, range.start)).toBeGreaterThan(0);
          if (range.end !== null) expect(compareKeys(cut.key, range.end)).toBeLessThan(0);
          const left = inside.filter((k) => compareKeys(k, cut.key) < 0).length;
          expect(cut.leftShare).toBeCloseTo(left / inside.length, 12);
          expect(Math.min(cut.leftShare, 1 - cut.leftShare)).toBeGreaterThanOrEqual(minShare - 1e-12);
          // No other cut point divides the sampled traffic more evenly.
          for (const k of new Set(inside)) {
            if (compareKeys(k, range.start) <= 0) continue;
            const l = inside.filter((x) => compareKeys(x, k) < 0).length;
            expect(Math.abs(2 * l - inside.length)).toBeGreaterThanOrEqual(Math.abs(2 * left - inside.length));
          }
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('halves the traffic when it is spread, and refuses when one key carries it', () => {
    const spread = Array.from({ length: 400 }, (_, i) => `k${String(i % 20).padStart(2, '0')}`);
    expect(chooseLoadSplitKey(spread, { start: '', end: null })).toEqual({ key: 'k10', leftShare: 0.5 });
    const oneKey = [...Array(90).fill('hot'), ...Array(10).fill('cold')];
    expect(chooseLoadSplitKey(oneKey, { start: '', end: null })).toBeUndefined();
  });
});

const owner = fc.constantFrom('n1', 'n2', 'n3');
const rangeLoads = fc
  .array(
    fc.record({
      owner,
      bytes: fc.integer({ min: 0, max: 1000 }),
      opsPerSec: fc.double({ min: 0, max: 200, noNaN: true }),
      busy: fc.boolean(),
    }),
    { minLength: 1, maxLength: 30 },
  )
  .map((rs) => rs.map((r, i): RangeLoad => ({ ...r, id: 100 - i }))); // ids not in key order, as after splits

describe('chooseMerges', () => {
  it('chooses disjoint adjacent pairs within the limits, maximally, same-owner pairs first, moving the smaller', () => {
    fc.assert(
      fc.property(
        rangeLoads,
        fc.integer({ min: 0, max: 1500 }),
        fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
        fc.boolean(),
        (ranges, mergeBytes, mergeOps, sameOwnerOnly) => {
          const pairs = chooseMerges(ranges, { mergeBytes, mergeOps, sameOwnerOnly });
          const index = new Map(ranges.map((r, i) => [r.id, i]));
          const used = new Set<number>();
          let lastIndex = -1;
          const ok = (i: number) => {
            const [a, b] = [ranges[i]!, ranges[i + 1]!];
            return !a.busy && !b.busy && a.bytes + b.bytes < mergeBytes && a.opsPerSec + b.opsPerSec < (mergeOps ?? Infinity);
          };
          for (const p of pairs) {
            const i = index.get(p.left)!;
            expect(index.get(p.right)).toBe(i + 1); // neighbours
            expect(i).toBeGreaterThan(lastIndex); // in key order
            lastIndex = i;
            expect(used.has(i) || used.has(i + 1)).toBe(false); // disjoint
            used.add(i).add(i + 1);
            expect(ok(i)).toBe(true);
            const [a, b] = [ranges[i]!, ranges[i + 1]!];
            expect(p.bytes).toBe(a.bytes + b.bytes);
            if (a.owner === b.owner) expect(p.move).toBeUndefined();
            else {
              expect(sameOwnerOnly).toBe(false);
              const [moved, stays] = b.bytes < a.bytes ? [b, a] : [a, b];
              expect(p.move).toEqual({ partition: moved.id, from: moved.owner, to: stays.owner });
            }
          }
          // Maximal: no qualifying pair of neighbours is left with both unpaired.
          for (let i = 0; i + 1 < ranges.length; i++) {
            if (used.has(i) || used.has(i + 1) || !ok(i)) continue;
            expect(sameOwnerOnly && ranges[i]!.owner !== ranges[i + 1]!.owner).toBe(true);
          }
          // Same-owner pairs first: they are exactly the pairs a same-owner-only choice makes, whatever crosses owners.
          const sameOwner = pairs.filter((x) => !x.move);
          expect(sameOwner).toEqual(chooseMerges(ranges, { mergeBytes, mergeOps, sameOwnerOnly: true }));
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('every chosen pair can be merged in a RangeMap, in any order', () => {
    fc.assert(
      fc.property(rangeLoads, fc.integer({ min: 0, max: 1500 }), (ranges, mergeBytes) => {
        let map = new RangeMap(
          ranges.map((r, i) => ({ id: r.id, start: i === 0 ? '' : `k${String(i).padStart(3, '0')}`, end: i + 1 < ranges.length ? `k${String(i + 1).padStart(3, '0')}` : null })),
        );
        const pairs = chooseMerges(ranges, { mergeBytes });
        for (const p of [...pairs].reverse()) map = map.merge(p.left, p.right);
        expect(map.size).toBe(ranges.length - pairs.length);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('never merges a busy range, and refuses bad input', () => {
    const r = (id: number, bytes: number, busy = false): RangeLoad => ({ id, owner: 'n1', bytes, opsPerSec: 0, busy });
    expect(chooseMerges([r(0, 1), r(1, 1, true), r(2, 1)], { mergeBytes: 100 })).toEqual([]);
    expect(chooseMerges([r(0, 1), r(1, 1), r(2, 1)], { mergeBytes: 100 })).toEqual([{ left: 0, right: 1, bytes: 2 }]);
    expect(() => chooseMerges([r(0, 1), r(0, 1)], { mergeBytes: 100 })).toThrow(InvalidArgumentError);
    expect(() => chooseMerges([r(0, -1)], { mergeBytes: 100 })).toThrow(InvalidArgumentError);
    expect(() => chooseMerges([r(0, 1)], { mergeBytes: Number.NaN })).toThrow(InvalidArgumentError);
  });
});
