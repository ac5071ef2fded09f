import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors/index.js';
import {
  planLeaderHandoffs,
  proportionalTargets,
  replicaTargets,
  type LeadHandoff,
  type PlannerNode,
  type ReplicaSet,
} from '../../src/partitioning/index.js';

const pool = ['s1', 's2', 's3', 's4', 's5', 's6'];
const gone = ['x1', 'x2'];
const even = (ids: string[]) => ids.map((id) => ({ id, capacity: 1 }));

/** The handoffs run: each must hand a partition's lead from its leader to one of its followers among `nodes`. */
function apply(sets: ReadonlyMap<number, ReplicaSet>, handoffs: LeadHandoff[], nodes: readonly PlannerNode[]): Map<number, ReplicaSet> {
  const ids = new Set(nodes.map((n) => n.id));
  const out = new Map([...sets].map(([p, s]) => [p, { leader: s.leader, followers: [...s.followers] }]));
  expect(new Set(handoffs.map((h) => h.partition)).size).toBe(handoffs.length); // at most one per partition
  for (const h of handoffs) {
    const s = out.get(h.partition)!;
    expect(s.leader).toBe(h.from);
    expect(s.followers).toContain(h.to);
    expect(ids.has(h.to)).toBe(true);
    s.followers[s.followers.indexOf(h.to)] = h.from;
    s.leader = h.to;
  }
  return out;
}

function leadsPer(sets: ReadonlyMap<number, ReplicaSet>): Map<string, number> {
  const c = new Map<string, number>();
  for (const s of sets.values()) c.set(s.leader, (c.get(s.leader) ?? 0) + 1);
  return c;
}

/**
 * Plans, checks every handoff and runs them, then checks the result: nothing left to improve (against the targets of
 * the leads after, as planning again would see them), the fewest handoffs reaching those leads, stable, and
 * independent of node order. Where every leader is among `nodes`, also: the targets are those of the leads before
 * (nodes outside `nodes` have target 0), and every node moved toward its target.
 */
function planAndCheck(before: ReadonlyMap<number, ReplicaSet>, nodes: readonly PlannerNode[]) {
  const handoffs = planLeaderHandoffs(before, nodes);
  const after = apply(before, handoffs, nodes);
  const ids = new Set(nodes.map((n) => n.id));
  const b = leadsPer(before);
  const a = leadsPer(after);
  const count = (m: Map<string, number>, n: string) => m.get(n) ?? 0;
  const targets = proportionalTargets(before.size, nodes, b);
  const settled = proportionalTargets(before.size, nodes, a);

  // No handoff left that would improve anything: no node above target leads a partition with a follower below target,
  // and a leader outside `nodes` keeps only partitions with no follower among them.
  for (const s of after.values()) {
    const followers = s.followers.filter((f) => ids.has(f));
    if (!ids.has(s.leader)) expect(followers).toEqual([]);
    else if (count(a, s.leader) > settled.get(s.leader)!) for (const f of followers) expect(count(a, f)).toBeGreaterThanOrEqual(settled.get(f)!);
  }
  expect(planLeaderHandoffs(after, nodes)).toEqual([]);

  // The fewest handoffs: each is one lead a node had to lose (no node both gave and took), but for a going leader's
  // partitions no follower below target could take: the node that had to take one may pass one of its own on.
  let lost = 0;
  for (const [id, n] of b) lost += Math.max(0, n - count(a, id));
  expect(handoffs.length).toBeGreaterThanOrEqual(lost);
  expect(handoffs.length).toBeLessThanOrEqual(lost + handoffs.filter((h) => !ids.has(h.from)).length);

  if ([...b.keys()].every((n) => ids.has(n))) {
    expect(settled).toEqual(targets);
    expect(handoffs).toHaveLength(lost);
    // Every node moves toward its target: one below never loses or passes it, one above never gains or drops below.
    for (const { id } of nodes) {
      const [was, is, t] = [count(b, id), count(a, id), targets.get(id)!];
      expect(is).toBeGreaterThanOrEqual(Math.min(was, t));
      expect(is).toBeLessThanOrEqual(Math.max(was, t));
    }
  }

  expect(planLeaderHandoffs(before, [...nodes].reverse())).toEqual(handoffs);
  return { handoffs, after, targets };
}

/** Sets of 1..4 copies on distinct nodes, drawn from `ids`. */
const setsOver = (ids: string[]) =>
  fc
    .array(fc.shuffledSubarray(ids, { minLength: 1, maxLength: Math.min(4, ids.length) }), { maxLength: 80 })
    .map((list) => new Map(list.map(([leader, ...followers], p) => [p, { leader: leader!, followers }] as [number, ReplicaSet])));

const nodesFrom = (ids: string[]) =>
  fc.shuffledSubarray(ids, { minLength: 1 }).chain((chosen) =>
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: chosen.length, maxLength: chosen.length }).map((caps) =>
      chosen.map((id, i) => ({ id, capacity: caps[i]! })),
    ),
  );

