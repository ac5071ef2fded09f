/**
 * The embedded coordinator's state machine, in one process: ordered keys, one global revision, leases with
 * millisecond TTLs, and prefix watches backed by an event history so `fromRevision` can replay.
 *
 * Every change (a put, a compare-and-set that succeeded, a delete of a present key, each key an expiring lease
 * takes with it) bumps the revision by exactly one and records exactly one event, so the history is contiguous:
 * the event of revision r sits at index `r - history[0].revision`.
 *
 * With a file, a mutation's promise resolves only once a save that includes it is durable, and watchers see an
 * event only after that too: no writer or watcher acts on a revision that a crash would take back (and later
 * reuse). Reads (`get`, `list`) do see a change at once, durable or not; a save rewrites the whole state, which
 * suits cluster metadata (kilobytes to a few megabytes), not bulk data.
 *
 * @example
 * ```ts
 * const store = await MemoryStore.open({ path: '/var/lib/shardflow/coordinator.json' });
 * const lease = store.grantLease(1000);
 * await store.put('/shardflow/members/n1', '{}', lease.id);
 * const watch = store.watch('/shardflow/members/', (e) => console.log(e.type, e.key));
 * watch.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { CoordinatorError, InvalidArgumentError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import type { CasResult, Entry, WatchEvent } from './coordinator.js';
import { compareKeys, lowerBound } from './key-order.js';
import { SnapshotFile, type Snapshot } from './snapshot-file.js';
import { checkKey, checkPrefix, checkRevision, checkTtl, checkValue } from './validate.js';

/**
 * Most bytes of event values written with each save. Every save rewrites the file, and events carry whole values
 * (a routing record is tens of KiB), so an unbounded history made each save megabytes and each write tens of ms.
 * A watcher that needs older events re-lists instead (see Coordinator.watch).
 */
const PERSISTED_HISTORY_BYTES = 256 * 1024;

/** The newest events whose values add up to at most `budget` bytes. */
function newestWithin(events: WatchEvent[], budget: number): WatchEvent[] {
  let bytes = 0;
  let i = events.length;
  while (i > 0) {
    bytes += (events[i - 1]!.value?.length ?? 0) + events[i - 1]!.key.length;
    if (bytes > budget) break;
    i--;
  }
  return events.slice(i);
}

export interface MemoryStoreOptions {
  /** File that keeps keys and revision across restarts; without one the store lives in memory only. */
  path?: string;
  /** Events kept in memory for watches that start from an older revision (default 10 000). */
  historyLimit?: number;
  /** Newest events written to the file, for watchers resuming across a restart (default 1 000). */
  persistedHistory?: number;
  logger?: Logger;
}

interface Stored {
  value: string;
  revision: number;
  leaseId?: string;
}

interface StoredLease {
  readonly ttlMs: number;
  readonly keys: Set<string>;
  readonly timer: NodeJS.Timeout;
}

interface Subscriber {
  readonly prefix: string;
  /** Events below this revision are not for this watch (it asked to start in the future). */
  readonly from: number;
  readonly listener: (event: WatchEvent) => void;
}

export class MemoryStore {
  private readonly entries = new Map<string, Stored>();
  /** Keys in byte order (what etcd uses), for prefix scans. */
  private readonly sorted: string[] = [];
  private rev = 0;
  private history: WatchEvent[] = [];
  /** Highest revision whose event watchers have been given. */
  private published = 0;
  private readonly leases = new Map<string, StoredLease>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly file: SnapshotFile | undefined;
  private readonly historyLimit: number;
  private readonly persistedHistory: number;
  private readonly log: Logger;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private storeId = randomBytes(8).toString('hex');

  private constructor(options: MemoryStoreOptions) {
    this.historyLimit = options.historyLimit ?? 10_000;
    this.persistedHistory = Math.min(options.persistedHistory ?? 1_000, this.historyLimit);
    this.log = options.logger ?? createLogger('coordinator');
    this.file = options.path === undefined ? undefined : new SnapshotFile(options.path, () => this.snapshot());
  }

