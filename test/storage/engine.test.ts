/**
 * The storage engine on real LMDB files, in both durability modes: conditional writes decided at commit time, batches
 * all-or-nothing, exact counters, group commit answering every write, and data there after reopening.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageEngine, type Durability, type Location } from '../../src/storage/engine.js';
import { MemoryChangeLog } from '../../src/storage/change-log.js';

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

  it('copies entries as stored bytes: values, versions and counters as the source has them', async () => {
    const source = StorageEngine.open(join(dir, 'a'), { durability });
    const target = StorageEngine.open(join(dir, 'b'), { durability });
    const values: unknown[] = [{ name: 'Ada', langs: ['en', 'fr'], n: 1.5 }, 'text', 42, Buffer.from([1, 2, 3]), [null, true, { x: {} }]];
    for (const [i, v] of values.entries()) await source.put(slot7, `k${i}`, v);
    const { entries: raw, done } = source.scanRaw(slot7, { limit: 100 });
    expect(done).toBe(true);
    expect(raw.map((r) => r.key)).toEqual(values.map((_, i) => `k${i}`));
    await target.importRaw(slot7, raw);
    for (const [i, v] of values.entries()) {
      expect(target.get(slot7, `k${i}`)).toEqual({ key: `k${i}`, value: v, version: source.get(slot7, `k${i}`)!.version });
    }
    expect(target.countersFor(slot7)).toEqual(source.countersFor(slot7));
    // A later write on the target gets a larger version than any copied.
    expect((await target.put(slot7, 'k0', 'new')).version).toBeGreaterThan(Math.max(...raw.map((r) => r.version)));
    // Pages by size: at least one entry, then stop once maxBytes is reached.
    expect(source.scanRaw(slot7, { limit: 100, maxBytes: 1 })).toMatchObject({ entries: [{ key: 'k0' }], done: false });
    expect(source.scanRaw(slot7, { limit: values.length })).toMatchObject({ done: false }); // stopped at the limit
    // A copied entry written to a partition being captured reaches the change log as a value, not as bytes.
    const log = new MemoryChangeLog();
    const capture = await target.beginCapture(slot7, log);
    await target.importRaw(slot7, raw.slice(0, 1));
    expect(log.read(0, 10).map((c) => c.value)).toEqual([values[0]]);
    capture.stop();
    await source.close();
    await target.close();
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
