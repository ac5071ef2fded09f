/**
 * How a partition's entries sit in the engine's one ordered key space, and reading them in order. Stored keys are
 * arrays in lmdb's ordered-binary encoding:
 *   hash namespace:  [namespace, slot, key]   — a slot's keys sit together (migration copies a run, not a scan)
 *   range namespace: [namespace, key]         — keys in order; a range split moves no data
 */
import type { Database } from 'lmdb';
import type { Location, ScanOptions } from './engine-types.js';
import type { PartitionCounters } from './partition-counters.js';

export type StoredKey = (string | number)[];

export function storedKey(location: Location, key: string): StoredKey {
  return location.slot === undefined ? [location.namespace, key] : [location.namespace, location.slot, key];
}

/** Bounds of a range namespace's keys (`end` exclusive; null or absent: to the end of the namespace). */
export interface KeyBounds {
  start?: string;
  end?: string | null;
}

function prefixOf(location: Location): StoredKey {
  return location.slot === undefined ? [location.namespace] : [location.namespace, location.slot];
}

/** The stored key just past a partition's data (or `[..., end]` when the scan stops at a user key). */
function endOf(location: Location, end: string | null | undefined): StoredKey {
  if (end !== undefined && end !== null) return [...prefixOf(location), end];
  // Ordered-binary sorts an array after its prefixes, so the next partition's prefix bounds this one.
  return location.slot === undefined ? [location.namespace + '\u0001'] : [location.namespace, location.slot + 1];
}

/** A partition's entries with `start <= key < end` in key order (`after`: resume past that key), as `db` decodes them. */
export function* entriesIn<V>(db: Database<V, StoredKey>, location: Location, options: ScanOptions): Generator<{ key: string; value: V; version: number }> {
  const from = options.after !== undefined ? options.after : (options.start ?? '');
  const range = db.getRange({
    start: [...prefixOf(location), from],
    end: endOf(location, options.end),
    versions: true,
    ...(options.snapshot ? { transaction: options.snapshot.transaction } : {}),
  });
  for (const { key, value, version } of range) {
    const userKey = key[key.length - 1] as string;
    if (options.after !== undefined && userKey === options.after) continue;
    yield { key: userKey, value, version: version ?? 0 };
  }
}

/** The stored keys of a partition within `bounds`, in order. */
export function storedKeysIn(db: Database<unknown, StoredKey>, location: Location, bounds: KeyBounds): Iterable<StoredKey> {
  return db.getKeys({ start: [...prefixOf(location), bounds.start ?? ''], end: endOf(location, bounds.end) });
}

/** Keys and stored bytes of a partition within `bounds`, counted from disk. */
export function countIn(db: Database<unknown, StoredKey>, location: Location, bounds: KeyBounds): PartitionCounters {
  const c: PartitionCounters = { keys: 0, bytes: 0 };
  for (const key of storedKeysIn(db, location, bounds)) {
    c.keys += 1;
    c.bytes += db.getBinaryFast(key)?.length ?? 0;
  }
  return c;
}
