/**
 * The storage engine: one LMDB environment per node, one ordered key space for every namespace; each partition's data
 * is one contiguous run of it (stored-keys.ts).
 * Values are stored with a version (lmdb `useVersions`): a per-node hybrid clock, so versions only grow for a key
 * and conditional writes compare them at commit time, inside LMDB's writer.
 *
 * Writes go through a group commit: those arriving in one pass of the event loop share one transaction and are
 * answered once it has committed. Durability `process` (default) commits on the main thread without a device flush —
 * a committed transaction is in the OS's page cache and survives kill -9 of the node — and flushes the environment
 * once a second, as Redis's `appendfsync everysec` does. Durability `device` flushes every commit before answering.
 * LMDB's own caveat for running without a flush per commit: an OS crash or power loss can lose the last second, and
 * on a filesystem that reorders writes it could damage the file; use `device` where that matters.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { unpack } from 'msgpackr';
import { GroupCommit } from './group-commit.js';
import { CounterTable, counterKey, type PartitionCounters } from './partition-counters.js';
import type { Change, ChangeLog } from './change-log.js';
import { valueHash } from './value-hash.js';
import { countIn, entriesIn, storedKey, storedKeysIn, type KeyBounds, type StoredKey } from './stored-keys.js';
import type { Durability, Location, StoredEntry, RawEntry, EntryDigest, BatchOp, ReplicatedChange, ReplicationHook, ReadSnapshot, ScanOptions, Page } from './engine-types.js';

export type { Durability, Location, StoredEntry, RawEntry, EntryDigest, BatchOp, ReplicatedChange, ReplicationHook, ReadSnapshot, ScanOptions, Page } from './engine-types.js';
export type { PartitionCounters } from './partition-counters.js';

const FLUSH_INTERVAL_MS = 1000;

/** lmdb-js has `sync` on the root database; its typings do not say so. */
type Syncable = { sync(callback: (error?: Error) => void): void };

type Write =
  | { type: 'put'; location: Location; key: StoredKey; value: unknown; version: number; ifVersion?: number; raw?: false }
  | { type: 'put'; location: Location; key: StoredKey; value: Uint8Array; version: number; ifVersion?: undefined; raw: true }
  | { type: 'delete'; location: Location; key: StoredKey; ifVersion?: number; version?: number }
  | { type: 'reassert'; location: Location; key: StoredKey; version: number };

/** What is submitted to the group commit; `shipped` is set after the commit if its changes go to followers. */
type Submitted = (Write | { type: 'all'; writes: Write[] }) & { shipped?: Promise<void> };

/**
 * @example
 * ```ts
 * const engine = StorageEngine.open('/var/lib/shardflow/n1');
 * const { version } = await engine.put({ namespace: 'users', slot: 12 }, 'u1', { name: 'Ada' });
 * engine.get({ namespace: 'users', slot: 12 }, 'u1'); // { key: 'u1', value: { name: 'Ada' }, version }
 * ```
 */
export class StorageEngine {
  private lastVersion = 0;
  /** Change logs of partitions being captured (a migration copying them), by partition. */
  private readonly captures = new Map<string, Set<ChangeLog>>();
  private groupChanges: { log: ChangeLog; change: Omit<Change, 'seq'> }[] | undefined;
  private groupReplicated: ReplicatedChange[] | undefined;
  /** The submitted writes of the group being applied whose changes go to followers, and the one being applied. */
  private groupShipping: Submitted[] | undefined;
  private applying: Submitted | undefined;
  private replication: ReplicationHook | undefined;
  private flusher: NodeJS.Timeout | undefined;
  /** Keys and bytes per partition, kept as writes happen; rebuilt from disk at open. */
  private readonly counters = new CounterTable();

  private readonly group: GroupCommit<Submitted>;

