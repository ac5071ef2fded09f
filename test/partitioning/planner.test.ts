import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  applyMoves,
  initialAssignment,
  movedFraction,
  planAssignment,
  proportionalTargets,
  type PlannerNode,
} from '../../src/partitioning/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const range = (n: number) => [...Array(n).keys()];
const equalNodes = (n: number, prefix = 'n') =>
  range(n).map((i) => ({ id: `${prefix}${String(i).padStart(3, '0')}`, capacity: 1 }));
const counts = (assignment: ReadonlyMap<number, string>) => {
  const c = new Map<string, number>();
  for (const owner of assignment.values()) c.set(owner, (c.get(owner) ?? 0) + 1);
  return c;
};

/** A planning problem: live nodes, partitions, and a messy current assignment. */
const problem = fc
  .record({
    nodes: fc.uniqueArray(
      fc.record({
        id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
        capacity: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.double({ min: 0.1, max: 10, noNaN: true })),
      }),
      { minLength: 1, maxLength: 8, selector: (n) => n.id },
    ),
    partitions: fc.uniqueArray(fc.integer({ min: -50, max: 1000 }), { maxLength: 300 }),
    // Per partition: a live node (by index), a node that is gone, null, or absent.
    owners: fc.array(fc.oneof(fc.nat(7), fc.constant('gone'), fc.constant(null), fc.constant(undefined)), {
      maxLength: 300,
    }),
  })
  .map(({ nodes, partitions, owners }) => {
    const current = new Map<number, string | null>();
    partitions.forEach((p, i) => {
      const o = owners[i];
      if (o === undefined) return;
      current.set(p, typeof o === 'number' ? (nodes[o % nodes.length]!.id) : o);
    });
    current.set(5000, 'a'); // a partition not being planned: ignored
    return { nodes: nodes as PlannerNode[], partitions, current };
  });

