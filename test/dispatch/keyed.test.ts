import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import { pickByKey } from '../../src/dispatch/index.js';
import { hash64 } from '../../src/partitioning/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const SEED = { seed: 42 };
const KEYS = Array.from({ length: 100_000 }, (_, i) => `user:${i}`);
const FIVE = ['compute-1', 'compute-2', 'compute-3', 'compute-4', 'compute-5'];

// The definition, written from pickByKey's TSDoc: highest XXH64 of the concatenated string wins.
function reference(key: string, ids: readonly string[]): string {
  const enc = new TextEncoder();
  let best = ids[0]!;
  let bestScore = -1n;
  for (const id of ids) {
    const s = hash64(enc.encode(id + '\u0000' + key));
    if (s > bestScore || (s === bestScore && id < best)) [best, bestScore] = [id, s];
  }
  return best;
}

const pickAll = (ids: readonly string[]) => KEYS.map((k) => pickByKey(k, ids));

describe('pickByKey', () => {
  let base: string[];
  beforeAll(() => {
    base = pickAll(FIVE);
  });

  it('is the highest XXH64(utf8(id + NUL + key)), whatever the characters', () => {
    // Any code point or a lone surrogate (fast-check's 'binary' and 'grapheme' units are much slower to generate).
    const anyChar = fc.oneof(
      fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    );
    const chars = fc.oneof(fc.string({ maxLength: 12 }), fc.array(anyChar, { maxLength: 6 }).map((a) => a.join('')));
    fc.assert(
      fc.property(chars, fc.uniqueArray(chars, { minLength: 1, maxLength: 6 }), (key, ids) => {
        expect(pickByKey(key, ids)).toBe(reference(key, ids));
      }),
      SEED,
    );
  });

  it('is deterministic and does not depend on the order of the ids', () => {
    const idSet = fc.uniqueArray(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(fc.string(), idSet, (key, ids) => {
        const chosen = pickByKey(key, ids);
        expect(ids).toContain(chosen);
        expect(pickByKey(key, ids)).toBe(chosen);
        expect(pickByKey(key, [...ids].reverse())).toBe(chosen);
        expect(pickByKey(key, [...ids, ...ids])).toBe(chosen); // duplicates are harmless
      }),
      SEED,
    );
  });

  it('rejects an empty instance list and non-string input', () => {
    expect(() => pickByKey('k', [])).toThrow(InvalidArgumentError);
    expect(() => pickByKey(1 as unknown as string, ['a'])).toThrow(InvalidArgumentError);
    expect(() => pickByKey('k', ['a', 2 as unknown as string])).toThrow(InvalidArgumentError);
    expect(pickByKey('k', ['only'])).toBe('only');
  });

  it('balances 100k keys over 5 instances within 3% of an equal share', () => {
    const counts = new Map<string, number>();
    for (const id of base) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(FIVE);
    for (const count of counts.values()) expect(Math.abs(count / 20_000 - 1)).toBeLessThan(0.03);
  });

  it('adding an instance to 5 moves only keys that now map to it, about 1/6 of them (within 10% relative)', () => {
    const after = pickAll([...FIVE, 'compute-6']);
    // Counted rather than asserted per key: 100k expect() calls would dominate the run time.
    let moved = 0;
    let movedElsewhere = 0;
    after.forEach((id, i) => {
      if (id !== base[i]) {
        moved++;
        if (id !== 'compute-6') movedElsewhere++;
      }
    });
    expect(movedElsewhere).toBe(0);
    expect(after.filter((id) => id === 'compute-6')).toHaveLength(moved);
    expect(Math.abs(moved / (KEYS.length / 6) - 1)).toBeLessThan(0.1);
  });

  it("removing an instance moves only that instance's keys, spread evenly over the rest", () => {
    const after = pickAll(FIVE.filter((id) => id !== 'compute-3'));
    const received = new Map<string, number>();
    let othersMoved = 0;
    after.forEach((id, i) => {
      if (base[i] === 'compute-3') received.set(id, (received.get(id) ?? 0) + 1);
      else if (id !== base[i]) othersMoved++;
    });
    expect(othersMoved).toBe(0);
    const orphaned = base.filter((id) => id === 'compute-3').length;
    expect(received.size).toBe(4);
    for (const count of received.values()) expect(Math.abs(count / (orphaned / 4) - 1)).toBeLessThan(0.1);
  });

  it('property: for any id set, a join moves keys only to the newcomer, a leave only the leaver’s keys', () => {
    const id = fc.string({ minLength: 1, maxLength: 10 });
    const sample = KEYS.slice(0, 300);
    fc.assert(
      fc.property(fc.uniqueArray(id, { minLength: 2, maxLength: 8 }), fc.nat(), (ids, which) => {
        const [newcomer, ...members] = ids as [string, ...string[]];
        const leaver = members[which % members.length]!;
        const rest = members.filter((m) => m !== leaver);
        for (const key of sample) {
          const before = pickByKey(key, members);
          const joined = pickByKey(key, [...members, newcomer]);
          expect(joined === before || joined === newcomer).toBe(true);
          if (rest.length > 0) {
            const left = pickByKey(key, rest);
            if (before !== leaver) expect(left).toBe(before);
          }
        }
      }),
      { ...SEED, numRuns: 40 },
    );
  });
});
