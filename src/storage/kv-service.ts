/**
 * The key-value requests a storage node answers. Every request names a namespace; the node looks the key's partition
 * up in its routing table and answers MOVED (with the current epoch and owner) for a partition it does not own, so a
 * client with an old map is corrected rather than served from the wrong place.
 *
 *   kv.get    { ns, key, epoch?, replica?, maxStalenessMs? } -> { value, version } | null
 *             (replica: true lets an in-sync follower answer if it heard from the leader within maxStalenessMs)
 *   kv.put    { ns, key, value, ifVersion?, epoch? }        -> { version }       (VERSION_CONFLICT on a failed condition)
 *   kv.del    { ns, key, ifVersion?, epoch? }               -> { deleted }
 *   kv.batch  { ns, ops: [{ op: 'put'|'del', key, value? }], epoch? } -> { versions }   (atomic; all keys on this node)
 *   kv.scan   { ns, partition?, from?, after?, to?, limit, epoch?, snapshot? } -> { entries, next }
 *   kv.snapshot.open  {} -> { id, idleMs }       a point-in-time view for consistent scans
 *   kv.snapshot.close { id } -> { released }
 */
import type { Catalog, RoutingTable, KeyPlace, KvEntry, ScanPage } from '../keyspace/index.js';
import { compareKeys } from '../partitioning/index.js';
import {
  InvalidArgumentError,
  MovedError,
  NotEnoughReplicasError,
  NotLeaderError,
  UnavailableError,
  UnknownMethodError,
  UnknownNamespaceError,
  VersionConflictError,
} from '../errors/index.js';
import type { StorageEngine, Location, BatchOp, StoredEntry } from './engine.js';
import type { SnapshotRegistry } from './snapshots.js';
import type { Connection } from '../wire/index.js';
import { checkKey, checkValue, MAX_BATCH_OPS, MAX_SCAN_LIMIT } from '../keyspace/index.js';

type Params = Record<string, unknown>;

/** Default and largest staleness a follower read may be asked to accept. */
export const DEFAULT_MAX_STALENESS_MS = 1000;
const MAX_STALENESS_MS = 60_000;


/** Thrown inside request handling when the partition is fenced; the request is answered once it is released. */
class Held {
  constructor(readonly until: Promise<void>) {}
}

