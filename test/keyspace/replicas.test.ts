import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RoutingTable } from '../../src/keyspace/index.js';
import { failover } from '../../src/migration/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const nodes = ['s1', 's2', 's3', 's4'];
const roundRobin = (parts: number[]) => new Map(parts.map((p) => [p, nodes[p % nodes.length]!]));

function table(copies: number, slotCount = 64): RoutingTable {
  return RoutingTable.create('ns', { scheme: 'hash', slotCount, copies }, roundRobin);
}

describe('replicated range namespaces', () => {
  const ranges = () => RoutingTable.create('r', { scheme: 'range', copies: 3 }, () => new Map([[0, 's1']]), nodes);

  it('place the first range\'s followers over the nodes given, and survive the stored form', () => {
    const t = ranges();
    expect(t.copies).toBe(3);
    expect(t.ownerOf(0)).toBe('s1');
    expect(t.followersOf(0)).toHaveLength(2);
    expect(t.followersOf(0)).not.toContain('s1');
    const again = RoutingTable.fromRecord(JSON.parse(JSON.stringify(t.record)));
    expect(again.followersOf(0)).toEqual(t.followersOf(0));
    expect(RoutingTable.create('r', { scheme: 'range' }, () => new Map([[0, 's1']]), nodes).record.ranges![0]!.followers).toBeUndefined();
  });

  it('give both halves of a split the range\'s leader and followers; merge only ranges with the same copies', () => {
    const t = ranges();
    const split = t.withSplit(0, 'm');
    const right = split.place('x').partition;
    expect(right).not.toBe(0);
    expect(split.ownerOf(right)).toBe('s1');
    expect(split.followersOf(right)).toEqual(t.followersOf(0));
    expect(split.followersOf(0)).toEqual(t.followersOf(0));
    expect(split.withMerge(0, right).followersOf(0)).toEqual(t.followersOf(0));
    // One range's follower replaced: they no longer merge.
    const [f1, f2] = t.followersOf(0);
    const other = nodes.find((n) => n !== 's1' && n !== f1 && n !== f2)!;
    const apart = split.withFollowers(new Map([[right, [f1!, other]]]));
    expect(() => apart.withMerge(0, right)).toThrow(/different followers/);
  });

  it('fail over, hand off and drop followers per range', () => {
    const t = ranges().withSplit(0, 'm');
    const right = t.place('x').partition;
    const heir = t.followersOf(right)[0]!;
    const failed = t.withFailover(new Set(['s1']), new Map([[0, t.followersOf(0)[0]!], [right, heir]]));
    expect(failed.ownerOf(right)).toBe(heir);
    expect(failed.followersOf(right)).not.toContain(heir);
    expect(failed.partitions().every((p) => !failed.holds(p, 's1'))).toBe(true);
    const back = failed.withCopiesJoined([right], 's1');
    expect(back.followersOf(right)).toContain('s1');
    const handed = back.withLeadsHandedOff(new Map([[right, 's1']]));
    expect(handed.ownerOf(right)).toBe('s1');
    expect(handed.followersOf(right)).toContain(heir);
    expect(RoutingTable.fromRecord(JSON.parse(JSON.stringify(handed.record))).followersOf(right)).toEqual(handed.followersOf(right));
  });
});

