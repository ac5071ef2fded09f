import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  Autoscaler,
  HISTORY_LIMIT,
  validatePolicy,
  type Decision,
  type ScalePolicy,
} from '../../src/autoscale/index.js';
import { ConfigError, InvalidArgumentError } from '../../src/errors/index.js';

const SEED = { seed: 42 };

/** Uniform in [0, max] on a fine grid. (fc.double crowds near 0, which would leave most cases trivially idle.) */
const fraction = (max: number) => fc.integer({ min: 0, max: 1_000_000 }).map((i) => (i / 1_000_000) * max);
const GiB = 2 ** 30;

const BASE: ScalePolicy = {
  metric: 'bytes',
  target: 100,
  highWatermark: 1.2,
  lowWatermark: 0.5,
  minNodes: 2,
  maxNodes: 10,
  scaleOutCooldownMs: 60_000,
  scaleInCooldownMs: 300_000,
  stabilizationMs: 30_000,
};

/** Random valid policies: watermarks on a 0.05 grid, small node ranges so the bounds get hit. */
const policyArb: fc.Arbitrary<ScalePolicy> = fc
  .record({
    target: fc.integer({ min: 1, max: 1000 }),
    high: fc.integer({ min: 20, max: 60 }), // in twentieths: 1.0 .. 3.0
    low: fc.integer({ min: 1, max: 19 }), // 0.05 .. 0.95
    minNodes: fc.integer({ min: 1, max: 4 }),
    extra: fc.integer({ min: 0, max: 8 }),
    scaleOutCooldownMs: fc.integer({ min: 0, max: 120_000 }),
    scaleInCooldownMs: fc.integer({ min: 0, max: 600_000 }),
    stabilizationMs: fc.integer({ min: 0, max: 60_000 }),
    maxStepOut: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    maxStepIn: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
  })
  .map(({ high, low, extra, ...r }) => ({
    ...r,
    metric: 'opsPerSec',
    highWatermark: high / 20,
    lowWatermark: low / 20,
    maxNodes: r.minNodes + extra,
  }));

function run(scaler: Autoscaler, now: number, nodes: number, perNode: number): Decision {
  return scaler.observe({ now, nodes, total: perNode * nodes });
}