describe('planLeaderHandoffs', () => {
  it('the example: the node most over its share hands its lowest partition to the follower furthest under', () => {
    const sets = new Map([
      [0, { leader: 'b', followers: ['a', 'c'] }],
      [1, { leader: 'b', followers: ['c', 'a'] }],
      [2, { leader: 'c', followers: ['a', 'b'] }],
    ]);
    expect(planLeaderHandoffs(sets, even(['a', 'b', 'c']))).toEqual([{ partition: 0, from: 'b', to: 'a' }]);
  });

  it('prefers the most over-target giver, the partition whose follower is furthest under, then the lowest one', () => {
    // Targets a 1, b 1, c 2, d 1: c is 2 under, a 1 under, b 3 over.
    const sets = new Map<number, ReplicaSet>([
      [0, { leader: 'b', followers: ['a'] }],
      [1, { leader: 'b', followers: ['c'] }],
      [2, { leader: 'b', followers: ['a', 'c'] }],
      [3, { leader: 'b', followers: ['c'] }],
      [4, { leader: 'd', followers: ['a', 'c'] }],
    ]);
    const nodes = [{ id: 'a', capacity: 1 }, { id: 'b', capacity: 1 }, { id: 'c', capacity: 2 }, { id: 'd', capacity: 1 }];
    expect([...proportionalTargets(5, nodes, leadsPer(sets))]).toEqual([['a', 1], ['b', 1], ['c', 2], ['d', 1]]);
    expect(planLeaderHandoffs(sets, nodes)).toEqual([
      { partition: 1, from: 'b', to: 'c' }, // c furthest under
      { partition: 0, from: 'b', to: 'a' }, // a and c 1 under: the lowest partition
      { partition: 2, from: 'b', to: 'c' }, // b still over, only c under: the lowest partition c follows
    ]);
    // Followers equally under: the lower id takes it.
    const tie = new Map<number, ReplicaSet>([
      [0, { leader: 'b', followers: ['c', 'a'] }],
      [1, { leader: 'b', followers: [] }],
      [2, { leader: 'b', followers: [] }],
    ]);
    expect(planLeaderHandoffs(tie, even(['a', 'b', 'c']))).toEqual([{ partition: 0, from: 'b', to: 'a' }]);
    // Targets 2 each: c (3 over) gives first, then b and c (1 over each) by id.
    const two = new Map<number, ReplicaSet>();
    for (let p = 0; p < 8; p++) two.set(p, { leader: p < 3 ? 'b' : 'c', followers: ['d', 'a'] });
    expect(planLeaderHandoffs(two, even(['a', 'b', 'c', 'd']))).toEqual([
      { partition: 3, from: 'c', to: 'a' },
      { partition: 4, from: 'c', to: 'd' },
      { partition: 0, from: 'b', to: 'a' },
      { partition: 5, from: 'c', to: 'd' },
    ]);
  });

  it('a restarted node (following everything, leading nothing) gets its third of 4096 leads back, fast', () => {
    const sets = new Map<number, ReplicaSet>();
    for (let p = 0; p < 4096; p++) sets.set(p, p % 2 === 0 ? { leader: 'b', followers: ['c', 'a'] } : { leader: 'c', followers: ['a', 'b'] });
    const nodes = even(['a', 'b', 'c']);
    const started = performance.now();
    const handoffs = planLeaderHandoffs(sets, nodes);
    const elapsed = performance.now() - started;
    expect(handoffs).toHaveLength(1365); // 4096 / 3 = 1365.3: a leads 1365, b keeps the odd one (it leads more now)
    expect(handoffs.every((h) => h.to === 'a')).toBe(true);
    const { after } = planAndCheck(sets, nodes);
    expect(Object.fromEntries(leadsPer(after))).toEqual({ a: 1365, b: 1366, c: 1365 });
    expect(elapsed).toBeLessThan(200);
  });

  it('4096 partitions x 3 copies placed over 10 nodes, then a node restarted: plans in well under 100 ms', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `n${i}`);
    const sets = new Map<number, ReplicaSet>();
    for (let p = 0; p < 4096; p++) {
      const [leader, ...followers] = replicaTargets(p, ids, [], 3);
      // n0 restarted: whatever it led, a follower took over.
      sets.set(p, leader === 'n0' ? { leader: followers[0]!, followers: [followers[1]!, 'n0'] } : { leader: leader!, followers });
    }
    const started = performance.now();
    const handoffs = planLeaderHandoffs(sets, even(ids));
    expect(performance.now() - started).toBeLessThan(100);
    expect(handoffs.length).toBeGreaterThan(300);
    expect(handoffs.every((h) => h.to === 'n0')).toBe(true);
    const { after } = planAndCheck(sets, even(ids));
    for (const n of leadsPer(after).values()) expect(Math.abs(n - 409.6)).toBeLessThan(1);
  });

  it('moves the lead only where it helps, toward every target, with the fewest handoffs, stably', () => {
    fc.assert(
      fc.property(
        nodesFrom(pool).chain((nodes) => fc.tuple(fc.constant(nodes), setsOver(nodes.map((n) => n.id)))),
        ([nodes, sets]) => {
          planAndCheck(sets, nodes);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('a leader outside the nodes hands off every partition it leads that has a follower among them', () => {
    fc.assert(
      fc.property(nodesFrom(pool), setsOver([...pool, ...gone]), (nodes, sets) => {
        const ids = new Set(nodes.map((n) => n.id));
        const { handoffs } = planAndCheck(sets, nodes);
        const handed = new Set(handoffs.map((h) => h.partition));
        for (const [p, s] of sets) if (!ids.has(s.leader) && s.followers.some((f) => ids.has(f))) expect(handed.has(p)).toBe(true);
      }),
      { seed: 43, numRuns: 200 },
    );
  });

  it('when every node follows every partition, every node ends at its target', () => {
    fc.assert(
      fc.property(
        fc.array(fc.shuffledSubarray(['a', 'b', 'c'], { minLength: 3, maxLength: 3 }), { maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
        (list, caps) => {
          const sets = new Map(list.map(([leader, ...followers], p) => [p, { leader: leader!, followers }] as [number, ReplicaSet]));
          const nodes = ['a', 'b', 'c'].map((id, i) => ({ id, capacity: caps[i]! }));
          const before = leadsPer(sets);
          const { handoffs, after, targets } = planAndCheck(sets, nodes);
          let excess = 0;
          for (const [id, t] of targets) excess += Math.max(0, (before.get(id) ?? 0) - t);
          expect(handoffs).toHaveLength(excess);
          for (const [id, t] of targets) expect(leadsPer(after).get(id) ?? 0).toBe(t);
        },
      ),
      { seed: 44, numRuns: 200 },
    );
  });

  it('a draining leader hands off even to a follower at its share, which passes one of its own on', () => {
    const sets = new Map([
      [0, { leader: 'a', followers: ['b'] }],
      [1, { leader: 'x', followers: ['a'] }],
    ]);
    const handoffs = planLeaderHandoffs(sets, even(['a', 'b']));
    expect(handoffs).toEqual([
      { partition: 1, from: 'x', to: 'a' },
      { partition: 0, from: 'a', to: 'b' },
    ]);
    // A drained leader with 3 followers among the nodes: all its partitions go, spread by share.
    const drained = new Map<number, ReplicaSet>();
    for (let p = 0; p < 30; p++) {
      const abc = ['a', 'b', 'c'];
      drained.set(p, p < 10 ? { leader: 'x', followers: abc } : { leader: abc[p % 3]!, followers: abc.filter((_, i) => i !== p % 3) });
    }
    const { after } = planAndCheck(drained, even(['a', 'b', 'c']));
    expect(Object.fromEntries(leadsPer(after))).toEqual({ a: 10, b: 10, c: 10 });
  });

  it('after a going leader had to hand a partition to a node at its share, balances to the shares as they then stand', () => {
    // Targets s1 1, s2 0, s3 1, s4 1, s6 1; x2 must hand partition 2 to s2, which then holds a rounding unit that
    // planning again would give it rather than s4: so s4 hands partition 1 to s1 in the same plan.
    const nodes = Object.entries({ s3: 1, s6: 2, s1: 2, s2: 1, s4: 1 }).map(([id, capacity]) => ({ id, capacity }));
    const sets = new Map<number, ReplicaSet>([
      [0, { leader: 's5', followers: [] }],
      [1, { leader: 's4', followers: ['s1'] }],
      [2, { leader: 'x2', followers: ['s2'] }],
      [3, { leader: 's3', followers: [] }],
    ]);
    const { handoffs } = planAndCheck(sets, nodes);
    expect(handoffs).toEqual([
      { partition: 2, from: 'x2', to: 's2' },
      { partition: 1, from: 's4', to: 's1' },
    ]);
  });

  it('leaves alone partitions that no follower among the nodes could take', () => {
    // Targets 2 and 2: a gives the one partition b follows; x keeps 0 (y is not a node either).
    const sets = new Map([
      [0, { leader: 'x', followers: ['y'] }],
      [1, { leader: 'a', followers: ['b'] }],
      [2, { leader: 'a', followers: [] as string[] }],
      [3, { leader: 'a', followers: ['x'] }],
    ]);
    expect(planLeaderHandoffs(sets, even(['a', 'b']))).toEqual([{ partition: 1, from: 'a', to: 'b' }]);
    expect(planLeaderHandoffs(new Map(), even(['a']))).toEqual([]);
  });

  it('rejects no nodes, a leader among its followers, and a repeated follower', () => {
    const ok = new Map([[0, { leader: 'a', followers: ['b'] }]]);
    expect(() => planLeaderHandoffs(ok, [])).toThrow(InvalidArgumentError);
    expect(() => planLeaderHandoffs(new Map([[0, { leader: 'a', followers: ['b', 'a'] }]]), even(['a', 'b']))).toThrow(InvalidArgumentError);
    expect(() => planLeaderHandoffs(new Map([[0, { leader: 'a', followers: ['b', 'b'] }]]), even(['a', 'b']))).toThrow(InvalidArgumentError);
    expect(() => planLeaderHandoffs(ok, [{ id: 'a', capacity: 0 }])).toThrow(InvalidArgumentError);
  });
});