export class KvService {
  private readonly fences = new Map<string, { released: Promise<void>; release(): void }>();
  /** Whether this node may lead its replicated partitions now (see LeaderStanding); unset: always. */
  private standing: { mayLead(): boolean; why(): string } | undefined;

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly snapshots: SnapshotRegistry,
    /** Counts requests per range, for splitting hot ranges (range namespaces only). */
    private readonly traffic?: { record(namespace: string, partition: number, key: string): void },
    /** This node's follower side: how recently each leader was heard (for reads from a follower). */
    private readonly replicas?: { heardWithin(leader: string, boundMs: number): boolean },
  ) {}

  /** Sets what says whether this node may lead its replicated partitions (once it has a membership lease). */
  setStanding(standing: { mayLead(): boolean; why(): string }): void {
    this.standing = standing;
  }

  /**
   * Answers one request; the RPC server passes every `kv.*` method here. With the namespace's table cached (the
   * usual case) reads answer synchronously and writes with the engine's promise alone: no extra awaits per request.
   */
  handle(method: string, raw: unknown, connection?: Connection): unknown {
    try {
      const result = this.dispatch(method, raw, connection);
      return result instanceof Promise ? result.catch((err: unknown) => this.whenReleased(err, method, raw, connection)) : result;
    } catch (err) {
      return this.whenReleased(err, method, raw, connection);
    }
  }

  /**
   * Holds every request for a partition (reads too) until `unfence`: the last moment of a move, while the target
   * takes the final changes. Held requests are then answered afresh — by MOVED if the partition has left.
   */
  fence(namespace: string, partition: number): void {
    const key = `${namespace}\u0000${partition}`;
    if (this.fences.has(key)) return;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.fences.set(key, { released, release });
  }

  unfence(namespace: string, partition: number): void {
    const key = `${namespace}\u0000${partition}`;
    this.fences.get(key)?.release();
    this.fences.delete(key);
  }

  private whenReleased(err: unknown, method: string, raw: unknown, connection?: Connection): unknown {
    if (err instanceof Held) return err.until.then(() => this.handle(method, raw, connection));
    throw err;
  }

  private dispatch(method: string, raw: unknown, connection?: Connection): unknown {
    const p = asParams(raw);
    switch (method) {
      case 'kv.get':
        return this.withTable(p, (t) => this.get(t, p));
      case 'kv.put':
        return this.withTable(p, (t) => this.put(t, p));
      case 'kv.del':
        return this.withTable(p, (t) => this.del(t, p));
      case 'kv.batch':
        return this.withTable(p, (t) => this.batch(t, p));
      case 'kv.scan':
        return this.withTable(p, (t) => this.scan(t, p));
      case 'kv.snapshot.open':
        return this.snapshots.open(connection);
      case 'kv.snapshot.close':
        return { released: this.snapshots.release(p.id) };
      default:
        throw new UnknownMethodError(`unknown method ${method}`);
    }
  }

  private get(table: RoutingTable, p: Params): KvEntry | null {
    const key = checkKey(p.key);
    const location = p.replica === true ? this.locateCopy(table, key, p.maxStalenessMs) : this.locate(table, key);
    const e = this.engine.get(location, key);
    return e ? { value: e.value, version: e.version } : null;
  }

  private put(table: RoutingTable, p: Params): Promise<{ version: number }> {
    const key = checkKey(p.key);
    const valueBytes = checkValue(p.value);
    const ifVersion = optionalVersion(p.ifVersion);
    const location = this.locate(table, key, true);
    return this.engine.put(location, key, p.value, { ifVersion, valueBytes }).then((r) => {
      if (!r.ok) throw this.conflict(location, key, ifVersion!);
      return { version: r.version };
    });
  }

  private async del(table: RoutingTable, p: Params): Promise<{ deleted: boolean }> {
    const key = checkKey(p.key);
    const ifVersion = optionalVersion(p.ifVersion);
    const location = this.locate(table, key, true);
    if (ifVersion !== undefined) {
      const current = this.engine.get(location, key);
      if (!current || current.version !== ifVersion) throw this.conflict(location, key, ifVersion);
    }
    return { deleted: await this.engine.delete(location, key, { ifVersion }) };
  }

  private async batch(table: RoutingTable, p: Params): Promise<{ versions: number[] }> {
    if (!Array.isArray(p.ops) || p.ops.length === 0 || p.ops.length > MAX_BATCH_OPS) {
      throw new InvalidArgumentError(`ops must be an array of 1 to ${MAX_BATCH_OPS} operations`);
    }
    // Validate and route everything first: a batch is applied whole or not at all.
    const ops: BatchOp[] = [];
    for (const raw of p.ops as unknown[]) {
      const op = asParams(raw);
      const key = checkKey(op.key);
      const location = this.locate(table, key, true);
      if (op.op === 'put') {
        checkValue(op.value);
        ops.push({ type: 'put', location, key, value: op.value });
      } else if (op.op === 'del') {
        ops.push({ type: 'delete', location, key });
      } else {
        throw new InvalidArgumentError(`batch op must be 'put' or 'del', not ${JSON.stringify(op.op)}`);
      }
    }
    return { versions: await this.engine.batch(ops) };
  }

  private scan(table: RoutingTable, p: Params): ScanPage {
    const limit = p.limit === undefined ? 1000 : p.limit;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) {
      throw new InvalidArgumentError(`limit must be an integer from 1 to ${MAX_SCAN_LIMIT}`);
    }
    const to = p.to === undefined || p.to === null ? null : checkKey(p.to);
    const after = p.after === undefined ? undefined : checkKey(p.after);
    const snapshot = p.snapshot === undefined ? undefined : this.snapshots.use(p.snapshot);
    if (table.scheme === 'hash') {
      const slot = p.partition;
      if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= (table.record.slotCount ?? 0)) {
        throw new InvalidArgumentError('scan of a hash namespace needs the slot as partition');
      }
      this.checkOwner(table, slot);
      const from = p.from === undefined ? undefined : checkKey(p.from);
      const location: Location = { namespace: table.name, partition: slot, slot };
      const entries = this.engine.scan(location, { start: from, end: to, after, limit, snapshot });
      return page(entries, limit, null);
    }
    // Range namespace: serve the part of [from, to) that lies in the range holding the first key asked for.
    const from = p.from === undefined || p.from === '' ? '' : checkKey(p.from);
    const first = after ?? from;
    const range = table.rangesFor(first, null)[0]!;
    this.checkOwner(table, range.id);
    const end = range.end === null ? to : to === null ? range.end : compareKeys(to, range.end) < 0 ? to : range.end;
    const location: Location = { namespace: table.name, partition: range.id };
    const start = compareKeys(from, range.start) < 0 ? range.start : from;
    this.traffic?.record(table.name, range.id, start); // a page is one request
    const entries = this.engine.scan(location, { start, end, after, limit, snapshot });
    const rangeDone = range.end === null || (to !== null && compareKeys(to, range.end) <= 0) ? null : { from: range.end };
    return page(entries, limit, rangeDone);
  }

  /**
   * Runs `work` with the routing table the request is checked against: the cached one, or — when the namespace is
   * unknown here or the caller has seen a newer epoch — the coordinator's, read first.
   */
  private withTable<R>(p: Params, work: (table: RoutingTable) => R): R | Promise<Awaited<R>> {
    const ns = p.ns;
    if (typeof ns !== 'string') throw new InvalidArgumentError('ns (the namespace) must be a string');
    const cached = this.catalog.find(ns);
    const epoch = typeof p.epoch === 'number' ? p.epoch : 0;
    if (cached && cached.epoch >= epoch) return work(cached);
    return this.catalog.refresh(ns).then((table) => {
      if (!table) throw new UnknownNamespaceError(`namespace ${JSON.stringify(ns)} does not exist`, { details: { namespace: ns } });
      return work(table) as Awaited<R>;
    });
  }

  /**
   * Where a key of this namespace is stored, after checking this node owns its partition — and, for a write, that
   * enough copies are in sync to acknowledge it.
   */
  private locate(table: RoutingTable, key: string, write = false): Location {
    const place: KeyPlace = table.place(key);
    this.checkOwner(table, place.partition);
    if (write && table.copies > 1) {
      const inSync = 1 + table.followersOf(place.partition).length;
      if (inSync < table.minInSync) {
        throw new NotEnoughReplicasError(`${table.name}/${place.partition} has ${inSync} in-sync copies; a write needs ${table.minInSync}`, {
          details: { namespace: table.name, partition: place.partition, inSync, needed: table.minInSync },
        });
      }
    }
    if (place.slot !== undefined) return { namespace: table.name, partition: place.partition, slot: place.slot };
    this.traffic?.record(table.name, place.partition, key);
    return { namespace: table.name, partition: place.partition };
  }

  /** A follower read: this node must hold an in-sync copy and have heard from the leader within the bound. */
  private locateCopy(table: RoutingTable, key: string, rawBound: unknown): Location {
    const place: KeyPlace = table.place(key);
    const bound = rawBound === undefined ? DEFAULT_MAX_STALENESS_MS : rawBound;
    if (typeof bound !== 'number' || !Number.isFinite(bound) || bound < 0 || bound > MAX_STALENESS_MS) {
      throw new InvalidArgumentError(`maxStalenessMs must be a number from 0 to ${MAX_STALENESS_MS}`);
    }
    const leader = table.ownerOf(place.partition);
    if (leader === this.nodeId) return this.locate(table, key);
    if (!table.followersOf(place.partition).includes(this.nodeId)) this.checkOwner(table, place.partition); // MOVED
    if (!leader || !this.replicas?.heardWithin(leader, bound)) {
      throw new UnavailableError(`${this.nodeId}'s copy of ${table.name}/${place.partition} may be more than ${bound} ms stale`, {
        details: { namespace: table.name, partition: place.partition, leader: leader ?? null },
      });
    }
    return place.slot === undefined ? { namespace: table.name, partition: place.partition } : { namespace: table.name, partition: place.partition, slot: place.slot };
  }

  private checkOwner(table: RoutingTable, partition: number): void {
    const fence = this.fences.size > 0 ? this.fences.get(`${table.name}\u0000${partition}`) : undefined;
    if (fence) throw new Held(fence.released);
    const owner = table.ownerOf(partition);
    if (owner !== this.nodeId) {
      throw new MovedError(`${table.name} partition ${partition} is owned by ${owner ?? 'nobody'}`, {
        details: { namespace: table.name, partition, epoch: table.epoch, owner: owner ?? null },
      });
    }
    // A replicated partition may have a new leader once this node's lease lapsed: serve nothing stale meanwhile.
    if (table.copies > 1 && this.standing && !this.standing.mayLead()) {
      throw new NotLeaderError(`${this.nodeId} may no longer lead ${table.name}/${partition}: ${this.standing.why()}`, {
        details: { namespace: table.name, partition, node: this.nodeId },
      });
    }
  }

  private conflict(location: Location, key: string, expected: number): VersionConflictError {
    const actual = this.engine.get(location, key)?.version ?? 0;
    return new VersionConflictError(`${key}: expected version ${expected}, found ${actual}`, {
      details: { key, expected, actual },
    });
  }
}

function page(entries: StoredEntry[], limit: number, whenDone: { from: string } | null): ScanPage {
  const full = entries.length >= limit;
  return {
    entries: entries.map((e) => ({ key: e.key, value: e.value, version: e.version })),
    next: full ? { after: entries[entries.length - 1]!.key } : whenDone,
  };
}

function asParams(raw: unknown): Params {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError('request parameters must be an object');
  }
  return raw as Params;
}

function optionalVersion(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError('ifVersion must be a non-negative integer (0: the key must not exist)');
  }
  return v;
}
