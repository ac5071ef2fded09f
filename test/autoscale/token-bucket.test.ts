import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { TokenBucket } from '../../src/autoscale/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const SEED = { seed: 42 };

/** Uniform in [0, max] on a fine grid. (fc.double crowds near 0, which would leave most cases trivially idle.) */
const fraction = (max: number) => fc.integer({ min: 0, max: 1_000_000 }).map((i) => (i / 1_000_000) * max);

interface Grant {
  at: number;
  amount: number;
}

/** A rate schedule: `rates[i].rate` units/s from `rates[i].from` ms on. */
type Schedule = { from: number; rate: number }[];

/** How much the schedule allows over [a, b] ms: the integral of the rate. */
function allowance(schedule: Schedule, a: number, b: number): number {
  let sum = 0;
  schedule.forEach(({ from, rate }, i) => {
    const to = schedule[i + 1]?.from ?? Infinity;
    const lo = Math.max(a, from);
    const hi = Math.min(b, to);
    if (hi > lo) sum += (rate * (hi - lo)) / 1000;
  });
  return sum;
}

/** Every window between two grants carries at most the allowance plus one burst. */
function checkWindows(grants: Grant[], schedule: Schedule, burst: number): void {
  for (let i = 0; i < grants.length; i++) {
    let sent = 0;
    for (let j = i; j < grants.length; j++) {
      sent += grants[j]!.amount;
      const limit = allowance(schedule, grants[i]!.at, grants[j]!.at) + burst;
      if (sent > limit * (1 + 1e-9) + 1e-9) {
        expect.fail(`${sent} went in [${grants[i]!.at}, ${grants[j]!.at}] ms, more than ${limit}`);
      }
    }
  }
}

/** Numbers spread over six orders of magnitude, so slow buckets (that run dry) and fast ones both come up. */
const magnitude = fc.integer({ min: 0, max: 5 }).chain((e) => fc.integer({ min: 10 ** e, max: 10 ** (e + 1) }));

const requests = fc.array(
  fc.record({
    // Back-to-back requests, steady ones, and long idle spells that fill the bucket.
    gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 120_000 })),
    share: fc.oneof(fc.constant(1), fraction(1)), // of the burst
    newRate: fc.option(magnitude, { nil: undefined, freq: 3 }),
  }),
  { maxLength: 60 },
);

/** A caller that waits as told and asks again; optionally changes the rate before a request. */
function drive(
  bucket: TokenBucket,
  rate: number,
  burst: number,
  reqs: { gap: number; share: number; newRate: number | undefined }[],
  passNow: boolean,
): { grants: Grant[]; schedule: Schedule } {
  const grants: Grant[] = [];
  const schedule: Schedule = [{ from: 0, rate }];
  let now = 0;
  for (const { gap, share, newRate } of reqs) {
    now += gap;
    if (newRate !== undefined) {
      bucket.setRate(newRate, passNow ? now : undefined);
      schedule.push({ from: now, rate: newRate });
    }
    const amount = share * burst;
    for (let tries = 0; ; tries++) {
      const wait = bucket.take(now, amount);
      if (wait === 0) break;
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(Number.isInteger(wait)).toBe(true);
      if (tries > 3) expect.fail(`still waiting after ${tries} tries`);
      now += wait;
    }
    grants.push({ at: now, amount });
  }
  return { grants, schedule };
}

describe('TokenBucket', () => {
  it('lets a full burst go at once, then meters at the rate', () => {
    const b = new TokenBucket(1000, 500); // 1000/s = 1 per ms
    expect(b.take(0, 500)).toBe(0);
    expect(b.take(0, 100)).toBe(100);
    expect(b.take(99, 100)).toBe(1);
    expect(b.take(100, 100)).toBe(0);
    expect(b.take(100_000, 0)).toBe(0);
    expect(b.take(100_000, 500)).toBe(0); // refilled, but never beyond the burst
    expect(b.take(100_000, 1)).toBe(1);
  });

  it('never lets more than rate × t + burst through in any window (constant rate)', () => {
    fc.assert(
      fc.property(magnitude, magnitude, requests, (rate, burst, reqs) => {
        const bucket = new TokenBucket(rate, burst);
        const { grants, schedule } = drive(bucket, rate, burst, reqs.map((r) => ({ ...r, newRate: undefined })), true);
        checkWindows(grants, schedule, burst);
      }),
      SEED,
    );
  });

  it('keeps the bound when the rate changes, with or without `now`', () => {
    fc.assert(
      fc.property(
        magnitude,
        magnitude,
        requests,
        fc.boolean(),
        (rate, burst, reqs, passNow) => {
          const bucket = new TokenBucket(rate, burst);
          const { grants, schedule } = drive(bucket, rate, burst, reqs, passNow);
          checkWindows(grants, schedule, burst);
        },
      ),
      SEED,
    );
  });

  it('a rate raised without `now` is not credited for the time before', () => {
    const b = new TokenBucket(1, 1000); // 1/s
    expect(b.take(0, 1000)).toBe(0);
    b.setRate(1000); // at some time in (0, 10 s]: the bucket cannot know when
    // 10 s at 1/s is 10 tokens; crediting 10 s at 1000/s would let a full burst through.
    expect(b.take(10_000, 11)).toBe(1);
    expect(b.take(10_001, 11)).toBe(0);
    // With `now`, each stretch is credited at its own rate.
    const c = new TokenBucket(1, 1000);
    c.take(0, 1000);
    c.setRate(1000, 10_000);
    expect(c.take(10_100, 110)).toBe(0);
  });

  it('a wait it returns is enough: the same request then goes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 50_000 }),
        fraction(1),
        (rate, burst, share) => {
          const b = new TokenBucket(rate, burst);
          b.take(0, burst);
          const wait = b.take(0, share * burst);
          // One extra ms at most, for rounding.
          expect(b.take(wait, share * burst) === 0 || b.take(wait + 1, share * burst) === 0).toBe(true);
        },
      ),
      SEED,
    );
  });

  it('rejects what could never work', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(InvalidArgumentError);
    expect(() => new TokenBucket(1, 0)).toThrow(InvalidArgumentError);
    expect(() => new TokenBucket(Number.POSITIVE_INFINITY, 1)).toThrow(InvalidArgumentError);
    const b = new TokenBucket(10, 100);
    expect(() => b.take(0, 101)).toThrow(/exceeds the burst/);
    expect(() => b.take(0, -1)).toThrow(InvalidArgumentError);
    expect(() => b.setRate(-5)).toThrow(InvalidArgumentError);
    b.take(10, 1);
    expect(() => b.take(9, 1)).toThrow(InvalidArgumentError);
    expect(() => b.take(Number.NaN, 1)).toThrow(InvalidArgumentError);
  });
});
