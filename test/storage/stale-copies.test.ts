import { describe, expect, it } from 'vitest';
import { RoutingTable } from '../../src/keyspace/index.js';
import { StaleCopies } from '../../src/storage/stale-copies.js';

const nodes = ['s1', 's2', 's3'];
const roundRobin = (parts: number[]) => new Map(parts.map((p) => [p, nodes[p % nodes.length]!]));
const table = (copies: number) => RoutingTable.create('ns', { scheme: 'hash', slotCount: 8, copies }, roundRobin);

/** The table with `node` gone from every partition's followers (as failover leaves it). */
function without(t: RoutingTable, node: string): RoutingTable {
  return t.withFollowers(new Map(t.partitions().map((p) => [p, t.followersOf(p).filter((f) => f !== node)])));
}

describe('stale follower copies', () => {
  it('are worth keeping only in a replicated namespace, while the partition is short of copies', () => {
    const full = table(3);
    expect(StaleCopies.worthKeeping(full, 0)).toBe(false);
    const p = full.partitionsFollowedBy('s3')[0]!;
    expect(StaleCopies.worthKeeping(without(full, 's3'), p)).toBe(true);
    expect(StaleCopies.worthKeeping(table(1), 0)).toBe(false);
  });

  it('are no longer kept once held again, and are dropped once the partition has its copies elsewhere', () => {
    const full = table(3);
    const [a, b, c] = full.partitionsFollowedBy('s3');
    const short = without(full, 's3');
    const stale = new StaleCopies();
    for (const p of [a!, b!, c!]) stale.keep('ns', p);
    expect(stale.onTable(short, 's3', () => false)).toEqual([]);
    expect(stale.size).toBe(3);
    // a: copied back to s3; b: whole again on other nodes (a fourth node took the copy); c: being copied here now.
    const back = short
      .withFollowers(new Map([[a!, [...short.followersOf(a!), 's3']]]))
      .withFollowers(new Map([[b!, [...short.followersOf(b!), 's4']]]))
      .withFollowers(new Map([[c!, [...short.followersOf(c!), 's4']]]));
    expect(stale.onTable(back, 's3', (p) => p === c)).toEqual([{ partition: b, bounds: {} }]);
    expect(stale.size).toBe(1); // c: left until its copy here ends
    expect(stale.onTable(back, 's3', () => false)).toEqual([{ partition: c, bounds: {} }]);
    expect(stale.size).toBe(0);
  });

  it('keep a range\'s keys by span across splits: stale no more where held again, dropped where whole elsewhere', () => {
    const onS1 = (parts: number[]) => new Map(parts.map((p) => [p, 's1']));
    // Ranges 0 ['', 'g'), 1 ['g', 'p'), 2 ['p', ...) on s1, followed by s2 and s3.
    const full = RoutingTable.create('r', { scheme: 'range', copies: 3 }, onS1, nodes).withSplit(0, 'g').withSplit(1, 'p');
    expect(full.followersOf(1).slice().sort()).toEqual(['s2', 's3']);
    const short = without(full, 's3');
    expect(StaleCopies.worthKeeping(short, 1)).toBe(true);
    const stale = new StaleCopies();
    stale.keep('r', 1, { start: 'g', end: 'p' });
    stale.keep('r', 2, { start: 'p', end: null });
    expect(stale.onTable(short, 's3', () => false)).toEqual([]);
    // Range 1 splits at 'k' (the new range 3 is ['k', 'p')): still short, still kept.
    const split = short.withSplit(1, 'k');
    const r3 = split.rangesFor('k', 'l')[0]!.id;
    expect(stale.onTable(split, 's3', () => false)).toEqual([]);
    // Range 1 comes back to s3; range 3 gets its third copy on s4: the keys of ['k', 'p') go, ['g', 'k') stays.
    // Range 2 is being copied to s3: left for later.
    const healed = split
      .withFollowers(new Map([[1, [...split.followersOf(1), 's3']]]))
      .withFollowers(new Map([[r3, [...split.followersOf(r3), 's4']]]));
    expect(stale.onTable(healed, 's3', (p) => p === 2)).toEqual([{ partition: r3, bounds: { start: 'k', end: 'p' } }]);
    expect(stale.size).toBe(1);
    // Range 2 held here again: its span is stale no more, nothing dropped.
    const all = healed.withFollowers(new Map([[2, [...healed.followersOf(2), 's3']]]));
    expect(stale.onTable(all, 's3', () => false)).toEqual([]);
    expect(stale.size).toBe(0);
  });
});