describe('Autoscaler', () => {
  it('explains a scale-out the way status shows it', () => {
    const scaler = new Autoscaler({ ...BASE, target: 1.5 * GiB, minNodes: 1 });
    expect(run(scaler, 0, 3, 1.9 * GiB)).toEqual({
      action: 'none',
      reason: 'bytes/node 1.9 GiB > 1.2 × 1.5 GiB for 0 ms of 30 s',
    });
    expect(run(scaler, 30_000, 3, 1.9 * GiB)).toEqual({
      action: 'scale',
      from: 3,
      to: 4,
      reason: 'bytes/node 1.9 GiB > 1.2 × 1.5 GiB for 30 s: 3 -> 4',
    });
  });

  it('a constant load within the band never scales', () => {
    fc.assert(
      fc.property(policyArb, fc.nat(), fraction(1), (policy, n, f) => {
        const scaler = new Autoscaler(policy);
        const nodes = policy.minNodes + (n % (policy.maxNodes - policy.minNodes + 1));
        // Strictly inside [low, high] × target, away from the edges by more than rounding.
        const lo = policy.lowWatermark * (1 + 1e-9);
        const hi = policy.highWatermark * (1 - 1e-9);
        const perNode = (lo + (hi - lo) * f) * policy.target;
        const seen = new Set<string>();
        for (let t = 0; t <= 3_600_000; t += 15_000) {
          const d = run(scaler, t, nodes, perNode);
          seen.add(d.action === 'none' && d.reason.includes('within') ? 'held' : d.reason);
        }
        expect([...seen]).toEqual(['held']);
      }),
      SEED,
    );
  });

  it('a sustained step up scales out after exactly stabilizationMs, not before', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 200, max: 7_000 }), fc.nat(), (policy, interval, n) => {
        fc.pre(policy.maxNodes > policy.minNodes);
        const scaler = new Autoscaler(policy);
        const nodes = policy.minNodes + (n % (policy.maxNodes - policy.minNodes));
        const t0 = 5 * interval;
        for (let t = 0; t < t0; t += interval) expect(run(scaler, t, nodes, policy.target).action).toBe('none');
        const hot = policy.highWatermark * policy.target * 1.5;
        for (let k = 0; ; k++) {
          const now = t0 + k * interval;
          const d = run(scaler, now, nodes, hot);
          if (now - t0 < policy.stabilizationMs) {
            if (d.action !== 'none') expect.fail(`scaled ${now - t0} ms into the step: ${d.reason}`);
            continue;
          }
          // The first sample at or past t0 + stabilizationMs.
          expect(d).toMatchObject({ action: 'scale', from: nodes });
          if (d.action === 'scale') expect(d.to).toBeGreaterThan(nodes);
          break;
        }
      }),
      SEED,
    );
  });

  it('a spike shorter than stabilizationMs does nothing, and spikes do not add up', () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.integer({ min: 200, max: 5_000 }),
        fc.array(fraction(0.999), { minLength: 1, maxLength: 5 }),
        (policy, interval, spikes) => {
          fc.pre(policy.stabilizationMs > interval && policy.maxNodes >= policy.minNodes + 2);
          const scaler = new Autoscaler(policy);
          const nodes = policy.minNodes + 1; // room both ways, so neither spike is held back by a bound
          const calm = ((policy.lowWatermark + policy.highWatermark) / 2) * policy.target;
          let t = 0;
          for (const fraction of spikes) {
            // Spike samples span less than stabilizationMs (first to last), up and down alike.
            const length = Math.floor(fraction * policy.stabilizationMs);
            for (const level of [policy.highWatermark * 3, policy.lowWatermark / 3]) {
              for (let s = 0; s <= length; s += interval) {
                const d = run(scaler, t + s, nodes, level * policy.target);
                if (d.action !== 'none') expect.fail(`scaled ${s} ms into a spike: ${d.reason}`);
              }
              t += length + interval;
              expect(run(scaler, t, nodes, calm).action).toBe('none');
              t += interval;
            }
          }
        },
      ),
      SEED,
    );
  });

  it('under any load series: within bounds, hysteresis held, cooldowns kept, scale-in never lands above high', () => {
    let actions = 0;
    let scaleIns = 0;
    const series = fc.array(
      fc.record({
        steps: fc.integer({ min: 1, max: 30 }),
        dt: fc.integer({ min: 100, max: 20_000 }),
        perTarget: fraction(4), // total, in units of target × maxNodes / 2
        fail: fc.boolean(),
      }),
      { minLength: 1, maxLength: 12 },
    );
    fc.assert(
      fc.property(policyArb, series, fc.nat(), (policy, segments, n) => {
        const p = validatePolicy(policy) as Required<ScalePolicy>;
        const scaler = new Autoscaler(policy);
        const high = p.highWatermark * p.target;
        const low = p.lowWatermark * p.target;
        let nodes = p.minNodes + (n % (p.maxNodes - p.minNodes + 1));
        let now = 0;
        let last: { now: number; dir: 'out' | 'in' } | undefined;
        let samples: { now: number; perNode: number }[] = []; // since the last recorded action
        for (const seg of segments) {
          const total = (seg.perTarget * p.target * p.maxNodes) / 2;
          for (let i = 0; i < seg.steps; i++, now += seg.dt) {
            const d = scaler.observe({ now, nodes, total });
            samples.push({ now, perNode: total / nodes });
            expect(d.reason.length).toBeGreaterThan(0);
            if (d.action === 'none') continue;
            const dir = d.to > nodes ? 'out' : 'in';
            expect(d.from).toBe(nodes);
            expect(d.to).toBeGreaterThanOrEqual(p.minNodes);
            expect(d.to).toBeLessThanOrEqual(p.maxNodes);
            // Exactly the documented size: towards ceil(total / target), clamped, one step at most.
            const desired = Math.min(p.maxNodes, Math.max(p.minNodes, Math.ceil(total / p.target)));
            const expected =
              dir === 'out' ? Math.min(desired, nodes + p.maxStepOut) : Math.max(desired, nodes - p.maxStepIn);
            expect(d.to).toBe(expected);
            if (dir === 'in') expect(total / d.to).toBeLessThanOrEqual(high);
            // Hysteresis, checked against a model: the run of samples on this side began stabilizationMs ago.
            const side = (s: { perNode: number }) => (dir === 'out' ? s.perNode > high : s.perNode < low);
            let start = samples.length - 1;
            while (start > 0 && side(samples[start - 1]!)) start--;
            expect(side(samples[samples.length - 1]!)).toBe(true);
            expect(now - samples[start]!.now).toBeGreaterThanOrEqual(p.stabilizationMs);
            // Cooldowns: since the previous action, in either direction.
            const cooldown = dir === 'out' ? p.scaleOutCooldownMs : p.scaleInCooldownMs;
            if (last) expect(now - last.now).toBeGreaterThanOrEqual(cooldown);
            if (seg.fail) continue; // the action failed: nothing recorded, nothing changes
            scaler.recordAction(now, d.from, d.to);
            actions++;
            if (dir === 'in') scaleIns++;
            last = { now, dir };
            nodes = d.to;
            samples = [];
          }
        }
      }),
      SEED,
    );
    // The properties above are not vacuous.
    expect(actions).toBeGreaterThan(50);
    expect(scaleIns).toBeGreaterThan(10);
  });

  it('cooldowns run from the last action in either direction', () => {
    const scaler = new Autoscaler({ ...BASE, stabilizationMs: 0 });
    expect(run(scaler, 0, 3, 200)).toMatchObject({ action: 'scale', from: 3, to: 6 });
    scaler.recordAction(0, 3, 6);
    // Load drops right away: scale-in waits for its cooldown, counted from the scale-out.
    expect(run(scaler, 1000, 6, 10).reason).toMatch(/scale-in cooldown has 4\.98 min left$/);
    expect(run(scaler, 299_999, 6, 10).action).toBe('none');
    expect(run(scaler, 300_000, 6, 10)).toMatchObject({ action: 'scale', from: 6, to: 5 });
    scaler.recordAction(300_000, 6, 5);
    expect(run(scaler, 330_000, 5, 200).reason).toMatch(/scale-out cooldown has 30 s left$/);
    expect(run(scaler, 360_000, 5, 200)).toMatchObject({ action: 'scale', from: 5, to: 10 });
  });

  it('sizes follow ceil(total / target) a step at most; scale-in never leaves a node above the high watermark', () => {
    const scaler = new Autoscaler({ ...BASE, stabilizationMs: 0, maxStepIn: 3 });
    // 10 nodes at 20 each: ceil(200 / 100) = 2 wanted, 3 at a time.
    expect(run(scaler, 0, 10, 20)).toMatchObject({
      action: 'scale',
      to: 7,
      reason: expect.stringContaining('step limit 3; 2 wanted'),
    });
    // Once hysteresis and cooldowns allow, the size follows the model exactly, whatever the load.
    fc.assert(
      fc.property(policyArb, fc.nat(), fc.oneof(fraction(1), fraction(4)), (policy, n, load) => {
        const p = validatePolicy({ ...policy, stabilizationMs: 0 }) as Required<ScalePolicy>;
        const nodes = p.minNodes + (n % (p.maxNodes - p.minNodes + 1));
        const total = load * p.highWatermark * p.target * nodes;
        const d = new Autoscaler(p).observe({ now: 0, nodes, total });
        const perNode = total / nodes;
        const desired = Math.min(p.maxNodes, Math.max(p.minNodes, Math.ceil(total / p.target)));
        let expected = nodes;
        if (perNode > p.highWatermark * p.target) expected = Math.min(desired, nodes + p.maxStepOut);
        if (perNode < p.lowWatermark * p.target) expected = Math.max(desired, nodes - p.maxStepIn);
        expect(d.action === 'scale' ? d.to : nodes).toBe(expected);
        if (d.action === 'scale' && d.to < nodes) expect(total / d.to).toBeLessThanOrEqual(p.highWatermark * p.target);
      }),
      { ...SEED, numRuns: 2000 }, // one observation each: cheap, and big steps on small tiers are rare
    );
  });

  it('holds at the bounds and steers back into them', () => {
    const scaler = new Autoscaler({ ...BASE, stabilizationMs: 0, maxStepOut: 2 });
    expect(run(scaler, 0, 10, 500).reason).toMatch(/already at maxNodes 10$/);
    expect(run(scaler, 0, 2, 1).reason).toMatch(/already at minNodes 2$/);
    const reason = '0 nodes is below minNodes 2: 0 -> 2';
    expect(run(scaler, 0, 0, 0)).toEqual({ action: 'scale', from: 0, to: 2, reason });
    expect(run(scaler, 0, 13, 100)).toMatchObject({ action: 'scale', from: 13, to: 12 });
    expect(run(scaler, 0, 4, 500)).toMatchObject({ action: 'scale', to: 6 });
    expect(run(scaler, 0, 4, 500).reason).toBe(
      'bytes/node 500 B > 1.2 × 100 B for 0 ms (step limit 2; 10 wanted): 4 -> 6',
    );
  });

  it('keeps advising until the action is recorded, and records its reason', () => {
    const scaler = new Autoscaler({ ...BASE, stabilizationMs: 0 });
    const first = run(scaler, 0, 3, 130);
    expect(first).toMatchObject({ action: 'scale', to: 4 });
    expect(run(scaler, 5000, 3, 130)).toMatchObject({ action: 'scale', to: 4 }); // the first attempt failed
    scaler.recordAction(6000, 3, 4);
    scaler.recordAction(7000, 4, 5, 'operator');
    scaler.recordAction(400_000, 5, 2);
    expect(scaler.history).toEqual([
      // The reason of the latest advice, the one carried out.
      { now: 6000, from: 3, to: 4, reason: 'bytes/node 130 B > 1.2 × 100 B for 5 s: 3 -> 4' },
      { now: 7000, from: 4, to: 5, reason: 'operator' },
      { now: 400_000, from: 5, to: 2, reason: 'reported by the caller: 5 -> 2' },
    ]);
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) scaler.recordAction(500_000 + i, 2 + (i % 2), 3 - (i % 2));
    expect(scaler.history).toHaveLength(HISTORY_LIMIT);
    expect(scaler.history.at(-1)!.now).toBe(500_000 + HISTORY_LIMIT + 4);
  });

  it('rejects bad samples and a clock that goes back', () => {
    const scaler = new Autoscaler(BASE);
    run(scaler, 1000, 3, 100);
    expect(() => run(scaler, 999, 3, 100)).toThrow(InvalidArgumentError);
    expect(() => scaler.observe({ now: Number.NaN, nodes: 3, total: 1 })).toThrow(InvalidArgumentError);
    expect(() => scaler.observe({ now: 2000, nodes: 2.5, total: 1 })).toThrow(InvalidArgumentError);
    expect(() => scaler.observe({ now: 2000, nodes: 3, total: -1 })).toThrow(InvalidArgumentError);
    expect(() => scaler.recordAction(2000, 3, 3)).toThrow(InvalidArgumentError);
    expect(() => scaler.recordAction(500, 3, 4)).toThrow(InvalidArgumentError);
  });
});

