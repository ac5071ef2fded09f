/**
 * The storage engine's public types: where a key lives, entries as read and as stored, batches, replication hooks
 * and read snapshots (see engine.ts).
 */
import type { Transaction } from 'lmdb';

/**
 * When an acknowledged write is safe: `process` — it survives the node process crashing (kill -9), and reaches the
 * device within a second; `device` — it is on the device before it is acknowledged (survives power loss too).
 */
export type Durability = 'process' | 'device';

/**
 * Where a key lives: its namespace and partition. For hash namespaces the partition is the slot and is part of the
 * stored key; for range namespaces (`slot` absent) it only names the range the key is counted under.
 */
export interface Location {
  namespace: string;
  partition: number;
  /** Hash slot (equal to `partition`); absent for range namespaces. */
  slot?: number;
}

export interface StoredEntry {
  key: string;
  value: unknown;
  version: number;
}

/**
 * An entry as stored: its value still encoded (msgpack, self-contained — lmdb keeps no shared structures here), so a
 * migration copies it from node to node without decoding and re-encoding it.
 */
export interface RawEntry {
  key: string;
  raw: Uint8Array;
  version: number;
}

/** An entry without its value: `[key, version, stored size in bytes, valueHash of the stored bytes]`. */
export type EntryDigest = [string, number, number, number];

/** One page of a partition's entries; `done` when it is the last (it ended with the entries, not at a limit). */
export interface Page<T> {
  entries: T[];
  done: boolean;
}

export type BatchOp =
  | { type: 'put'; location: Location; key: string; value: unknown }
  | { type: 'delete'; location: Location; key: string };

/** A committed change to a partition that has followers, as the leader ships it (see replicator.ts). */
export interface ReplicatedChange {
  location: Location;
  key: string;
  deleted: boolean;
  value?: unknown;
  version: number;
  /** Stored size of the entry on the leader (to size replication calls). */
  bytes?: number;
}

/**
 * What a leader does with its committed writes to partitions that have followers: `ship` sends one group's changes
 * (in commit order) and resolves once every in-sync follower holds them; the writes that made them are answered only
 * then, the group's other writes once committed.
 */
export interface ReplicationHook {
  /** Whether changes to this location go to followers (this node leads it, and it has copies). */
  wants(location: Location): boolean;
  ship(changes: ReplicatedChange[]): Promise<void>;
}

/** A read transaction held open: scans through it see the data as it was when it was opened. */
export interface ReadSnapshot {
  readonly transaction: Transaction;
  release(): void;
}

/** One key's change, in stored-key form, as the group commit applies it. */

/** A scan of one partition: keys with `start <= key < end`, from just past `after`, at most `limit` of them. */
export interface ScanOptions {
  start?: string;
  end?: string | null;
  after?: string;
  limit: number;
  snapshot?: ReadSnapshot;
}
