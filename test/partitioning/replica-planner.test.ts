import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planReplicaMoves, proportionalTargets, replicaTargets, type ReplicaMove, type ReplicaSet } from '../../src/partitioning/index.js';

const pool = ['s1', 's2', 's3', 's4', 's5', 's6', 's7'];
const even = (ids: string[]) => ids.map((id) => ({ id, capacity: 1 }));

/** Copies placed as a new namespace's are: each partition's holders by rendezvous over `nodes`. */
function placed(partitions: number, nodes: string[], copies: number): Map<number, ReplicaSet> {
  const out = new Map<number, ReplicaSet>();
  for (let p = 0; p < partitions; p++) {
    const [leader, ...followers] = replicaTargets(p, nodes, [], copies);
    out.set(p, { leader: leader!, followers });
  }
  return out;
}

function apply(sets: ReadonlyMap<number, ReplicaSet>, moves: ReplicaMove[]): Map<number, ReplicaSet> {
  const out = new Map([...sets].map(([p, s]) => [p, { leader: s.leader, followers: [...s.followers] }]));
  for (const m of moves) {
    const s = out.get(m.partition)!;
    if (m.role === 'leader') {
      expect(s.leader).toBe(m.from);
      s.leader = m.to;
    } else {
      const i = s.followers.indexOf(m.from);
      expect(i).toBeGreaterThanOrEqual(0);
      s.followers[i] = m.to;
    }
  }
  return out;
}

function copiesPer(sets: ReadonlyMap<number, ReplicaSet>): Map<string, number> {
  const c = new Map<string, number>();
  for (const s of sets.values()) for (const n of [s.leader, ...s.followers]) c.set(n, (c.get(n) ?? 0) + 1);
  return c;
}

function leadersPer(sets: ReadonlyMap<number, ReplicaSet>): Map<string, number> {
  const c = new Map<string, number>();
  for (const s of sets.values()) c.set(s.leader, (c.get(s.leader) ?? 0) + 1);
  return c;
}

describe('planReplicaMoves', () => {
  it('scale-out 3 -> 4 with 3 copies: the new node takes exactly its share of copies and about its share of leaders', () => {
    const before = placed(64, ['s1', 's2', 's3'], 3);
    const moves = planReplicaMoves(before, even(['s1', 's2', 's3', 's4']));
    expect(moves).toHaveLength(48); // 192 copies / 4 nodes: the least that balances
    expect(new Set(moves.map((m) => m.partition)).size).toBe(moves.length); // one move per partition at most
    const after = apply(before, moves);
    expect([...copiesPer(after).values()]).toEqual([48, 48, 48, 48]);
    for (const n of leadersPer(after).values()) expect(Math.abs(n - 16)).toBeLessThanOrEqual(2);
    expect(planReplicaMoves(after, even(['s1', 's2', 's3', 's4']))).toEqual([]);
  });

  it('drain: every copy on the leaving node moves, to nodes that do not hold that partition', () => {
    const before = placed(64, ['s1', 's2', 's3', 's4', 's5'], 3);
    const moves = planReplicaMoves(before, even(['s1', 's2', 's3', 's4']));
    const onS5 = [...before.values()].filter((s) => [s.leader, ...s.followers].includes('s5')).length;
    expect(moves.filter((m) => m.from === 's5')).toHaveLength(onS5);
    const after = apply(before, moves);
    expect(copiesPer(after).has('s5')).toBe(false);
    for (const n of copiesPer(after).values()) expect(n).toBe(48);
  });

  it('keeps copies on distinct nodes, balances every node to its share with the fewest moves, and is stable', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 4 }),
        fc.shuffledSubarray(pool, { minLength: 3, maxLength: 7 }),
        fc.shuffledSubarray(pool, { minLength: 1, maxLength: 7 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 7, maxLength: 7 }),
        (partitions, k, from, to, caps) => {
          const copies = Math.min(k, from.length);
          const before = placed(partitions, from, copies);
          const nodes = to.map((id) => ({ id, capacity: caps[pool.indexOf(id)]! }));
          const moves = planReplicaMoves(before, nodes);
          const after = apply(before, moves);
          for (const s of after.values()) {
            const h = [s.leader, ...s.followers];
            expect(new Set(h).size).toBe(h.length);
            expect(h).toHaveLength(copies);
          }
          // Every copy ends on a kept node when there are enough of them for each partition's copies.
          if (to.length >= copies) for (const s of after.values()) for (const n of [s.leader, ...s.followers]) expect(to).toContain(n);
          // Balance within one copy of the capacity share, when that share fits (at most one copy per partition).
          const c = copiesPer(after);
          if (to.length >= copies) {
            const total = partitions * copies;
            const shares = proportionalTargets(total, nodes);
            if ([...shares.values()].every((s) => s <= partitions)) {
              for (const n of nodes) expect(Math.abs((c.get(n.id) ?? 0) - shares.get(n.id)!)).toBeLessThanOrEqual(1);
            }
          }
          // The fewest moves: each kept node's excess over its share, plus the copies that must leave.
          if (to.length >= copies) {
            const shares = proportionalTargets(partitions * copies, nodes, copiesPer(before));
            const leaving = [...before.values()].flatMap((s) => [s.leader, ...s.followers]).filter((x) => !to.includes(x)).length;
            let excess = 0;
            for (const [id, count] of copiesPer(before)) if (to.includes(id)) excess += Math.max(0, count - shares.get(id)!);
            // A leaving copy that cannot go where the shares want it (that node holds the partition) may cost one
            // balancing move more, and so may each detour through a node at its share (at most one per node) when
            // every taker already holds what the givers could give — which only few partitions make likely.
            if ([...shares.values()].every((s) => s <= partitions)) expect(moves.length).toBeLessThanOrEqual(2 * leaving + excess + to.length);
          }
          // Deterministic, whatever the order of the nodes.
          expect(planReplicaMoves(before, [...nodes].reverse())).toEqual(moves);
        },
      ),
      { seed: 6101, numRuns: 300 },
    );
  });

  it('from a balanced cluster, adding a node moves only its share of the copies', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 128 }), fc.integer({ min: 3, max: 6 }), (partitions, n) => {
        const ids = even(pool.slice(0, n));
        const placedSets = placed(partitions, pool.slice(0, n), 3);
        const balanced = apply(placedSets, planReplicaMoves(placedSets, ids));
        const moves = planReplicaMoves(balanced, even(pool.slice(0, n + 1)));
        // The new node's share, within one: no copy moves between the old nodes.
        expect(Math.abs(moves.length - (partitions * 3) / (n + 1))).toBeLessThanOrEqual(1);
        expect(moves.every((m) => m.to === pool[n])).toBe(true);
      }),
      { seed: 6102, numRuns: 100 },
    );
  });
});