  private constructor(
    private readonly root: RootDatabase,
    private readonly data: Database<unknown, StoredKey>,
    /** The same database, values as their stored bytes (see {@link RawEntry}). */
    private readonly rawData: Database<Uint8Array, StoredKey>,
    durability: Durability,
  ) {
    const transact = durability === 'process' ? (run: () => void) => this.data.transactionSync(run) : (run: () => void) => this.data.transaction(run);
    this.group = new GroupCommit((run) => {
      // Changes to captured partitions reach their logs only once the transaction has committed.
      const changes: { log: ChangeLog; change: Omit<Change, 'seq'> }[] = [];
      const replicated: ReplicatedChange[] = [];
      const shipping: Submitted[] = [];
      const result = transact(() => {
        this.groupChanges = changes;
        this.groupReplicated = this.replication ? replicated : undefined;
        this.groupShipping = shipping;
        try {
          run();
        } finally {
          this.groupChanges = undefined;
          this.groupReplicated = undefined;
          this.groupShipping = undefined;
          this.applying = undefined;
        }
      });
      return Promise.resolve(result).then(() => {
        for (const c of changes) c.log.append(c.change);
        if (replicated.length === 0) return;
        // Writes with replicated changes are answered only once the followers hold them too (`shipped`); the rest
        // of the group — a follower's applies among them — is answered at once, so no apply waits on another ship.
        const shipped = this.replication!.ship(replicated);
        shipped.catch(() => undefined); // a write that failed on its own never awaits it
        for (const w of shipping) w.shipped = shipped;
      });
    }, (w) => {
      this.applying = w;
      return this.apply(w);
    }, (w) => w.shipped);
  }

  static open(path: string, options: { durability?: Durability } = {}): StorageEngine {
    const durability = options.durability ?? 'process';
    // 'process': commits reach the OS page cache before the answer (kill -9 safe) and are flushed to the device once
    // a second, like Redis's appendfsync everysec; 'device': every commit is flushed before it is answered.
    // No writable map (`useWritemap`): it cut a third of the CPU per put here, but lmdb 3.5.6 then failed an assertion
    // in mdb_freelist_save (mdb.c:4146) and aborted the node when ranges split under deletes.
    const root = open({ path, maxDbs: 8, noSync: durability === 'process' });
    const data = root.openDB<unknown, StoredKey>({ name: 'data', useVersions: true });
    const rawData = root.openDB<Uint8Array, StoredKey>({ name: 'data', useVersions: true, encoding: 'binary' });
    const engine = new StorageEngine(root, data, rawData, durability);
    engine.rebuildCounters();
    if (durability === 'process') {
      engine.flusher = setInterval(() => (root as unknown as Syncable).sync(() => undefined), FLUSH_INTERVAL_MS);
      engine.flusher.unref();
    }
    return engine;
  }

  /** Sets what happens to committed writes of replicated partitions (the storage node's replicator). */
  setReplication(hook: ReplicationHook | undefined): void {
    this.replication = hook;
  }

  /** A fresh version: greater than any this node has issued or seen. */
  nextVersion(): number {
    const now = Date.now() * 1000;
    this.lastVersion = Math.max(this.lastVersion + 1, now);
    return this.lastVersion;
  }

  /** Moves the version clock past `version` (one another node issued): later versions here are above it. */
  witnessVersion(version: number): void {
    if (Number.isSafeInteger(version)) this.lastVersion = Math.max(this.lastVersion, version);
  }

  get(location: Location, key: string): StoredEntry | undefined {
    const entry = this.data.getEntry(storedKey(location, key));
    if (!entry) return undefined;
    return { key, value: entry.value, version: entry.version ?? 0 };
  }

  /**
   * Writes a value. With `ifVersion` the write happens only if the key's version is that number at commit time;
   * `ifVersion: 0` means the key must not exist. Resolves once committed.
   */
  async put(
    location: Location,
    key: string,
    value: unknown,
    options: { ifVersion?: number; valueBytes?: number } = {},
  ): Promise<{ ok: boolean; version: number }> {
    const version = this.nextVersion();
    const ok = await this.group.submit({
      type: 'put',
      location,
      key: storedKey(location, key),
      value,
      version,
      ifVersion: options.ifVersion,
    });
    return { ok, version };
  }

  /** Deletes a key (optionally only at `ifVersion`). Resolves with whether a key was removed. */
  delete(location: Location, key: string, options: { ifVersion?: number } = {}): Promise<boolean> {
    return this.group.submit({ type: 'delete', location, key: storedKey(location, key), ifVersion: options.ifVersion });
  }

  /** Applies every op in one transaction: all or nothing. Returns the version given to each op. */
  async batch(ops: BatchOp[]): Promise<number[]> {
    const versions = ops.map(() => this.nextVersion());
    await this.group.submit({
      type: 'all',
      writes: ops.map((op, i): Write =>
        op.type === 'put'
          ? { type: 'put', location: op.location, key: storedKey(op.location, op.key), value: op.value, version: versions[i]! }
          : { type: 'delete', location: op.location, key: storedKey(op.location, op.key) },
      ),
    });
    return versions;
  }

