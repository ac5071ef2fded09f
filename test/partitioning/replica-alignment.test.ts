import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { alignReplicas, type AlignmentStep, type ReplicaSet } from '../../src/partitioning/index.js';

const pool = ['s1', 's2', 's3', 's4', 's5', 's6', 's7'];

/** Runs the steps on a copy of `set`, checking each is one the movers can carry out from where the set then is. */
function run(set: ReplicaSet, steps: AlignmentStep[]): ReplicaSet {
  let leader = set.leader;
  const followers = [...set.followers];
  for (const s of steps) {
    const holders = new Set([leader, ...followers]);
    if (s.role === 'lead') {
      expect(s.from).toBe(leader);
      expect(followers).toContain(s.to);
      followers[followers.indexOf(s.to)] = leader;
      leader = s.to;
    } else if (s.role === 'leader') {
      expect(s.from).toBe(leader);
      expect(holders.has(s.to)).toBe(false);
      leader = s.to;
    } else {
      expect(followers).toContain(s.from);
      expect(holders.has(s.to)).toBe(false);
      followers[followers.indexOf(s.from)] = s.to;
    }
  }
  return { leader, followers };
}

/** Two replica sets of the same size drawn from the pool. */
const twoSets = fc.integer({ min: 1, max: 4 }).chain((copies) =>
  fc.tuple(
    fc.shuffledSubarray(pool, { minLength: copies, maxLength: copies }),
    fc.shuffledSubarray(pool, { minLength: copies, maxLength: copies }),
  ),
);
const asSet = (nodes: string[]): ReplicaSet => ({ leader: nodes[0]!, followers: nodes.slice(1) });

describe('alignReplicas', () => {
  it('ends on the target leader and followers, moving only the copies the target lacks, with at most one handoff', () => {
    fc.assert(
      fc.property(twoSets, ([a, b]) => {
        const moving = asSet(a);
        const target = asSet(b);
        const steps = alignReplicas(moving, target)!;
        const end = run(moving, steps);
        expect(end.leader).toBe(target.leader);
        expect([...end.followers].sort()).toEqual([...target.followers].sort());
        const copies = steps.filter((s) => s.role !== 'lead');
        expect(copies).toHaveLength(a.filter((n) => !b.includes(n)).length); // the least: one per node not shared
        expect(steps.filter((s) => s.role === 'lead').length).toBeLessThanOrEqual(1);
        // A copy on a node both sets use never moves.
        for (const s of copies) expect(b).not.toContain(s.from);
      }),
      { seed: 20261205, numRuns: 500 },
    );
  });

  it('moves the leader copy straight to the target leader when that node has no copy: no handoff then', () => {
    expect(alignReplicas({ leader: 's4', followers: ['s2', 's3'] }, { leader: 's1', followers: ['s2', 's3'] })).toEqual([
      { role: 'leader', from: 's4', to: 's1' },
    ]);
    expect(alignReplicas({ leader: 's2', followers: ['s3', 's4'] }, { leader: 's1', followers: ['s2', 's3'] })).toEqual([
      { role: 'follower', from: 's4', to: 's1' },
      { role: 'lead', from: 's2', to: 's1' },
    ]);
    expect(alignReplicas({ leader: 's1', followers: ['s3', 's2'] }, { leader: 's1', followers: ['s2', 's3'] })).toEqual([]);
  });

  it('gives no steps for sets of different sizes, and refuses a set that names a node twice', () => {
    expect(alignReplicas({ leader: 's1', followers: ['s2'] }, { leader: 's1', followers: ['s2', 's3'] })).toBeUndefined();
    expect(() => alignReplicas({ leader: 's1', followers: ['s1'] }, { leader: 's2', followers: ['s3'] })).toThrow(InvalidArgumentError);
  });
});