  /**
   * Opens a store, loading its file if there is one. Keys that were attached to a lease are dropped on load (leases
   * do not survive a restart; their owners register again), each with a delete event later watchers can replay.
   */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    const store = new MemoryStore(options);
    const snapshot = await store.file?.load();
    if (snapshot) await store.restore(snapshot);
    return store;
  }

  /**
   * This store's identity, kept in its file. A memory-only store gets a new one each start: its revisions begin
   * again at 0, so a watcher resuming "from revision r" of the old store must be told it cannot.
   */
  get id(): string {
    return this.storeId;
  }

  /** The global revision: that of the newest change. */
  get revision(): number {
    return this.rev;
  }

  /** Leases now alive. */
  get leaseCount(): number {
    return this.leases.size;
  }

  get(key: string): Entry | undefined {
    checkKey(key);
    const stored = this.entries.get(key);
    return stored && toEntry(key, stored);
  }

  /** Every key starting with `prefix`, in key order. */
  list(prefix: string): Entry[] {
    checkPrefix(prefix);
    const out: Entry[] = [];
    for (let i = lowerBound(this.sorted, prefix); i < this.sorted.length; i++) {
      const key = this.sorted[i]!;
      if (!key.startsWith(prefix)) break;
      out.push(toEntry(key, this.entries.get(key)!));
    }
    return out;
  }

  put(key: string, value: string, leaseId?: string): Promise<number> {
    this.checkOpen();
    checkKey(key);
    checkValue(value);
    this.checkLease(leaseId);
    return this.commit(this.write(key, value, leaseId));
  }

  /** Writes only if the key's revision is `expected` (0: only if absent). */
  compareAndSet(key: string, expected: number, value: string, leaseId?: string): Promise<CasResult> {
    this.checkOpen();
    checkKey(key);
    checkRevision(expected, 'expectedRevision');
    checkValue(value);
    this.checkLease(leaseId);
    const current = this.entries.get(key);
    if ((current?.revision ?? 0) !== expected) {
      return Promise.resolve(current ? { ok: false, current: toEntry(key, current) } : { ok: false });
    }
    return this.commit(this.write(key, value, leaseId)).then((revision) => ({ ok: true, revision }));
  }

  delete(key: string): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    if (!this.entries.has(key)) return Promise.resolve(false);
    return this.commit(this.remove(key)).then(() => true);
  }

  /** Deletes only if the key's revision is `expected`. */
  compareAndDelete(key: string, expected: number): Promise<boolean> {
    this.checkOpen();
    checkKey(key);
    checkRevision(expected, 'expectedRevision');
    const current = this.entries.get(key);
    if (!current || current.revision !== expected) return Promise.resolve(false);
    return this.commit(this.remove(key)).then(() => true);
  }

  /**
   * Calls `listener` for every published change under `prefix`, synchronously and in revision order; with
   * `fromRevision`, first replays the history from there. Throws {@link InvalidArgumentError} (details
   * `{ compactRevision }`) when that part of the history is gone. Returns the revision the watch is complete up to
   * (the replay's end) and the function that stops it.
   */
  watch(
    prefix: string,
    listener: (event: WatchEvent) => void,
    fromRevision?: number,
  ): { revision: number; close: () => void } {
    this.checkOpen();
    checkPrefix(prefix);
    if (fromRevision !== undefined) {
      if (checkRevision(fromRevision, 'fromRevision') === 0) {
        throw new InvalidArgumentError('fromRevision must be at least 1');
      }
      const oldest = this.history[0]?.revision ?? this.rev + 1;
      if (fromRevision < oldest && fromRevision <= this.rev) {
        throw new InvalidArgumentError(`revision ${fromRevision} has been compacted`, {
          details: { fromRevision, compactRevision: oldest - 1 },
        });
      }
      for (let r = Math.max(fromRevision, oldest); r <= this.published; r++) {
        const event = this.history[r - oldest]!;
        if (event.key.startsWith(prefix)) this.deliver(listener, event);
      }
    }
    const subscriber: Subscriber = { prefix, from: fromRevision ?? 0, listener };
    this.subscribers.add(subscriber);
    return { revision: this.published, close: () => this.subscribers.delete(subscriber) };
  }

  /** Grants a lease; it expires `ttlMs` after the grant or the last {@link keepAlive}. */
  grantLease(ttlMs: number): { id: string; ttlMs: number } {
    this.checkOpen();
    const ttl = checkTtl(ttlMs);
    // Random ids: a client still holding an id from before a restart must find it unknown, not someone else's.
    const id = randomBytes(8).toString('hex');
    const timer = setTimeout(() => this.expire(id), ttl);
    timer.unref();
    this.leases.set(id, { ttlMs: ttl, keys: new Set(), timer });
    return { id, ttlMs: ttl };
  }

  /** Restarts the lease's clock; false when the lease is unknown (expired, revoked, or from before a restart). */
  keepAlive(leaseId: string): boolean {
    const lease = this.leases.get(leaseId);
    if (!lease || this.closed) return false;
    lease.timer.refresh();
    return true;
  }

  /** Ends a lease now, deleting its keys; false when it was unknown. */
  async revokeLease(leaseId: string): Promise<boolean> {
    this.checkOpen();
    const done = this.endLease(leaseId);
    if (!done) return false;
    await done;
    return true;
  }

  /** Stops lease timers and waits for pending saves. The store cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.leases.values()) clearTimeout(lease.timer);
    this.leases.clear();
    clearTimeout(this.retryTimer);
    this.subscribers.clear();
    await this.file?.flush();
  }

  private checkOpen(): void {
    if (this.closed) throw new CoordinatorError('the coordinator store is closed');
  }

  private checkLease(leaseId: string | undefined): void {
    if (leaseId !== undefined && !this.leases.has(leaseId)) {
      throw new InvalidArgumentError(`lease ${leaseId} not found (expired or revoked)`, { details: { leaseId } });
    }
  }

  /** Applies a put; returns its revision. Like etcd, a put without a lease detaches the key from its old lease. */
  private write(key: string, value: string, leaseId: string | undefined): number {
    const old = this.entries.get(key);
    if (old?.leaseId !== undefined && old.leaseId !== leaseId) this.leases.get(old.leaseId)?.keys.delete(key);
    if (!old) this.sorted.splice(lowerBound(this.sorted, key), 0, key);
    const revision = ++this.rev;
    this.entries.set(key, leaseId === undefined ? { value, revision } : { value, revision, leaseId });
    if (leaseId !== undefined) this.leases.get(leaseId)!.keys.add(key);
    this.record({ type: 'put', key, value, revision });
    return revision;
  }

  private remove(key: string): number {
    const old = this.entries.get(key)!;
    if (old.leaseId !== undefined) this.leases.get(old.leaseId)?.keys.delete(key);
    this.entries.delete(key);
    this.sorted.splice(lowerBound(this.sorted, key), 1);
    const revision = ++this.rev;
    this.record({ type: 'delete', key, revision });
    return revision;
  }

  private record(event: WatchEvent): void {
    this.history.push(event);
    // Trim in chunks of 1/8: shifting one element per change would make every write O(history).
    if (this.history.length > this.historyLimit + Math.ceil(this.historyLimit / 8)) {
      this.history = this.history.slice(-this.historyLimit);
    }
  }

  /** Makes `revision` durable (when there is a file), then publishes it; resolves with `revision`. */
  private async commit(revision: number): Promise<number> {
    if (!this.file) {
      this.publish(revision);
      return revision;
    }
    try {
      this.publish(await this.file.requestSave());
    } catch (err) {
      this.log.error('saving the coordinator state failed; retrying in 1 s', { error: err });
      // The change stays applied in memory; a later save writes it and publishes its events.
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.closed && this.published < this.rev) this.commit(this.rev).catch(() => {});
      }, 1000).unref();
      throw err;
    }
    return revision;
  }

  private publish(upTo: number): void {
    if (upTo <= this.published) return;
    const oldest = this.history[0]?.revision ?? upTo + 1;
    const from = this.published + 1;
    this.published = upTo;
    for (let r = Math.max(from, oldest); r <= upTo; r++) {
      const event = this.history[r - oldest]!;
      for (const s of this.subscribers) {
        if (event.revision >= s.from && event.key.startsWith(s.prefix)) this.deliver(s.listener, event);
      }
    }
  }

  private deliver(listener: (event: WatchEvent) => void, event: WatchEvent): void {
    try {
      listener(event);
    } catch (err) {
      this.log.error('watch listener failed', { key: event.key, error: err });
    }
  }

  private expire(leaseId: string): void {
    if (this.closed) return;
    const done = this.endLease(leaseId);
    this.log.debug('lease expired', { leaseId });
    done?.catch(() => {}); // A failed save is logged and retried by commit().
  }

  private endLease(leaseId: string): Promise<number> | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    clearTimeout(lease.timer);
    this.leases.delete(leaseId);
    let last = this.rev;
    for (const key of [...lease.keys].sort(compareKeys)) last = this.remove(key);
    return this.commit(last);
  }

  private snapshot(): Snapshot {
    return {
      format: 1,
      storeId: this.storeId,
      revision: this.rev,
      entries: this.sorted.map((k) => {
        const e = this.entries.get(k)!;
        return [k, e.value, e.revision, e.leaseId ?? null];
      }),
      history: newestWithin(this.history.slice(-this.persistedHistory), PERSISTED_HISTORY_BYTES),
    };
  }

  private async restore(snapshot: Snapshot): Promise<void> {
    this.storeId = snapshot.storeId;
    this.rev = snapshot.revision;
    // The history must end at the revision and have no gap, or replays would be wrong; without it they are refused.
    const h = snapshot.history;
    const contiguous = h.every((e, i) => e.revision === this.rev - h.length + 1 + i);
    this.history = contiguous ? h : [];
    const orphans: string[] = [];
    for (const [key, value, revision, leaseId] of snapshot.entries) {
      this.sorted.push(key);
      this.entries.set(key, { value, revision });
      if (leaseId !== null) orphans.push(key);
    }
    this.sorted.sort(compareKeys);
    this.published = this.rev;
    if (orphans.length === 0) return;
    let last = this.rev;
    for (const key of orphans) last = this.remove(key);
    this.log.info('dropped keys of leases from before the restart', { count: orphans.length });
    await this.commit(last);
  }
}

function toEntry(key: string, stored: Stored): Entry {
  const entry: Entry = { key, value: stored.value, revision: stored.revision };
  if (stored.leaseId !== undefined) entry.leaseId = stored.leaseId;
  return entry;
}