  /**
   * Writes each key's current value again under a fresh version — a delete for a key not held — as a write of its
   * own, shipped to the partition's followers and captured by change logs like any other; values and counters stay
   * as they are. Keys of partitions this node does not lead for replication are left alone. A new leader's failover
   * repair (failover-repair.ts): every copy then holds this node's value, and at a version a later repair sees.
   * Resolves once committed and held by the followers.
   */
  async reassert(keys: { location: Location; key: string }[]): Promise<void> {
    if (keys.length === 0) return;
    await this.group.submit({
      type: 'all',
      writes: keys.map(({ location, key }): Write => ({ type: 'reassert', location, key: storedKey(location, key), version: this.nextVersion() })),
    });
  }

  /**
   * Applies one write inside the group's transaction (see {@link GroupCommit}): checks its condition against what
   * the transaction sees — earlier writes of the same group included — and keeps the counters exact.
   */
  private apply(write: Write | { type: 'all'; writes: Write[] }): boolean {
    if (write.type === 'all') {
      for (const w of write.writes) this.apply(w);
      return true;
    }
    if (write.type === 'reassert') {
      if (!this.replication?.wants(write.location)) return false;
      const held = this.rawData.getEntry(write.key);
      // A copy: lmdb may hand out a buffer over its map, which the put could overwrite while reading it.
      if (held) return this.apply({ type: 'put', location: write.location, key: write.key, value: Buffer.from(held.value), version: write.version, raw: true });
      this.captured(write, { deleted: true, version: write.version });
      return true;
    }
    const before = this.data.getBinaryFast(write.key)?.length;
    if (write.ifVersion !== undefined) {
      const current = before === undefined ? 0 : (this.data.getEntry(write.key)?.version ?? 0);
      if (current !== write.ifVersion) return false;
    }
    if (write.type === 'put') {
      let after: number;
      if (write.raw) {
        void this.rawData.put(write.key, write.value, write.version); // inside the transaction: applied at once
        after = write.value.length;
      } else {
        void this.data.put(write.key, write.value, write.version);
        after = this.data.getBinaryFast(write.key)?.length ?? 0;
      }
      this.counters.count(write.location, before, after);
      this.captured(write, { deleted: false, value: write.value, version: write.version }, after);
      return true;
    }
    if (before === undefined) return false;
    void this.data.remove(write.key);
    this.counters.count(write.location, before, undefined);
    this.captured(write, { deleted: true, version: write.version ?? this.nextVersion() });
    return true;
  }

  private captured(write: Write, change: { deleted: boolean; value?: unknown; version: number }, bytes = 0): void {
    // Logs and followers take values, not stored bytes: a raw write (a migration's copy, rarely both) is decoded.
    if (write.type === 'put' && write.raw && (this.groupReplicated || this.captures.size > 0)) {
      if (!this.wanted(write.location)) return;
      change = { ...change, value: unpack(write.value) };
    }
    const replicated = this.groupReplicated;
    if (replicated && this.replication!.wants(write.location)) {
      replicated.push({ location: write.location, key: write.key[write.key.length - 1] as string, ...change, bytes });
      if (this.applying && this.groupShipping!.at(-1) !== this.applying) this.groupShipping!.push(this.applying);
    }
    if (this.captures.size === 0 || !this.groupChanges) return; // the usual case: spare building the lookup key
    const logs = this.captures.get(counterKey(write.location));
    if (!logs) return;
    const key = write.key[write.key.length - 1] as string;
    for (const log of logs) this.groupChanges.push({ log, change: { key, ...change } });
  }

  /** Whether a write to `location` goes to a change log or to followers. */
  private wanted(location: Location): boolean {
    return (this.groupReplicated !== undefined && this.replication!.wants(location)) || this.captures.has(counterKey(location));
  }