describe('validatePolicy', () => {
  it('fills in the step defaults and freezes the result', () => {
    const p = validatePolicy(BASE);
    expect(p).toMatchObject({ maxStepIn: 1, maxStepOut: 10 });
    expect(Object.isFrozen(p)).toBe(true);
    expect(() => new Autoscaler({ ...BASE, minNodes: 0 })).toThrow(ConfigError);
  });

  it.each<[string, Record<string, unknown>]>([
    ['metric', { metric: '' }],
    ['target', { target: 0 }],
    ['target', { target: Number.POSITIVE_INFINITY }],
    ['target', { target: '100' }],
    ['highWatermark', { highWatermark: 0.9, lowWatermark: 0.5 }],
    ['lowWatermark', { lowWatermark: 0 }],
    ['lowWatermark', { lowWatermark: 1.2 }],
    ['lowWatermark', { highWatermark: 1.5, lowWatermark: 1.1 }],
    ['minNodes', { minNodes: 0 }],
    ['minNodes', { minNodes: 1.5 }],
    ['maxNodes', { minNodes: 5, maxNodes: 4 }],
    ['maxNodes', { maxNodes: undefined }],
    ['scaleOutCooldownMs', { scaleOutCooldownMs: -1 }],
    ['scaleInCooldownMs', { scaleInCooldownMs: Number.NaN }],
    ['stabilizationMs', { stabilizationMs: null }],
    ['maxStepOut', { maxStepOut: 0 }],
    ['maxStepIn', { maxStepIn: 1.5 }],
    ['maxStepsIn', { maxStepsIn: 2 }],
  ])('names %s', (field, change) => {
    let error: unknown;
    try {
      validatePolicy({ ...BASE, ...change });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).details.field).toBe(field);
    expect((error as ConfigError).message).toContain(`scale policy: ${field} `);
  });

  it('rejects a non-object', () => {
    for (const p of [null, undefined, 3, 'x', []]) expect(() => validatePolicy(p)).toThrow(ConfigError);
  });
});
