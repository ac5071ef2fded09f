import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { minInSync, replicaTargets } from '../../src/partitioning/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const ids = ['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'];

describe('replicaTargets', () => {
  it('chooses distinct nodes that hold no copy yet, as many as asked or as there are', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4095 }),
        fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1 }),
        fc.uniqueArray(fc.constantFrom(...ids)),
        fc.integer({ min: 0, max: 6 }),
        (partition, nodes, holders, needed) => {
          const out = replicaTargets(partition, nodes, holders, needed);
          expect(new Set(out).size).toBe(out.length);
          for (const n of out) {
            expect(nodes).toContain(n);
            expect(holders).not.toContain(n);
          }
          const free = nodes.filter((n) => !holders.includes(n)).length;
          expect(out.length).toBe(Math.min(needed, free));
        },
      ),
      { seed: 6001, numRuns: 300 },
    );
  });

  it('does not depend on the order of its input', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4095 }), fc.shuffledSubarray(ids, { minLength: 2 }), (partition, nodes) => {
        const a = replicaTargets(partition, nodes, [], 2);
        const b = replicaTargets(partition, [...nodes].reverse(), [], 2);
        expect(a).toEqual(b);
      }),
      { seed: 6002, numRuns: 200 },
    );
  });

  it('moves few copies when a node joins: about k/(n+1) of them land on it, the rest stay', () => {
    const before = ['s1', 's2', 's3', 's4'];
    const after = [...before, 's5'];
    let changed = 0;
    let total = 0;
    for (let p = 0; p < 4096; p++) {
      const a = replicaTargets(p, before, [], 2);
      const b = replicaTargets(p, after, [], 2);
      for (const n of b) if (!a.includes(n)) changed++;
      total += 2;
      // Whatever changed went to the new node.
      for (const n of b) if (!a.includes(n)) expect(n).toBe('s5');
    }
    expect(Math.abs(changed / total - 1 / 5)).toBeLessThan(0.03);
  });

  it('refuses a bad count', () => {
    expect(() => replicaTargets(1, ids, [], -1)).toThrow(InvalidArgumentError);
  });
});

describe('minInSync', () => {
  it('is a majority of the copies', () => {
    expect([1, 2, 3, 4, 5, 7].map(minInSync)).toEqual([1, 2, 2, 3, 3, 4]);
  });
});
