/**
 * The storage engine on real LMDB files, in both durability modes: conditional writes decided at commit time, batches
 * all-or-nothing, exact counters, group commit answering every write, and data there after reopening.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageEngine, type Durability, type Location } from '../../src/storage/engine.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-engine-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const slot7: Location = { namespace: 'ns', partition: 7, slot: 7 };
const range: Location = { namespace: 'r', partition: 0 };

describe.each<Durability>(['process', 'device'])('storage engine (%s durability)', (durability) => {
  it('puts, reads, compares versions and deletes', async () => {
    const e = StorageEngine.open(dir, { durability });
    const { version: v1, ok } = await e.put(slot7, 'a', { n: 1 }, { ifVersion: 0 });
    expect(ok).toBe(true);
    expect((await e.put(slot7, 'a', { n: 2 }, { ifVersion: 0 })).ok).toBe(false);
    expect((await e.put(slot7, 'a', { n: 2 }, { ifVersion: v1 + 1 })).ok).toBe(false);
    const { version: v2 } = await e.put(slot7, 'a', { n: 2 }, { ifVersion: v1 });
    expect(v2).toBeGreaterThan(v1);
    expect(e.get(slot7, 'a')).toEqual({ key: 'a', value: { n: 2 }, version: v2 });
    expect(await e.delete(slot7, 'a', { ifVersion: v1 })).toBe(false);
    expect(await e.delete(slot7, 'a', { ifVersion: v2 })).toBe(true);
    expect(await e.delete(slot7, 'a')).toBe(false);
    expect(e.get(slot7, 'a')).toBeUndefined();
    await e.close();
  });

  it('answers every write of a group, deciding conditions in order within it', async () => {
    const e = StorageEngine.open(dir, { durability });
    // Issued in one tick, so they share one transaction: exactly one create-if-absent may win.
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => e.put(slot7, 'race', i, { ifVersion: 0 })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(e.get(slot7, 'race')?.value).toBe(results.findIndex((r) => r.ok));
    const many = await Promise.all(Array.from({ length: 500 }, (_, i) => e.put(range, `k${i}`, i)));
    expect(many.every((r) => r.ok)).toBe(true);
    expect(e.countersFor(range).keys).toBe(500);
    await e.close();
  });

  it('keeps counters exact and data across a reopen', async () => {
    let e = StorageEngine.open(dir, { durability });
    await e.batch([
      { type: 'put', location: slot7, key: 'x', value: 'one' },
      { type: 'put', location: slot7, key: 'y', value: 'two' },
      { type: 'put', location: slot7, key: 'x', value: 'three' },
    ]);
    await e.batch([{ type: 'delete', location: slot7, key: 'y' }]);
    expect(e.countersFor(slot7).keys).toBe(1);
    const bytes = e.countersFor(slot7).bytes;
    expect(bytes).toBeGreaterThan(0);
    await e.close();
    e = StorageEngine.open(dir, { durability });
    expect(e.get(slot7, 'x')?.value).toBe('three');
    expect(e.get(slot7, 'y')).toBeUndefined();
    expect(e.countersFor(slot7)).toEqual({ keys: 1, bytes });
    expect(e.scan(slot7, { limit: 10 }).map((x) => x.key)).toEqual(['x']);
    await e.close();
  });

  it('fails a write lmdb cannot encode alone, not the others of its group', async () => {
    const e = StorageEngine.open(dir, { durability });
    const good = e.put(slot7, 'good', 1);
    const bad = e.put(slot7, 'bad', { f: () => 1 } as unknown);
    const results = await Promise.allSettled([good, bad]);
    expect(results[0].status).toBe('fulfilled');
    expect(e.get(slot7, 'good')?.value).toBe(1);
    await e.close();
  });
});
