/**
 * The engine's side of replication: a write whose changes go to followers is answered only once they hold it; the
 * other writes of its group (unreplicated ones, a follower's applies) are answered once committed, and a failed ship
 * fails only the writes that were shipped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageEngine, type Location, type ReplicatedChange, type ReplicationHook } from '../../src/storage/engine.js';
import { UnavailableError } from '../../src/errors/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-engine-repl-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const led: Location = { namespace: 'rep', partition: 3, slot: 3 };
const single: Location = { namespace: 'one', partition: 3, slot: 3 };
const followed: Location = { namespace: 'other', partition: 5, slot: 5 };

/** A hook that replicates namespace `rep` and lets the test settle each ship. */
function hook(): ReplicationHook & { ships: { changes: ReplicatedChange[]; resolve(): void; reject(err: Error): void }[] } {
  const ships: { changes: ReplicatedChange[]; resolve(): void; reject(err: Error): void }[] = [];
  return {
    ships,
    wants: (location) => location.namespace === 'rep',
    ship: (changes) =>
      new Promise<void>((resolve, reject) => {
        ships.push({ changes, resolve, reject });
      }),
  };
}

/** Whether `p` has settled after the pending callbacks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('storage engine with a replication hook', () => {
  it('answers a replicated write once shipped, and the rest of its group once committed', async () => {
    const e = StorageEngine.open(dir);
    const h = hook();
    e.setReplication(h);
    // Submitted in one pass of the event loop: one group.
    const rep = e.put(led, 'k', 'v1');
    const one = e.put(single, 'k', 'x');
    const applied = e.applyReplicated([{ location: followed, key: 'f', deleted: false, value: 'y', version: 5 }]);
    expect(await settled(one)).toBe(true);
    expect(await settled(applied)).toBe(true);
    expect(await settled(rep)).toBe(false);
    expect(h.ships).toHaveLength(1);
    const [c] = h.ships[0]!.changes;
    expect(c).toMatchObject({ location: led, key: 'k', deleted: false, value: 'v1' });
    expect(c!.bytes).toBe(e.countersFor(led).bytes);
    // Committed here already; answered only now.
    expect(e.get(led, 'k')?.value).toBe('v1');
    h.ships[0]!.resolve();
    expect((await rep).ok).toBe(true);
    await e.close();
  });

  it('fails only the shipped writes of a group when the ship fails', async () => {
    const e = StorageEngine.open(dir);
    const h = hook();
    e.setReplication(h);
    const rep = e.put(led, 'k', 'v1');
    const del = e.delete(led, 'gone'); // nothing to delete: not shipped
    const one = e.put(single, 'k', 'x');
    await settled(one);
    h.ships[0]!.reject(new UnavailableError('a follower failed'));
    await expect(rep).rejects.toBeInstanceOf(UnavailableError);
    expect(await del).toBe(false);
    expect((await one).ok).toBe(true);
    await e.close();
  });

  it('reasserts keys: the current value again (a delete for a key not held) under a fresh version, shipped like a write', async () => {
    const e = StorageEngine.open(dir);
    const h = hook();
    e.setReplication(h);
    const put = e.put(led, 'k', { n: 1 });
    await settled(put);
    h.ships[0]!.resolve();
    const { version } = await put;
    const counters = { ...e.countersFor(led) };
    // `single` is not replicated here: left alone.
    const reasserted = e.reassert([
      { location: led, key: 'k' },
      { location: led, key: 'gone' },
      { location: single, key: 'k' },
    ]);
    expect(await settled(reasserted)).toBe(false);
    const changes = h.ships[1]!.changes;
    expect(changes.map((c) => [c.key, c.deleted, c.value])).toEqual([
      ['k', false, { n: 1 }],
      ['gone', true, undefined],
    ]);
    expect(changes[0]!.version).toBeGreaterThan(version);
    expect(changes[1]!.version).toBeGreaterThan(changes[0]!.version);
    h.ships[1]!.resolve();
    await reasserted;
    expect(e.get(led, 'k')).toEqual({ key: 'k', value: { n: 1 }, version: changes[0]!.version });
    expect(e.get(led, 'gone')).toBeUndefined();
    expect(e.get(single, 'k')).toBeUndefined();
    expect(e.countersFor(led)).toEqual(counters);
    await e.close();
  });

  it('ships the groups of pipelined writes separately, each answered with its own ship', async () => {
    const e = StorageEngine.open(dir);
    const h = hook();
    e.setReplication(h);
    const first = e.put(led, 'a', 1);
    await settled(first);
    const second = e.batch([
      { type: 'put', location: led, key: 'b', value: 2 },
      { type: 'put', location: single, key: 'c', value: 3 },
    ]);
    await settled(second);
    expect(h.ships.map((s) => s.changes.map((c) => c.key))).toEqual([['a'], ['b']]);
    h.ships[1]!.resolve();
    expect(await settled(second)).toBe(true);
    expect(await settled(first)).toBe(false);
    h.ships[0]!.resolve();
    expect((await first).ok).toBe(true);
    await e.close();
  });
});
