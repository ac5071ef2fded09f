/**
 * RoutingTable.withMerge: a routing-only join of two neighbouring ranges on one owner, refused for anything else —
 * not adjacent, different owners, either moving, a hash namespace — and the range options' validation.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RoutingTable } from '../../src/keyspace/index.js';
import { BusyError, InvalidArgumentError } from '../../src/errors/index.js';

const onN1 = (parts: number[]) => new Map(parts.map((p) => [p, 'n1']));

/** Ranges 0 ['', 'g'), 1 ['g', 'p'), 2 ['p', +inf) on n1, created by two splits. */
function threeRanges(): RoutingTable {
  return RoutingTable.create('r', { scheme: 'range', splitBytes: 1024 }, onN1).withSplit(0, 'g').withSplit(1, 'p');
}

describe('RoutingTable.withMerge', () => {
  it('joins a range with the one after it: the merged range keeps the left id and owner, the epoch moves on', () => {
    const t = threeRanges();
    expect(t.rangesFor('', null).map((r) => [r.id, r.start, r.end])).toEqual([
      [0, '', 'g'],
      [1, 'g', 'p'],
      [2, 'p', null],
    ]);
    const m = t.withMerge(1, 2);
    expect(m.epoch).toBe(t.epoch + 1);
    expect(m.rangesFor('', null).map((r) => [r.id, r.start, r.end, r.owner])).toEqual([
      [0, '', 'g', 'n1'],
      [1, 'g', null, 'n1'],
    ]);
    expect(m.place('zzz').partition).toBe(1);
    expect(m.ownerOf(2)).toBeUndefined();
    expect(m.record.nextRangeId).toBe(t.record.nextRangeId); // ids are never reused
    expect(m.withMerge(0, 1).rangesFor('', null)).toEqual([{ id: 0, start: '', end: null, owner: 'n1' }]);
    expect(t.rangesFor('', null)).toHaveLength(3); // the original is unchanged
  });

  it('refuses ranges that are not neighbours in that order, or do not exist', () => {
    const t = threeRanges();
    expect(() => t.withMerge(0, 2)).toThrow(InvalidArgumentError);
    expect(() => t.withMerge(1, 0)).toThrow(InvalidArgumentError);
    expect(() => t.withMerge(2, 0)).toThrow(InvalidArgumentError); // the last range has no right neighbour
    expect(() => t.withMerge(0, 9)).toThrow(InvalidArgumentError);
    expect(() => t.withMerge(9, 0)).toThrow(InvalidArgumentError);
    expect(() => t.withMerge(1, 1)).toThrow(InvalidArgumentError);
  });

  it('refuses ranges with different owners', () => {
    const t = threeRanges().withOwners(new Map([[1, 'n2']]));
    const err = (() => {
      try {
        t.withMerge(0, 1);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).details).toMatchObject({ leftOwner: 'n1', rightOwner: 'n2' });
    expect(() => t.withMerge(1, 2)).toThrow(InvalidArgumentError);
  });

  it('refuses, as busy, while either range is moving; allowed again once the move has ended', () => {
    const entry = { to: 'n2', job: 'j1', startedAt: new Date(0).toISOString() };
    for (const moving of [0, 1]) {
      const t = threeRanges().withMigration(moving, entry);
      expect(() => t.withMerge(0, 1)).toThrow(BusyError);
      if (moving === 1) expect(() => t.withMerge(1, 2)).toThrow(BusyError); // as left or as right
      else expect(t.withMerge(1, 2).ownerOf(2)).toBeUndefined(); // a pair without the moving range still merges
      expect(t.withMigration(moving, undefined).withMerge(0, 1).range(0)!.end).toBe('p');
    }
  });

  it('refuses on a hash namespace', () => {
    const t = RoutingTable.create('h', { scheme: 'hash', slotCount: 4 }, onN1);
    expect(() => t.withMerge(0, 1)).toThrow(InvalidArgumentError);
  });

  it('undoes any split: split then merge gives back the same ranges', () => {
    const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'é', '\u{1F600}'), minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(fc.uniqueArray(key, { minLength: 1, maxLength: 12 }), (cuts) => {
        let t = RoutingTable.create('r', { scheme: 'range' }, onN1);
        for (const at of cuts) {
          const id = t.place(at).partition;
          if (t.range(id)!.start === at) continue;
          const before = t.rangesFor('', null);
          const split = t.withSplit(id, at);
          const newId = split.place(at).partition;
          const back = split.withMerge(id, newId);
          expect(back.rangesFor('', null)).toEqual(before);
          t = split;
        }
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe('range namespace options', () => {
  it('keeps splitOps and splitOpsSustainMs in the record through splits and merges', () => {
    const t = RoutingTable.create('r', { scheme: 'range', splitBytes: 4096, splitOps: 500, splitOpsSustainMs: 2000 }, onN1);
    const m = t.withSplit(0, 'm').withMerge(0, 1);
    expect(m.record).toMatchObject({ splitBytes: 4096, splitOps: 500, splitOpsSustainMs: 2000 });
  });

  it('validates splitOps like splitBytes', () => {
    for (const splitOps of [0, -1, 1.5, Number.NaN, Infinity]) {
      expect(() => RoutingTable.create('r', { scheme: 'range', splitOps }, onN1)).toThrow(InvalidArgumentError);
    }
    for (const splitOpsSustainMs of [0, 999, 1500.5, 3_600_001]) {
      expect(() => RoutingTable.create('r', { scheme: 'range', splitOpsSustainMs }, onN1)).toThrow(InvalidArgumentError);
    }
    expect(RoutingTable.create('r', { scheme: 'range' }, onN1).record.splitOps).toBeUndefined();
  });
});

describe('RoutingTable.withoutMoves', () => {
  it("clears only the entries that still name the job, and says when there is nothing to clear", () => {
    const t = RoutingTable.create('h', { scheme: 'hash', slotCount: 8 }, onN1)
      .withMigration(1, { to: 'n2', job: 'a', startedAt: '' })
      .withMigration(2, { to: 'n2', job: 'a', startedAt: '' })
      .withMigration(3, { to: 'n3', job: 'b', startedAt: '' });
    const next = t.withoutMoves('a', [1, 2, 3])!;
    expect(next.migrationOf(1)).toBeUndefined();
    expect(next.migrationOf(2)).toBeUndefined();
    expect(next.migrationOf(3)?.job).toBe('b'); // another job's entry stays
    expect(next.epoch).toBe(t.epoch); // ownership did not change
    expect(next.withoutMoves('a', [1, 2])).toBeUndefined();
  });
});