  /**
   * Starts copying a partition out: a snapshot of it as it is now, and a change log of everything committed to it
   * from then on — together, with no write in neither and none in both. `stop()` ends the capture and the snapshot.
   */
  async beginCapture(location: Location, log: ChangeLog): Promise<{ snapshot: ReadSnapshot; stop(): void }> {
    await this.group.idle();
    // From here to the end of this function nothing else runs: no group can apply in between.
    const snapshot = this.openSnapshot();
    const ck = counterKey(location);
    let logs = this.captures.get(ck);
    if (!logs) this.captures.set(ck, (logs = new Set()));
    logs.add(log);
    return {
      snapshot,
      stop: () => {
        snapshot.release();
        logs.delete(log);
        if (logs.size === 0) this.captures.delete(ck);
      },
    };
  }

  /**
   * Writes copied entries (or replayed changes) of a partition, keeping their versions: the copy a migration makes
   * on its target. Versions seen here also advance this node's clock, so later writes get larger ones.
   */
  async importEntries(location: Location, entries: { key: string; deleted?: boolean; value?: unknown; version: number }[]): Promise<void> {
    if (entries.length === 0) return;
    for (const e of entries) this.lastVersion = Math.max(this.lastVersion, e.version);
    await this.group.submit({
      type: 'all',
      writes: entries.map((e): Write =>
        e.deleted
          ? { type: 'delete', location, key: storedKey(location, e.key) }
          : { type: 'put', location, key: storedKey(location, e.key), value: e.value, version: e.version },
      ),
    });
  }

