import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  createStrategy,
  parseStrategyName,
  STRATEGY_NAMES,
  type InstanceState,
  type StrategyName,
} from '../../src/dispatch/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { instances, mulberry32 } from './prng.js';

const SEED = { seed: 42 };

describe('createStrategy / parseStrategyName', () => {
  it('knows every name, ignores case and whitespace, and rejects others', () => {
    for (const name of STRATEGY_NAMES) {
      expect(createStrategy(name).name).toBe(name);
      expect(parseStrategyName(` ${name.toUpperCase()}\n`)).toBe(name);
    }
    expect(() => parseStrategyName('fastest')).toThrow(InvalidArgumentError);
    expect(() => parseStrategyName('')).toThrow(/round-robin, random, least-outstanding, power-of-two/);
    expect(() => createStrategy('weighted' as StrategyName)).toThrow(InvalidArgumentError);
    expect(() => createStrategy('random', { random: 3 as unknown as () => number })).toThrow(InvalidArgumentError);
  });

  it('every strategy throws InvalidArgumentError on an empty candidate list', () => {
    for (const name of STRATEGY_NAMES) {
      expect(() => createStrategy(name, { random: mulberry32(1) }).choose([])).toThrow(InvalidArgumentError);
    }
  });

  it('every strategy returns one of the candidates (the same object)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STRATEGY_NAMES),
        fc.array(fc.nat(5), { minLength: 1, maxLength: 9 }),
        fc.nat(),
        (name, loads, seed) => {
          const cands = loads.map((inFlight, i) => ({ id: `i${i}`, inFlight, latencyMs: i }));
          const strategy = createStrategy(name, { random: mulberry32(seed) });
          for (let k = 0; k < 20; k++) expect(cands.includes(strategy.choose(cands))).toBe(true);
        },
      ),
      SEED,
    );
  });
});

describe('round-robin', () => {
  it('over k·n calls chooses each of n instances exactly k times, in rotation order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 6 }), (n, k) => {
        const cands = instances(n);
        const rr = createStrategy('round-robin');
        const picks = Array.from({ length: k * n }, () => rr.choose(cands));
        picks.forEach((p, i) => expect(p).toBe(cands[i % n]));
        for (const c of cands) expect(picks.filter((p) => p === c)).toHaveLength(k);
      }),
      SEED,
    );
  });

  it('after the list changes, rotation continues over the new list: any window of its length covers it once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(20), fc.integer({ min: 1, max: 8 }), (n, before, m) => {
        const rr = createStrategy('round-robin');
        const first = instances(n);
        for (let i = 0; i < before; i++) rr.choose(first);
        const second = instances(m).map((c) => ({ ...c, id: `j${c.id}` }));
        const picks = Array.from({ length: 3 * m }, () => rr.choose(second));
        for (let start = 0; start + m <= picks.length; start++) {
          expect(new Set(picks.slice(start, start + m))).toEqual(new Set(second));
        }
      }),
      SEED,
    );
  });
});

describe('random', () => {
  it('is uniform: 60k calls over 7 instances pass chi-square (p > 0.001) and every bucket is within ±5σ', () => {
    const n = 7;
    const calls = 60_000;
    const cands = instances(n);
    const strategy = createStrategy('random', { random: mulberry32(42) });
    const counts = new Map<InstanceState, number>(cands.map((c) => [c, 0]));
    for (let i = 0; i < calls; i++) {
      const c = strategy.choose(cands);
      counts.set(c, counts.get(c)! + 1);
    }
    const expected = calls / n;
    const sigma = Math.sqrt(calls * (1 / n) * (1 - 1 / n));
    let chi2 = 0;
    for (const count of counts.values()) {
      expect(Math.abs(count - expected)).toBeLessThan(5 * sigma);
      chi2 += (count - expected) ** 2 / expected;
    }
    expect(chi2).toBeLessThan(22.46); // chi-square critical value, 6 degrees of freedom, p = 0.001
  });

  it('stays in bounds when the random source returns its extremes', () => {
    const cands = instances(3);
    expect(createStrategy('random', { random: () => 0 }).choose(cands)).toBe(cands[0]);
    expect(createStrategy('random', { random: () => 0.9999999999 }).choose(cands)).toBe(cands[2]);
    expect(createStrategy('random', { random: () => 1 }).choose(cands)).toBe(cands[2]); // a broken source
  });
});