describe('planAssignment', () => {
  it('assigns every partition exactly once, to a live node, within one of its proportional share', () => {
    fc.assert(
      fc.property(problem, ({ nodes, partitions, current }) => {
        const { assignment } = planAssignment(current, partitions, nodes);
        expect([...assignment.keys()]).toEqual([...partitions].sort((a, b) => a - b));
        const live = new Set(nodes.map((n) => n.id));
        for (const owner of assignment.values()) expect(live.has(owner)).toBe(true);
        const total = nodes.reduce((s, n) => s + n.capacity, 0);
        const c = counts(assignment);
        // Floor or ceiling of the share: strictly within 1 (float capacities get a hair of slack for rounding).
        const slack = nodes.every((n) => Number.isInteger(n.capacity)) ? 0 : 1e-9;
        for (const n of nodes) {
          const share = (n.capacity / total) * partitions.length;
          expect(Math.abs((c.get(n.id) ?? 0) - share)).toBeLessThan(1 + slack);
        }
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('moves only orphans and excess: moves = orphans + sum of excess, and applying them gives the assignment', () => {
    fc.assert(
      fc.property(problem, ({ nodes, partitions, current }) => {
        const { assignment, moves } = planAssignment(current, partitions, nodes);
        const live = new Set(nodes.map((n) => n.id));
        const before = new Map<string, number>();
        let orphans = 0;
        for (const p of partitions) {
          const o = current.get(p);
          if (typeof o === 'string' && live.has(o)) before.set(o, (before.get(o) ?? 0) + 1);
          else orphans++;
        }
        const after = counts(assignment);
        let excess = 0;
        for (const [id, n] of before) excess += Math.max(0, n - (after.get(id) ?? 0));
        expect(moves.length).toBe(orphans + excess);

        // No worse than plain largest-remainder targets (which ignore where partitions are now).
        const plain = proportionalTargets(partitions.length, nodes);
        let plainExcess = 0;
        for (const [id, n] of before) plainExcess += Math.max(0, n - plain.get(id)!);
        expect(moves.length).toBeLessThanOrEqual(orphans + plainExcess);

        for (const m of moves) {
          expect(m.from).toBe(current.get(m.partition) ?? null);
          expect(m.to).not.toBe(m.from);
        }
        expect(new Set(moves.map((m) => m.partition)).size).toBe(moves.length);
        const applied = applyMoves(current, moves);
        for (const p of partitions) expect(applied.get(p)).toBe(assignment.get(p));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('is idempotent and deterministic (input order does not matter)', () => {
    fc.assert(
      fc.property(problem, fc.nat(), ({ nodes, partitions, current }, salt) => {
        const plan = planAssignment(current, partitions, nodes);
        const again = planAssignment(plan.assignment, partitions, nodes);
        expect(again.moves).toEqual([]);
        expect([...again.assignment]).toEqual([...plan.assignment]);

        const rotate = <T>(xs: T[]) => {
          const k = xs.length ? salt % xs.length : 0;
          return [...xs.slice(k), ...xs.slice(0, k)];
        };
        const shuffled = planAssignment(
          new Map(rotate([...current])),
          rotate([...partitions]).reverse(),
          rotate([...nodes]).reverse(),
        );
        expect([...shuffled.assignment]).toEqual([...plan.assignment]);
        expect(shuffled.moves).toEqual(plan.moves);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('adding a node of equal capacity moves at most ceil(P/(n+1)), all to the new node, within 5% of P/(n+1)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.constantFrom(4096, 1000, 97, 5), (n, P) => {
        const nodes = equalNodes(n);
        const first = initialAssignment(range(P), nodes);
        const next = planAssignment(first.assignment, range(P), [...nodes, { id: 'new', capacity: 1 }]);
        expect(next.moves.length).toBeLessThanOrEqual(Math.ceil(P / (n + 1)));
        expect(next.moves.every((m) => m.to === 'new')).toBe(true);
        if (P === 4096) expect(Math.abs(next.moves.length - P / (n + 1))).toBeLessThanOrEqual(0.05 * (P / (n + 1)));
        expect(movedFraction(next.moves, P)).toBeCloseTo(next.moves.length / P);
      }),
      { seed: 42, numRuns: 100 },
    );
  });

  it('removing a node of equal capacity moves only its partitions', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 0, max: 2000 }), fc.nat(), (n, P, k) => {
        const nodes = equalNodes(n);
        const first = initialAssignment(range(P), nodes);
        const gone = nodes[k % n]!.id;
        const next = planAssignment(first.assignment, range(P), nodes.filter((x) => x.id !== gone));
        const owned = [...first.assignment].filter(([, o]) => o === gone).map(([p]) => p);
        expect(next.moves.map((m) => m.partition)).toEqual(owned);
        expect(next.moves.every((m) => m.from === gone)).toBe(true);
      }),
      { seed: 42, numRuns: 150 },
    );
  });

  it('removing a node of any capacity moves its partitions plus at most one from each other node', () => {
    fc.assert(
      fc.property(problem, fc.nat(), ({ nodes, partitions }, k) => {
        fc.pre(nodes.length >= 2);
        const first = initialAssignment(partitions, nodes);
        const gone = nodes[k % nodes.length]!.id;
        const next = planAssignment(first.assignment, partitions, nodes.filter((x) => x.id !== gone));
        const others = next.moves.filter((m) => m.from !== gone);
        const fromOthers = counts(new Map(others.map((m) => [m.partition, m.from!])));
        for (const c of fromOthers.values()) expect(c).toBeLessThanOrEqual(1);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('keeps a balanced assignment that merely rounds differently (no needless moves)', () => {
    // 10 partitions on 4 equal nodes: two nodes get 3, two get 2. Plain largest remainder would pick a and b for 3.
    const nodes = equalNodes(4, '');
    const current = new Map<number, string>();
    [0, 1].forEach((p) => current.set(p, nodes[0]!.id));
    [2, 3].forEach((p) => current.set(p, nodes[1]!.id));
    [4, 5, 6].forEach((p) => current.set(p, nodes[2]!.id));
    [7, 8, 9].forEach((p) => current.set(p, nodes[3]!.id));
    expect(planAssignment(current, range(10), nodes).moves).toEqual([]);
  });

  it('never gives the leftover partition to a node whose share is whole, even if it holds more now', () => {
    // Shares: a = 3 exactly, b = c = 1.5. a holds 4 but must give one up; the leftover goes to b or c.
    const nodes = [
      { id: 'a', capacity: 2 },
      { id: 'b', capacity: 1 },
      { id: 'c', capacity: 1 },
    ];
    const current = new Map([0, 1, 2, 3].map((p) => [p, 'a']));
    const { assignment, moves } = planAssignment(current, range(6), nodes);
    expect([...counts(assignment)].sort()).toEqual([
      ['a', 3],
      ['b', 2],
      ['c', 1],
    ]);
    expect(moves).toHaveLength(3); // partitions 4 and 5 (unassigned) and a's highest, 3
  });

  it('matches the documented examples', () => {
    const ab = [
      { id: 'a', capacity: 1 },
      { id: 'b', capacity: 1 },
    ];
    expect([...proportionalTargets(10, [ab[0]!, { id: 'b', capacity: 2 }])]).toEqual([
      ['a', 3],
      ['b', 7],
    ]);
    expect([...initialAssignment([0, 1, 2], ab).assignment]).toEqual([
      [0, 'a'],
      [1, 'a'],
      [2, 'b'],
    ]);
    const first = initialAssignment([0, 1, 2, 3], ab);
    const next = planAssignment(first.assignment, [0, 1, 2, 3], [...ab, { id: 'c', capacity: 2 }]);
    expect(next.moves).toEqual([
      { partition: 1, from: 'a', to: 'c' },
      { partition: 3, from: 'b', to: 'c' },
    ]);
  });

  it('accepts a plain object as the current assignment, and records orphans', () => {
    const nodes = [{ id: 'a', capacity: 1 }];
    const plan = planAssignment({ 0: 'a', 1: 'gone', 2: null }, [0, 1, 2, 3], nodes);
    expect(plan.moves).toEqual([
      { partition: 1, from: 'gone', to: 'a' },
      { partition: 2, from: null, to: 'a' },
      { partition: 3, from: null, to: 'a' },
    ]);
    expect(planAssignment({ 0: 'a' }, [], nodes)).toEqual({ assignment: new Map(), moves: [] });
  });

  it('rejects invalid input', () => {
    const ok = [{ id: 'a', capacity: 1 }];
    const badNodes: unknown[] = [
      [],
      [{ id: 'a', capacity: 1 }, { id: 'a', capacity: 2 }],
      [{ id: 'a', capacity: 0 }],
      [{ id: 'a', capacity: -1 }],
      [{ id: 'a', capacity: Number.NaN }],
      [{ id: 'a', capacity: Infinity }],
      [{ id: '', capacity: 1 }],
      [{ capacity: 1 }],
      [{ id: 'a', capacity: Number.MAX_VALUE }, { id: 'b', capacity: Number.MAX_VALUE }],
    ];
    for (const nodes of badNodes) {
      expect(() => planAssignment(new Map(), [0], nodes as PlannerNode[])).toThrow(InvalidArgumentError);
    }
    expect(() => planAssignment(new Map(), [0, 0], ok)).toThrow(InvalidArgumentError);
    expect(() => planAssignment(new Map(), [1.5], ok)).toThrow(InvalidArgumentError);
    expect(() => planAssignment(new Map([[0, 7 as unknown as string]]), [0], ok)).toThrow(InvalidArgumentError);
    expect(() => planAssignment(null as unknown as Map<number, string>, [0], ok)).toThrow(InvalidArgumentError);
    expect(() => proportionalTargets(-1, ok)).toThrow(InvalidArgumentError);
    expect(() => movedFraction([], 1.5)).toThrow(InvalidArgumentError);
    expect(movedFraction([], 0)).toBe(0);
    expect(() => applyMoves(new Map([[0, 'a']]), [{ partition: 0, from: 'b', to: 'c' }])).toThrow(InvalidArgumentError);
  });
});
