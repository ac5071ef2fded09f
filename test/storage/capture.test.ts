/**
 * Copying a partition out while it is written: snapshot + change log, replayed on a second engine, must give exactly
 * the source's final state — no write lost between the two, none applied twice out of order — in both durability
 * modes. This is the data path of an online migration.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageEngine, type Durability, type Location } from '../../src/storage/engine.js';
import { MemoryChangeLog } from '../../src/storage/change-log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-capture-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const part: Location = { namespace: 'ns', partition: 3, slot: 3 };
const other: Location = { namespace: 'ns', partition: 4, slot: 4 };

function state(e: StorageEngine, loc: Location): Map<string, unknown> {
  return new Map(e.scan(loc, { limit: 100_000 }).map((x) => [x.key, x.value]));
}

describe.each<Durability>(['process', 'device'])('partition capture (%s durability)', (durability) => {
  it('snapshot + replayed log equals the source after concurrent writes and deletes', async () => {
    const source = StorageEngine.open(join(dir, 'src'), { durability });
    const target = StorageEngine.open(join(dir, 'dst'), { durability });
    // Values of several kinds: the copy moves them as stored bytes (records, strings, binary, numbers).
    const initial = (i: number): unknown => (i % 4 === 0 ? { n: i, tags: ['a', i] } : i % 4 === 1 ? `s${i}` : i % 4 === 2 ? Buffer.from([i & 255, 1]) : i);
    for (let i = 0; i < 500; i++) await Promise.all([source.put(part, `k${i}`, initial(i)), source.put(other, `o${i}`, i)]);

    // Writers keep going while the capture starts and the copy runs.
    let writing = true;
    let round = 0;
    const writer = (async () => {
      while (writing) {
        round++;
        const i = round % 700;
        await Promise.all([
          source.put(part, `k${i}`, `r${round}`),
          round % 5 === 0 ? source.delete(part, `k${(i * 7) % 700}`) : Promise.resolve(false),
          source.put(other, `o${i}`, round),
        ]);
      }
    })();
    /** Resolves once the writer has completed `n` more rounds: writes really overlap each step. */
    const rounds = async (n: number) => {
      const target = round + n;
      while (round < target) await new Promise((r) => setImmediate(r));
    };
    await rounds(5);
    const log = new MemoryChangeLog();
    const capture = await source.beginCapture(part, log);
    let after: string | undefined;
    for (;;) {
      // As a migration copies: stored bytes, pages cut by count or by size.
      const { entries: page } = source.scanRaw(part, { after, limit: 50, maxBytes: 300, snapshot: capture.snapshot });
      await target.importRaw(part, page);
      if (page.length === 0) break;
      after = page[page.length - 1]!.key;
      await new Promise((r) => setImmediate(r)); // let the writer interleave
    }
    await rounds(10);
    writing = false;
    await writer;
    let seq = 0;
    for (;;) {
      const changes = log.read(seq, 100);
      if (changes.length === 0) break;
      await target.importEntries(part, changes);
      seq = changes[changes.length - 1]!.seq;
    }
    capture.stop();

    expect(round).toBeGreaterThanOrEqual(15); // the rounds awaited above: writes overlapped the capture and the copy
    expect(state(target, part)).toEqual(state(source, part));
    expect(target.countersFor(part)).toEqual(source.countersFor(part));
    expect(state(target, other).size).toBe(0); // only the captured partition was copied
    for (const [key] of state(source, part)) expect(target.get(part, key)?.version).toBe(source.get(part, key)?.version);

    expect(await source.dropPartition(part)).toBe(state(target, part).size);
    expect(state(source, part).size).toBe(0);
    expect(state(source, other).size).toBeGreaterThan(0);
    await source.close();
    await target.close();
  });
});

describe('change log', () => {
  it('reads in order, releases, and refuses to skip what overflowed', () => {
    const log = new MemoryChangeLog(3);
    log.append({ key: 'a', deleted: false, value: 1, version: 1 });
    log.append({ key: 'b', deleted: true, version: 2 });
    expect(log.read(0, 10).map((c) => c.seq)).toEqual([1, 2]);
    log.release(1);
    expect(log.read(1, 10).map((c) => c.key)).toEqual(['b']);
    expect(() => log.read(0, 10)).toThrow(/released/);
    log.append({ key: 'c', deleted: false, value: 3, version: 3 });
    log.append({ key: 'd', deleted: false, value: 4, version: 4 });
    log.append({ key: 'e', deleted: false, value: 5, version: 5 });
    expect(() => log.read(1, 10)).toThrow(/overflowed/);
  });
});
