import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_EJECTION_POLICY, InstanceHealth } from '../../src/dispatch/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const SEED = { seed: 42 };

function failTimes(h: InstanceHealth, n: number, now: number): void {
  for (let i = 0; i < n; i++) h.recordFailure(now);
}

/** The ejection length: the first time at which needsProbe hands out a probe, minus `from`. Leaves h probing. */
function ejectionLength(h: InstanceHealth, from: number): number {
  const length = h.ejectedUntil! - from;
  expect(h.needsProbe(from + length - 1)).toBe(false);
  expect(h.needsProbe(from + length)).toBe(true);
  return length;
}

describe('InstanceHealth', () => {
  it('defaults to 3 failures, 1 s base, 30 s max', () => {
    expect(DEFAULT_EJECTION_POLICY).toMatchObject({ consecutiveFailures: 3, baseEjectMs: 1000, maxEjectMs: 30_000 });
    const h = new InstanceHealth();
    failTimes(h, 3, 0);
    expect(h.state).toBe('ejected');
    expect(ejectionLength(h, 0)).toBe(1000);
  });

  it('is ejected after N consecutive failures, not before', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), (n) => {
        const h = new InstanceHealth({ consecutiveFailures: n });
        failTimes(h, n - 1, 10);
        expect(h.isAvailable(10)).toBe(true);
        expect(h.state).toBe('healthy');
        h.recordFailure(10);
        expect(h.isAvailable(10)).toBe(false);
        expect(h.state).toBe('ejected');
      }),
      SEED,
    );
  });

  it('a success in between resets the failure count', () => {
    const h = new InstanceHealth({ consecutiveFailures: 3 });
    for (let round = 0; round < 5; round++) {
      failTimes(h, 2, round);
      h.recordSuccess(round);
    }
    failTimes(h, 2, 9);
    expect(h.isAvailable(9)).toBe(true);
  });

  it('is readmitted only after the ejection time and a successful probe', () => {
    const h = new InstanceHealth({ consecutiveFailures: 2, baseEjectMs: 1000 });
    failTimes(h, 2, 5000);
    expect(h.ejectedUntil).toBe(6000);
    // During the ejection: no traffic, no probe, and an early probe result changes nothing.
    expect(h.isAvailable(5999)).toBe(false);
    expect(h.needsProbe(5999)).toBe(false);
    h.probeSucceeded(5999);
    h.recordSuccess(5999); // a late answer to a call sent before the ejection
    expect(h.state).toBe('ejected');
    // Time is over: still no traffic until the probe answers.
    expect(h.isAvailable(6000)).toBe(false);
    expect(h.needsProbe(6000)).toBe(true);
    expect(h.state).toBe('probing');
    expect(h.isAvailable(6001)).toBe(false);
    expect(h.needsProbe(6001)).toBe(false); // one probe at a time
    h.probeSucceeded(6050);
    expect(h.state).toBe('healthy');
    expect(h.isAvailable(6050)).toBe(true);
    expect(h.ejectedUntil).toBeUndefined();
    // Readmitted with a clean failure count.
    h.recordFailure(6060);
    expect(h.isAvailable(6060)).toBe(true);
  });

  it('a failed probe ejects again for twice as long, doubling up to the max', () => {
    const h = new InstanceHealth({ consecutiveFailures: 1, baseEjectMs: 1000, maxEjectMs: 30_000 });
    h.recordFailure(0);
    const lengths: number[] = [];
    let now = 0;
    for (let i = 0; i < 8; i++) {
      const length = ejectionLength(h, now);
      lengths.push(length);
      now += length + 7; // the probe takes 7 ms to fail
      h.probeFailed(now);
      expect(h.state).toBe('ejected');
    }
    expect(lengths).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('ejections after a readmission keep doubling; a successful call resets to the base', () => {
    const h = new InstanceHealth({ consecutiveFailures: 1, baseEjectMs: 100, maxEjectMs: 1000 });
    let now = 0;
    const ejectAndReadmit = (): number => {
      h.recordFailure(now);
      const length = ejectionLength(h, now);
      now += length;
      h.probeSucceeded(now);
      expect(h.isAvailable(now)).toBe(true);
      return length;
    };
    expect([ejectAndReadmit(), ejectAndReadmit(), ejectAndReadmit()]).toEqual([100, 200, 400]);
    h.recordSuccess(now);
    expect(ejectAndReadmit()).toBe(100);
  });

  it('hands out another probe if one stays unreported for probeTimeoutMs', () => {
    const h = new InstanceHealth({ consecutiveFailures: 1, baseEjectMs: 100, probeTimeoutMs: 500 });
    h.recordFailure(0);
    expect(h.needsProbe(100)).toBe(true);
    expect(h.needsProbe(599)).toBe(false);
    expect(h.needsProbe(600)).toBe(true);
    expect(h.needsProbe(600)).toBe(false);
    h.probeFailed(650);
    expect(h.state).toBe('ejected');
    expect(h.ejectedUntil).toBe(850);
  });

  it('ignores probe results while healthy and call results while out of traffic', () => {
    const h = new InstanceHealth({ consecutiveFailures: 2 });
    h.probeFailed(0);
    h.probeSucceeded(0);
    expect(h.state).toBe('healthy');
    failTimes(h, 2, 0);
    failTimes(h, 10, 1); // stale failures do not extend the ejection
    expect(h.ejectedUntil).toBe(1000);
  });

  it('rejects a bad policy and a NaN clock', () => {
    for (const bad of [
      { consecutiveFailures: 0 },
      { consecutiveFailures: 1.5 },
      { baseEjectMs: -1 },
      { maxEjectMs: Infinity },
      { baseEjectMs: 5000, maxEjectMs: 1000 },
      { probeTimeoutMs: NaN },
    ]) {
      expect(() => new InstanceHealth(bad)).toThrow(InvalidArgumentError);
    }
    expect(() => new InstanceHealth({ baseEjectMs: undefined })).not.toThrow();
    expect(() => new InstanceHealth().isAvailable(NaN)).toThrow(InvalidArgumentError);
  });

  it('property: any sequence of events keeps the documented rules', () => {
    type Op = 'success' | 'failure' | 'needsProbe' | 'probeOk' | 'probeFail';
    const op = fc.constantFrom<Op>('success', 'failure', 'needsProbe', 'probeOk', 'probeFail');
    // Small steps land inside ejections (100 … 1000 ms), large ones past them.
    const step = fc.tuple(op, fc.oneof(fc.nat(60), fc.nat(3000)));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 60 }), (n, steps) => {
        const base = 100;
        const max = 1000;
        const h = new InstanceHealth({ consecutiveFailures: n, baseEjectMs: base, maxEjectMs: max });
        let now = 0;
        let failuresInARow = 0;
        let expectedLength = base;
        for (const [kind, dt] of steps) {
          now += dt;
          const before = h.state;
          const until = h.ejectedUntil;
          if (kind === 'success') h.recordSuccess(now);
          else if (kind === 'failure') h.recordFailure(now);
          else if (kind === 'needsProbe') h.needsProbe(now);
          else if (kind === 'probeOk') h.probeSucceeded(now);
          else h.probeFailed(now);
          const after = h.state;
          expect(h.isAvailable(now)).toBe(after === 'healthy');
          if (before === 'healthy') {
            if (kind === 'success') [failuresInARow, expectedLength] = [0, base];
            if (kind === 'failure') failuresInARow++;
            // Ejected exactly at the N-th failure in a row, for the current length.
            expect(after).toBe(failuresInARow === n ? 'ejected' : 'healthy');
          } else {
            // Readmitted only by a successful probe once the ejection time is over.
            if (after === 'healthy') expect(kind === 'probeOk' && now >= until!).toBe(true);
            if (kind === 'success' || kind === 'failure') expect(after).toBe(before);
          }
          if (after === 'healthy') {
            if (before !== 'healthy') failuresInARow = 0;
          } else if (h.ejectedUntil !== until || before === 'healthy') {
            // A new ejection: starts now, lasts the current length, and the next one doubles (capped).
            expect(h.ejectedUntil! - now).toBe(expectedLength);
            expect(expectedLength).toBeLessThanOrEqual(max);
            expectedLength = Math.min(expectedLength * 2, max);
            failuresInARow = 0;
          }
        }
      }),
      SEED,
    );
  });
});