  /** Writes copied entries still in their stored form ({@link RawEntry}), keeping their versions: a migration's copy. */
  async importRaw(location: Location, entries: RawEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const e of entries) this.lastVersion = Math.max(this.lastVersion, e.version);
    await this.group.submit({
      type: 'all',
      writes: entries.map((e): Write => ({ type: 'put', location, key: storedKey(location, e.key), value: e.raw, version: e.version, raw: true })),
    });
  }

  /**
   * A follower's apply: the leader's changes, across partitions, in one transaction and in the order given, keeping
   * their versions (deletes too, so a follower that later leads hands on the same change). Submitted at once, so
   * calls commit in the order they are made.
   */
  applyReplicated(changes: ReplicatedChange[]): Promise<void> {
    for (const c of changes) this.lastVersion = Math.max(this.lastVersion, c.version);
    return this.group
      .submit({
        type: 'all',
        writes: changes.map((c): Write =>
          c.deleted
            ? { type: 'delete', location: c.location, key: storedKey(c.location, c.key), version: c.version }
            : { type: 'put', location: c.location, key: storedKey(c.location, c.key), value: c.value, version: c.version },
        ),
      })
      .then(() => undefined);
  }

  /**
   * Resolves when no transaction is between applying and committing: code that then runs synchronously reads every
   * write either committed or not yet applied (and, on a leader, shipped to its followers or not yet).
   */
  async atRest(): Promise<void> {
    await this.group.idle();
  }

  /** Resolves once every write submitted before the call has committed. */
  async settle(): Promise<void> {
    await this.group.submit({ type: 'all', writes: [] });
    await this.group.idle();
  }

  /** Deletes up to `limit` keys of a partition (within `bounds` for a range), in one transaction. Returns how many. */
  async dropKeys(location: Location, bounds: KeyBounds, limit: number): Promise<number> {
    const keys = this.keys(location, bounds, limit);
    if (keys.length === 0) return 0;
    await this.group.submit({
      type: 'all',
      writes: keys.map((key): Write => ({ type: 'delete', location, key: storedKey(location, key) })),
    });
    return keys.length;
  }

  /** Deletes every key of a partition (within `bounds` for a range), a chunk per transaction. Returns how many. */
  async dropPartition(location: Location, bounds: KeyBounds = {}): Promise<number> {
    // A hash partition's counter is exact (kept by every write): an empty one needs no look (a scale-out's target
    // starts each of its many imports with this).
    if (location.slot !== undefined && this.countersFor(location).keys === 0) return 0;
    let dropped = 0;
    for (;;) {
      const keys = this.keys(location, bounds, 1000);
      if (keys.length === 0) return dropped;
      await this.group.submit({
        type: 'all',
        writes: keys.map((key): Write => ({ type: 'delete', location, key: storedKey(location, key) })),
      });
      dropped += keys.length;
    }
  }

  /**
   * Entries of one partition (or one range namespace) with `start <= key < end`, in key order.
   * `after` resumes a previous page (exclusive).
   */
  scan(location: Location, options: ScanOptions): StoredEntry[] {
    const out: StoredEntry[] = [];
    for (const { key, value, version } of entriesIn(this.data, location, options)) {
      out.push({ key, value, version });
      if (out.length >= options.limit) break;
    }
    return out;
  }

  /**
   * As {@link scan}, values in their stored form; and at most about `maxBytes` of them (at least one entry). `done`:
   * the page ended with the entries, not at `limit` or `maxBytes` (then it is not known to be the last).
   */
  scanRaw(location: Location, options: ScanOptions & { maxBytes?: number }): Page<RawEntry> {
    return this.page(location, options, (key, raw, version): RawEntry => ({ key, raw, version }));
  }

  /**
   * As {@link scanRaw}, but each entry's digest — `[key, version, stored size, valueHash]` — instead of its value: what
   * a copy compares to learn which of its entries it already has (partition-import.ts).
   */
  digest(location: Location, options: ScanOptions & { maxBytes?: number }): Page<EntryDigest> {
    return this.page(location, options, (key, raw, version): EntryDigest => [key, version, raw.length, valueHash(raw)]);
  }

  /** Stored entries of a partition, each as `as` makes it, up to `limit` of them or about `maxBytes` stored bytes. */
  private page<T>(location: Location, options: ScanOptions & { maxBytes?: number }, as: (key: string, raw: Uint8Array, version: number) => T): Page<T> {
    const entries: T[] = [];
    let bytes = 0;
    for (const { key, value, version } of entriesIn(this.rawData, location, options)) {
      entries.push(as(key, value, version));
      bytes += value.length;
      if (entries.length >= options.limit || (options.maxBytes !== undefined && bytes >= options.maxBytes)) return { entries, done: false };
    }
    return { entries, done: true };
  }

  /** The digests of some keys' entries as they are now (see {@link digest}); absent keys are left out. */
  digestOf(location: Location, keys: string[]): EntryDigest[] {
    return this.getRaw(location, keys).map((e): EntryDigest => [e.key, e.version, e.raw.length, valueHash(e.raw)]);
  }

  /** Some keys' entries in their stored form, as a snapshot (or now) has them; absent keys are left out. */
  getRaw(location: Location, keys: string[], snapshot?: ReadSnapshot): RawEntry[] {
    const out: RawEntry[] = [];
    const options = snapshot ? { transaction: snapshot.transaction } : undefined;
    for (const key of keys) {
      const e = this.rawData.getEntry(storedKey(location, key), options as never);
      if (e) out.push({ key, raw: e.value, version: e.version ?? 0 });
    }
    return out;
  }

  /**
   * A point-in-time view of everything this node holds, for consistent scans (export). Holding it keeps LMDB from
   * reusing the pages it sees, so `release()` it promptly.
   */
  openSnapshot(): ReadSnapshot {
    const transaction = this.data.useReadTransaction();
    let released = false;
    return {
      transaction,
      release: () => {
        if (!released) transaction.done();
        released = true;
      },
    };
  }

  countersFor(location: Location): PartitionCounters {
    return this.counters.get(location);
  }

  /** Hash namespaces: the partitions (slots) of `namespace` that hold keys, from the counters. */
  hashPartitionsWithKeys(namespace: string): number[] {
    return this.counters.hashPartitionsWithKeys(namespace);
  }

  async close(): Promise<void> {
    if (this.flusher) clearInterval(this.flusher);
    await this.root.close();
  }

  private rebuildCounters(): void {
    this.counters.clear();
    // Hash keys carry their slot, so they are counted here; range namespaces are counted by `recount`, once the node
    // knows the ranges.
    for (const key of this.data.getKeys({})) {
      if (key.length !== 3) continue;
      const location: Location = { namespace: key[0] as string, partition: key[1] as number, slot: key[1] as number };
      this.counters.count(location, undefined, this.data.getBinaryFast(key)?.length ?? 0);
    }
  }

  /** Recounts one partition from disk (range namespaces: the keys in `[start, end)`). */
  recount(location: Location, bounds: KeyBounds = {}): PartitionCounters {
    const c = countIn(this.data, location, bounds);
    this.counters.set(location, c);
    return c;
  }

  /** Keys of a partition in order, without values (to choose split points). */
  keys(location: Location, bounds: KeyBounds, limit: number): string[] {
    const out: string[] = [];
    for (const key of storedKeysIn(this.data, location, bounds)) {
      out.push(key[key.length - 1] as string);
      if (out.length >= limit) break;
    }
    return out;
  }
}
