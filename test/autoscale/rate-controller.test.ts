import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { RateController, validateRateOptions, type RateControllerOptions } from '../../src/autoscale/index.js';
import { ConfigError, InvalidArgumentError } from '../../src/errors/index.js';

const SEED = { seed: 42 };

/** Uniform in [0, max] on a fine grid. (fc.double crowds near 0, which would leave most cases trivially idle.) */
const fraction = (max: number) => fc.integer({ min: 0, max: 1_000_000 }).map((i) => (i / 1_000_000) * max);
const MiB = 2 ** 20;

const BASE: RateControllerOptions = {
  maxBytesPerSec: 100 * MiB,
  minBytesPerSec: 1 * MiB,
  baselineP99Ms: 7,
  maxP99Ratio: 2,
};

const optionsArb: fc.Arbitrary<RateControllerOptions> = fc
  .record({
    min: fc.integer({ min: 1, max: 1_000_000 }),
    spread: fc.integer({ min: 1, max: 100_000 }),
    initial: fc.option(fraction(1), { nil: undefined }),
    baselineP99Ms: fc.integer({ min: 1, max: 100 }),
    maxP99Ratio: fraction(4).map((x) => 1 + x),
  })
  .map(({ min, spread, initial, baselineP99Ms, maxP99Ratio }) => ({
    minBytesPerSec: min,
    maxBytesPerSec: min * spread,
    initialBytesPerSec: initial === undefined ? undefined : min + (min * spread - min) * initial,
    baselineP99Ms,
    maxP99Ratio,
  }));

describe('RateController', () => {
  it('starts at min unless told otherwise, and explains each change', () => {
    const c = new RateController(BASE);
    expect(c.bytesPerSec).toBe(1 * MiB);
    expect(c.onSample({ now: 0, foregroundP99Ms: 8 })).toBe(11 * MiB);
    expect(c.reason).toBe('foreground p99 8 ms <= 2 × 7 ms: 1 MiB/s -> 11 MiB/s');
    expect(c.onSample({ now: 1000, foregroundP99Ms: 31 })).toBe(5.5 * MiB);
    expect(c.reason).toBe('foreground p99 31 ms > 2 × 7 ms: 11 MiB/s -> 5.5 MiB/s');
    // Exactly at the limit is not over it.
    expect(c.onSample({ now: 2000, foregroundP99Ms: 14 })).toBe(15.5 * MiB);
  });

  it('the rate stays within [min, max] under any latency series', () => {
    fc.assert(
      fc.property(optionsArb, fc.array(fraction(1000), { maxLength: 200 }), (o, p99s) => {
        const c = new RateController(o);
        const inRange = (r: number) => r >= o.minBytesPerSec && r <= o.maxBytesPerSec;
        expect(inRange(c.bytesPerSec)).toBe(true);
        p99s.forEach((p99, i) => {
          const r = c.onSample({ now: i * 1000, foregroundP99Ms: p99 });
          if (!inRange(r) || r !== c.bytesPerSec) {
            expect.fail(`rate ${r} outside [${o.minBytesPerSec}, ${o.maxBytesPerSec}] after sample ${i}`);
          }
        });
      }),
      SEED,
    );
  });

  it('sustained high p99 drives the rate from max to min in ceil(log2(max / min)) samples', () => {
    fc.assert(
      fc.property(optionsArb, (o) => {
        const c = new RateController({ ...o, initialBytesPerSec: o.maxBytesPerSec });
        const bad = o.maxP99Ratio * o.baselineP99Ms * 1.01 + 1;
        let steps = 0;
        let previous = c.bytesPerSec;
        while (c.bytesPerSec > o.minBytesPerSec) {
          const r = c.onSample({ now: steps * 1000, foregroundP99Ms: bad });
          expect(r).toBe(Math.max(o.minBytesPerSec, previous / 2));
          previous = r;
          steps++;
        }
        expect(steps).toBe(Math.max(0, Math.ceil(Math.log2(o.maxBytesPerSec / o.minBytesPerSec) - 1e-9)));
      }),
      SEED,
    );
  });

  it('recovers gradually: at most one step per good sample, about ten samples from min to max by default', () => {
    fc.assert(
      fc.property(optionsArb, fc.integer({ min: 1, max: 100 }), (o, needed) => {
        // A step that needs `needed` good samples from min to max.
        const step = (o.maxBytesPerSec - o.minBytesPerSec) / needed || 1;
        const c = new RateController({ ...o, initialBytesPerSec: o.minBytesPerSec, increaseStepBytesPerSec: step });
        let samples = 0;
        let previous = c.bytesPerSec;
        while (c.bytesPerSec < o.maxBytesPerSec && samples <= needed + 1) {
          const r = c.onSample({ now: samples * 1000, foregroundP99Ms: 0 });
          expect(r - previous).toBeLessThanOrEqual(step * (1 + 1e-12));
          previous = r;
          samples++;
        }
        if (o.maxBytesPerSec > o.minBytesPerSec) {
          expect(samples).toBeGreaterThanOrEqual(needed); // never sooner
          expect(samples).toBeLessThanOrEqual(needed + 1); // +1: rounding at the last step
        }
      }),
      SEED,
    );
    const c = new RateController(BASE);
    let n = 0;
    for (; c.bytesPerSec < BASE.maxBytesPerSec; n++) c.onSample({ now: n, foregroundP99Ms: 1 });
    expect(n).toBe(10);
    // One bad sample halves the rate; winning it back takes several good ones.
    c.onSample({ now: n++, foregroundP99Ms: 100 });
    expect(c.bytesPerSec).toBe(50 * MiB);
    for (let k = 0; k < 4; k++) c.onSample({ now: n++, foregroundP99Ms: 1 });
    expect(c.bytesPerSec).toBe(90 * MiB);
  });

  it('rejects bad options with the field name, bad samples, and a clock going back', () => {
    const cases: [string, Partial<RateControllerOptions>][] = [
      ['maxBytesPerSec', { maxBytesPerSec: 0 }],
      ['minBytesPerSec', { minBytesPerSec: -1 }],
      ['minBytesPerSec', { minBytesPerSec: 200 * MiB }],
      ['initialBytesPerSec', { initialBytesPerSec: 200 * MiB }],
      ['baselineP99Ms', { baselineP99Ms: Number.NaN }],
      ['maxP99Ratio', { maxP99Ratio: 0.5 }],
      ['increaseStepBytesPerSec', { increaseStepBytesPerSec: 0 }],
      ['decreaseFactor', { decreaseFactor: 1 }],
    ];
    for (const [field, change] of cases) {
      const err = (() => {
        try {
          validateRateOptions({ ...BASE, ...change });
        } catch (e) {
          return e;
        }
      })();
      expect(err, field).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).details.field).toBe(field);
    }
    const c = new RateController(BASE);
    c.onSample({ now: 10, foregroundP99Ms: 1 });
    expect(() => c.onSample({ now: 9, foregroundP99Ms: 1 })).toThrow(InvalidArgumentError);
    expect(() => c.onSample({ now: 11, foregroundP99Ms: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => c.onSample({ now: 11, foregroundP99Ms: -1 })).toThrow(InvalidArgumentError);
  });
});
