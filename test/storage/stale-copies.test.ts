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
  it('are worth keeping only in a replicated hash namespace, while the partition is short of copies', () => {
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
    expect(stale.onTable(back, 's3', (p) => p === c)).toEqual([b]);
    expect(stale.size).toBe(1); // c: left until its copy here ends
    expect(stale.onTable(back, 's3', () => false)).toEqual([c]);
    expect(stale.size).toBe(0);
  });
});