describe('replicated routing tables', () => {
  it('place copies - 1 followers per slot on distinct nodes other than the leader, and survive the stored form', () => {
    const t = table(3);
    expect(t.copies).toBe(3);
    expect(t.minInSync).toBe(2);
    for (const p of t.partitions()) {
      const holders = [t.ownerOf(p)!, ...t.followersOf(p)];
      expect(new Set(holders).size).toBe(3);
      expect(t.holds(p, t.followersOf(p)[0]!)).toBe(true);
    }
    const again = RoutingTable.fromRecord(JSON.parse(JSON.stringify(t.record)));
    for (const p of t.partitions()) expect(again.followersOf(p)).toEqual(t.followersOf(p));
    expect(again.partitionsFollowedBy('s2')).toEqual(t.partitionsFollowedBy('s2'));
  });

  it('keeps one copy by default and refuses bad copy counts', () => {
    expect(table(1).followersOf(0)).toEqual([]);
    expect(table(1).record.followerRuns).toBeUndefined();
    expect(() => table(0)).toThrow(InvalidArgumentError);
    expect(() => table(8)).toThrow(InvalidArgumentError);
    expect(() => RoutingTable.create('r', { scheme: 'range', copies: 8 }, () => new Map([[0, 's1']]), nodes)).toThrow(InvalidArgumentError);
  });

  it('withFollowers bumps the epoch, keeps moves, and refuses the leader or duplicates as followers', () => {
    const t = table(3).withMigration(5, { to: 's4', job: 'j', startedAt: 'now' });
    const leader = t.ownerOf(5)!;
    const next = t.withFollowers(new Map([[5, []]]));
    expect(next.epoch).toBe(t.epoch + 1);
    expect(next.followersOf(5)).toEqual([]);
    expect(next.migrationOf(5)?.job).toBe('j');
    expect(() => t.withFollowers(new Map([[5, [leader]]]))).toThrow(InvalidArgumentError);
    const f = t.followersOf(5)[0]!;
    expect(() => t.withFollowers(new Map([[5, [f, f]]]))).toThrow(InvalidArgumentError);
  });

  it('a move to a follower takes it out of the followers; a copy joins them and clears its entry', () => {
    const t = table(3);
    const f = t.followersOf(7)[0]!;
    const moved = t.withOwners(new Map([[7, f]]));
    expect(moved.ownerOf(7)).toBe(f);
    expect(moved.followersOf(7)).not.toContain(f);
    const spare = nodes.find((n) => !moved.holds(7, n))!;
    const copying = moved.withMigration(7, { to: spare, job: 'c', startedAt: 'now', copy: true });
    const joined = copying.withCopiesJoined([7], spare);
    expect(joined.followersOf(7)).toContain(spare);
    expect(joined.migrationOf(7)).toBeUndefined();
    expect(joined.epoch).toBe(copying.epoch + 1);
    // A follower copy moving: the new copy joins and the replaced follower leaves in the same table.
    const leaving = joined.followersOf(7)[0]!;
    const elsewhere = nodes.find((n) => !joined.holds(7, n))!;
    const swapped = joined.withMigration(7, { to: elsewhere, job: 'd', startedAt: 'now', copy: true }).withCopiesJoined([7], elsewhere, leaving);
    expect(swapped.followersOf(7)).toContain(elsewhere);
    expect(swapped.holds(7, leaving)).toBe(false);
    expect(swapped.followersOf(7)).toHaveLength(joined.followersOf(7).length);
  });

  it('failover hands each partition of the gone node to an in-sync follower and removes it everywhere', () => {
    fc.assert(
      fc.property(fc.constantFrom(...nodes), fc.integer({ min: 2, max: 4 }), (gone, copies) => {
        const t = table(copies, 32).withMigration(3, { to: gone, job: 'j', startedAt: 'now' });
        const next = failover(t, new Set([gone]))!;
        expect(next.epoch).toBe(t.epoch + 1);
        expect(next.migrationOf(3)).toBeUndefined(); // a move to the gone node cannot finish
        for (const p of t.partitions()) {
          expect(next.followersOf(p)).not.toContain(gone);
          expect(next.ownerOf(p)).not.toBe(gone); // every partition had a follower to take over
          if (t.ownerOf(p) === gone) expect(t.followersOf(p)).toContain(next.ownerOf(p));
          else expect(next.ownerOf(p)).toBe(t.ownerOf(p));
          expect(next.followersOf(p).length).toBe(copies - 1 - (t.holds(p, gone) ? 1 : 0));
        }
      }),
      { seed: 6101, numRuns: 40 },
    );
  });

  it('failover leaves a partition whose only copy was lost with its old leader, and changes nothing without a gone node', () => {
    const t = table(3);
    const p = 9;
    const leader = t.ownerOf(p)!;
    const lonely = t.withFollowers(new Map([[p, []]]));
    const next = failover(lonely, new Set([leader]))!;
    expect(next.ownerOf(p)).toBe(leader);
    expect(failover(t, new Set())).toBeUndefined();
    expect(failover(table(1), new Set(['s1']))).toBeUndefined();
  });
});