describe('least-outstanding', () => {
  it('always returns an instance with the minimum inFlight', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.nat(4), { minLength: 1, maxLength: 8 }), { maxLength: 30 }), (rounds) => {
        // One strategy across rounds, so its tie counter is in every state when the loads change.
        const lo = createStrategy('least-outstanding');
        for (const loads of rounds) {
          const cands = loads.map((inFlight, i) => ({ id: `i${i}`, inFlight, latencyMs: 0 }));
          expect(lo.choose(cands).inFlight).toBe(Math.min(...loads));
        }
      }),
      SEED,
    );
  });

  it('ties rotate: n idle instances are each chosen once per n calls', () => {
    const cands = instances(4);
    const lo = createStrategy('least-outstanding');
    const picks = Array.from({ length: 12 }, () => lo.choose(cands));
    picks.forEach((p, i) => expect(p).toBe(cands[i % 4]));
  });

  it('ties rotate among the tied instances only, even with untied calls in between', () => {
    const [a, b, c] = instances(3) as [InstanceState, InstanceState, InstanceState];
    c.inFlight = 5;
    const lo = createStrategy('least-outstanding');
    const tied: InstanceState[] = [];
    for (let i = 0; i < 10; i++) {
      tied.push(lo.choose([a, b, c]));
      a.inFlight = 1; // an untied call in between: b is the only minimum
      expect(lo.choose([a, b, c])).toBe(b);
      a.inFlight = 0;
    }
    expect(tied.filter((p) => p === a)).toHaveLength(5);
    expect(tied.filter((p) => p === b)).toHaveLength(5);
  });

  it('spreads load: with calls that never complete, inFlight never differs by more than 1', () => {
    const cands = instances(5);
    const lo = createStrategy('least-outstanding');
    for (let i = 0; i < 103; i++) {
      lo.choose(cands).inFlight++;
      const loads = cands.map((c) => c.inFlight);
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    }
  });
});

describe('power-of-two', () => {
  /** Candidates whose inFlight reads are logged, so a test can see which two were sampled. */
  function spied(n: number, loads: (i: number) => number) {
    const reads: string[] = [];
    const cands: InstanceState[] = Array.from({ length: n }, (_, i) => {
      let inFlight = loads(i);
      return {
        id: `i${i}`,
        latencyMs: 0,
        get inFlight() {
          reads.push(`i${i}`);
          return inFlight;
        },
        set inFlight(v: number) {
          inFlight = v;
        },
      };
    });
    return { cands, reads };
  }

  it('with one candidate returns it', () => {
    const only = instances(1);
    expect(createStrategy('power-of-two', { random: mulberry32(7) }).choose(only)).toBe(only[0]);
  });

  it('never samples the same instance twice in one choice, whatever the random source returns', () => {
    const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
    const draws = fc.array(unit, { minLength: 1, maxLength: 10 });
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 9 }), draws, (n, values) => {
        let k = 0;
        const p2c = createStrategy('power-of-two', { random: () => values[k++ % values.length]! });
        const { cands, reads } = spied(n, (i) => i);
        for (let call = 0; call < 10; call++) {
          reads.length = 0;
          p2c.choose(cands);
          expect(new Set(reads).size).toBe(2);
        }
      }),
      SEED,
    );
  });

  it('so the one most loaded instance is never chosen, and pairs are sampled uniformly', () => {
    const n = 5;
    const p2c = createStrategy('power-of-two', { random: mulberry32(42) });
    const { cands, reads } = spied(n, (i) => (i === 3 ? 100 : 0));
    const pairs = new Map<string, number>();
    const calls = 10_000;
    for (let call = 0; call < calls; call++) {
      reads.length = 0;
      expect(p2c.choose(cands).id).not.toBe('i3');
      const key = [...new Set(reads)].sort().join('+');
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
    expect(pairs.size).toBe((n * (n - 1)) / 2);
    const expected = calls / pairs.size;
    for (const count of pairs.values()) expect(Math.abs(count - expected)).toBeLessThan(5 * Math.sqrt(expected));
  });

  it('breaks an inFlight tie by lower latency', () => {
    const [fast, slow] = instances(2) as [InstanceState, InstanceState];
    fast.latencyMs = 3;
    slow.latencyMs = 30;
    const p2c = createStrategy('power-of-two', { random: mulberry32(42) });
    for (let i = 0; i < 50; i++) expect(p2c.choose([slow, fast])).toBe(fast);
  });

  it('sends a slow instance far fewer calls than 1/n, and clearly fewer than random does', () => {
    // Discrete-time simulation: 4 calls arrive per tick; a call takes 4 ticks on a normal instance, 40 on the slow
    // one, so the slow one's inFlight builds up whenever it is chosen.
    function slowShare(name: StrategyName): number {
      const n = 5;
      const cands = instances(n);
      const slow = cands[0]!;
      const strategy = createStrategy(name, { random: mulberry32(42) });
      const completions: InstanceState[][] = Array.from({ length: 64 }, () => []);
      let toSlow = 0;
      let total = 0;
      for (let tick = 0; tick < 4_000; tick++) {
        for (const done of completions[tick % 64]!) done.inFlight--;
        completions[tick % 64] = [];
        for (let a = 0; a < 4; a++) {
          const c = strategy.choose(cands);
          c.inFlight++;
          total++;
          if (c === slow) toSlow++;
          completions[(tick + (c === slow ? 40 : 4)) % 64]!.push(c);
        }
      }
      return toSlow / total;
    }
    const p2c = slowShare('power-of-two'); // 0.033 with this seed
    const random = slowShare('random'); // 0.199
    expect(random).toBeGreaterThan(0.18); // about 1/5
    expect(p2c).toBeLessThan(0.08); // well under 1/5
    expect(p2c).toBeLessThan(random / 3);
  });
});
