/**
 * A storage node's part in moving a partition (see docs/ARCHITECTURE.md, "The path of a migration"):
 *
 *   source  mig.export.begin  { job, ns, partition }          snapshot + change capture, together -> { keys, bytes }
 *           mig.export.page   { job, partition, after?, limit?, entries from the snapshot, in key order (with `raw`: values
 *                               raw? }                        as stored, copied without decoding — see RawEntry)
 *           mig.export.digest { job, partition, after?,       the snapshot's entries without values (EntryDigest),
 *                               limit? }                      for a target that holds an older copy to compare
 *           mig.export.get    { job, partition, keys }        those keys' entries from the snapshot, as stored
 *           mig.export.changes{ job, partition, afterSeq }    committed changes since, in order
 *           mig.export.fence  { job, partition }              hold the partition's requests -> { lastSeq }
 *           mig.export.end    { job, partition }              stop capturing, release held requests
 *   target  mig.import        { job, ns, partition, source,   pull snapshot and changes from the source -> { lastSeq }
 *                               bytes?, bytesPerKey?,         (bytes: the partition's size at the source)
 *                               bytesPerSec? }
 *           mig.import.progress{ job, bytesPerSec? }          -> { copiedKeys, copiedBytes } of the job; sets its rate
 *           mig.import.catchup{ job, partition, untilSeq }    pull changes up to untilSeq
 *           mig.import.abort  { job, partition }              drop what was copied
 *           mig.import.finish { job, partition }              the partition is this node's now: forget the import
 *
 * A job may move several partitions of one namespace between the same two nodes (a batch): one move entry per
 * partition, all naming the job, so the whole batch switches with one compare-and-set.
 *
 * Every step checks the routing record's migration entry names this job, so a step from a driver that lost (an
 * abort already recorded) does nothing. While it exports, the source checks once a second that the job's record
 * (on the driver's lease) still exists; when it does not, the driver is dead and the source rolls the move back.
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { InvalidArgumentError, UnavailableError, UnknownMethodError } from '../errors/index.js';
import { Peer, splitAddress, type Connection } from '../wire/index.js';
import type { Coordinator } from '../coordination/coordinator.js';
import { migrationJobKey } from '../coordination/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { DeferredDrops } from './deferred-drops.js';
import { StaleCopies } from './stale-copies.js';
import { MemoryChangeLog, type Change } from './change-log.js';
import type { Location, RawEntry, ReadSnapshot, StorageEngine, StoredEntry } from './engine.js';
import type { KvService } from './kv-service.js';
import { DIGEST_BYTES, DIGEST_PAGE, PAGE, PAGE_BYTES, checkLive, importSnapshot, setRate, type Import } from './partition-import.js';
import { locationOf } from './location.js';
import { failpoint } from '../util/failpoints.js';

/** Longest a partition's requests are held waiting for a cutover before the source aborts the move. */
const FENCE_LIMIT_MS = 10_000;
/** How often a source checks that the driver of a move it exports is alive. */
/** How old a move entry with no export here must be before the sweep may roll it back. */
const ORPHAN_GRACE_MS = 5000;
const DRIVER_CHECK_MS = 1000;

interface Export {
  job: string;
  ns: string;
  partition: number;
  location: Location;
  bounds: { start?: string; end?: string | null };
  log: MemoryChangeLog;
  snapshot: ReadSnapshot;
  stop(): void;
  watchdog: NodeJS.Timeout;
}

type Params = Record<string, unknown>;

export class MigrationService {
  private readonly exports = new Map<string, Export>();
  private readonly imports = new Map<string, Import>();
  private readonly peers = new Map<string, { peer: Peer; users: number }>();
  private readonly driverChecks = new Map<string, { at: number; alive: Promise<boolean> }>();

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly kv: KvService,
    private readonly secret: Uint8Array,
    private readonly coordinator: Coordinator,
    /** Data of partitions this node no longer holds, kept for a copy coming back (see stale-copies.ts). */
    private readonly stale: StaleCopies = new StaleCopies(),
  ) {
    this.log = createLogger(`storage:${nodeId}`);
    this.drops = new DeferredDrops(
      engine,
      (d) => this.foreign(d.location.namespace, d.location.partition, d.bounds),
      () => this.exports.size > 0,
      this.log,
    );
  }

  private readonly log: Logger;
  /**
   * What copies into this node wrote, since it started: entries copied (or fetched), found here already, deleted —
   * in all and per namespace.
   */
  readonly imported: ImportCounts & { namespaces: Record<string, ImportCounts> } = { copiedKeys: 0, keptKeys: 0, deletedKeys: 0, namespaces: {} };

  private readonly drops: DeferredDrops;
  /** Partitions this node followed, per namespace, as of the last table seen (see dropUnfollowed). */
  private readonly followed = new Map<string, Set<number>>();
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * Starts the sweep for moves of this node's partitions that have no export here (a job whose driver died before
   * this partition's turn came): once the job's record is gone, they are rolled back like the others.
   */
  start(intervalMs = 2000): void {
    this.sweeper = setInterval(() => void this.sweep(), intervalMs);
    this.sweeper.unref();
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  private async sweep(): Promise<void> {
    for (const name of this.catalog.names()) {
      const table = this.catalog.find(name);
      for (const [key, entry] of Object.entries(table?.record.migrations ?? {})) {
        const partition = Number(key);
        if (table!.ownerOf(partition) !== this.nodeId || this.exports.has(`${entry.job}#${partition}`)) continue;
        // A young entry is left alone: `status` shows it stuck for a while first, and a slow driver gets its turn.
        if (Date.now() - Date.parse(entry.startedAt) < ORPHAN_GRACE_MS) continue;
        if (await this.driverAlive(entry.job)) continue;
        await this.catalog
          .update(name, (t) => t.withoutMoves(entry.job, [partition]))
          .catch(() => undefined);
      }
    }
  }

  /** Whether none of these keys is ours now, nor on its way here. */
  private foreign(ns: string, partition: number, bounds: { start?: string; end?: string | null }): boolean {
    const table = this.catalog.find(ns);
    if (!table) return true;
    if (table.scheme === 'hash') return !table.holds(partition, this.nodeId) && !this.receiving(ns, partition);
    const covering = table.rangesFor(bounds.start ?? '', bounds.end ?? null);
    return covering.every((r) => !table.holds(r.id, this.nodeId) && !this.receiving(ns, r.id));
  }

  async handle(method: string, raw: unknown, _connection?: Connection): Promise<unknown> {
    if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError('parameters must be an object');
    const p = raw as Params;
    const job = p.job;
    if (typeof job !== 'string' || job.length === 0 || job.length > 100) throw new InvalidArgumentError('job must be a job id');
    if (method === 'mig.import.progress') return this.progress(job, p);
    if (typeof p.partition !== 'number' || !Number.isInteger(p.partition) || p.partition < 0) {
      throw new InvalidArgumentError('partition must be a partition number');
    }
    // One job may move several partitions (a batch); each has its own export and import.
    const task = `${job}#${p.partition}`;
    switch (method) {
      case 'mig.export.begin':
        return this.beginExport(task, job, p);
      case 'mig.export.page': {
        const e = this.exportOf(task);
        const after = typeof p.after === 'string' ? p.after : undefined;
        const limit = typeof p.limit === 'number' && Number.isInteger(p.limit) && p.limit >= 1 && p.limit <= PAGE ? p.limit : PAGE;
        const options = { ...e.bounds, after, limit, snapshot: e.snapshot };
        let entries: (RawEntry | StoredEntry)[];
        let done: boolean;
        if (p.raw === true) {
          ({ entries, done } = this.engine.scanRaw(e.location, { ...options, maxBytes: PAGE_BYTES }));
        } else {
          entries = this.engine.scan(e.location, options);
          done = entries.length < limit;
        }
        // The copy is taken: let the snapshot go now (the change log goes on), so LMDB can reuse pages again.
        if (done) e.snapshot.release();
        return { entries, done };
      }
      case 'mig.export.digest': {
        const e = this.exportOf(task);
        const after = typeof p.after === 'string' ? p.after : undefined;
        const limit = typeof p.limit === 'number' && Number.isInteger(p.limit) && p.limit >= 1 && p.limit <= DIGEST_PAGE ? p.limit : DIGEST_PAGE;
        return this.engine.digest(e.location, { ...e.bounds, after, limit, snapshot: e.snapshot, maxBytes: DIGEST_BYTES });
      }
      case 'mig.export.get': {
        const e = this.exportOf(task);
        const keys = p.keys;
        if (!Array.isArray(keys) || keys.length > PAGE || !keys.every((k) => typeof k === 'string')) {
          throw new InvalidArgumentError(`keys must be an array of at most ${PAGE} strings`);
        }
        return { entries: this.engine.getRaw(e.location, keys as string[], e.snapshot) };
      }
      case 'mig.export.changes': {
        const e = this.exportOf(task);
        // The target asks for changes once it has the snapshot's part (copied or compared): let the snapshot go, so
        // LMDB can reuse pages and a batch of many partitions does not hold a reader slot for each (maxreaders).
        e.snapshot.release();
        const afterSeq = typeof p.afterSeq === 'number' ? p.afterSeq : 0;
        const changes = e.log.read(afterSeq, PAGE);
        e.log.release(afterSeq);
        return { changes, lastSeq: e.log.lastSeq };
      }
      case 'mig.export.fence': {
        const e = this.exportOf(task);
        this.kv.fence(e.ns, e.partition);
        failpoint('mig.export.fence', this.nodeId); // fault tests: the source dies holding the partition's writes
        // A driver that dies now must not leave the partition held: past the limit the source aborts the move itself
        // (one CAS that clears the entry; if the cutover won first, it changes nothing).
        setTimeout(() => void this.abandon(task, e), FENCE_LIMIT_MS).unref();
        await this.engine.settle(); // writes accepted before the fence are committed, so in the log
        return { lastSeq: e.log.lastSeq };
      }
      case 'mig.export.end':
        return this.endExport(task);
      case 'mig.import':
        return this.startImport(task, job, p);
      case 'mig.import.catchup': {
        const i = this.importOf(task);
        const untilSeq = typeof p.untilSeq === 'number' ? p.untilSeq : Number.POSITIVE_INFINITY;
        await this.pullChanges(i, untilSeq);
        return { lastSeq: i.lastSeq };
      }
      case 'mig.import.abort':
        return this.abortImport(task);
      case 'mig.import.finish':
        failpoint('mig.import.finish', this.nodeId); // fault tests: the target dies just after the owner switch
        this.finishImport(task);
        return { ok: true };
      default:
        throw new UnknownMethodError(`unknown method ${method}`);
    }
  }

  /**
   * Follows the routing record: a move whose entry is gone has ended — switched (the owner changed) or aborted — so
   * its export stops and releases held requests, and its import is kept (now owned) or dropped. This finishes the
   * job when its driver died after the decision.
   */
  onTable(table: RoutingTable): void {
    this.dropUnfollowed(table);
    for (const [task, e] of this.exports) {
      if (e.ns === table.name && table.migrationOf(e.partition)?.job !== e.job) void this.endExport(task);
    }
    for (const [task, i] of this.imports) {
      if (i.ns !== table.name || table.migrationOf(i.partition)?.job === i.job) continue;
      // A move made this node the owner; a copy made it a follower.
      if (table.holds(i.partition, this.nodeId)) this.finishImport(task);
      else void this.abortImport(task);
    }
  }

  /**
   * Partitions this node followed and no longer holds — its follower copy moved elsewhere, or its leader dropped it
   * as fallen behind — have their data dropped (in the background, re-checked before each chunk), unless the
   * partition is short of copies: then it is kept for the copy that comes back to compare with (stale-copies.ts),
   * and dropped once the partition has its copies elsewhere.
   */
  private dropUnfollowed(table: RoutingTable): void {
    const drop = this.stale.onTable(table, this.nodeId, (p) => this.receiving(table.name, p));
    if (table.copies > 1 || this.followed.has(table.name)) {
      const now = new Set(table.partitionsFollowedBy(this.nodeId));
      const before = this.followed.get(table.name);
      this.followed.set(table.name, now);
      for (const p of before ?? []) {
        if (now.has(p) || table.holds(p, this.nodeId) || this.receiving(table.name, p)) continue;
        if (table.scheme === 'hash') {
          if (StaleCopies.worthKeeping(table, p)) this.stale.keep(table.name, p);
          else drop.push({ partition: p, bounds: {} });
          continue;
        }
        // A range goes by its bounds today; one merged away meanwhile is left (its keys are in a range this node may
        // hold; a restart drops what it does not).
        const r = table.range(p);
        if (!r) continue;
        if (StaleCopies.worthKeeping(table, p)) this.stale.keep(table.name, p, { start: r.start, end: r.end });
        else drop.push({ partition: p, bounds: { start: r.start, end: r.end } });
      }
    }
    for (const d of drop) {
      this.drops.add({ location: locationOf(table, d.partition), bounds: d.bounds });
    }
    if (drop.length > 0) this.drops.kick();
  }

  /** Copy progress of every partition of a job this node imports; also sets the job's copy rate. */
  private progress(job: string, p: Params): { copiedKeys: number; copiedBytes: number } {
    const rate = typeof p.bytesPerSec === 'number' ? p.bytesPerSec : undefined;
    let copiedKeys = 0;
    let copiedBytes = 0;
    for (const i of this.imports.values()) {
      if (i.job !== job) continue;
      setRate(i, rate);
      copiedKeys += i.copiedKeys;
      copiedBytes += i.copiedKeys * i.bytesPerKey;
    }
    return { copiedKeys, copiedBytes: Math.round(copiedBytes) };
  }

  /** The driver's job record lives on its lease: gone means the driver died, and the move is rolled back. */
  private async checkDriver(task: string, e: Export): Promise<void> {
    if (this.exports.get(task) !== e) return;
    if (!(await this.driverAlive(e.job))) await this.abandon(task, e);
  }

  /** Whether a job's record (on its driver's lease) exists. A batch has many exports under one job: one read per job per round serves them all. */
  private driverAlive(job: string): Promise<boolean> {
    let check = this.driverChecks.get(job);
    if (!check || Date.now() - check.at > DRIVER_CHECK_MS / 2) {
      const alive = this.coordinator
        .get(migrationJobKey(job))
        .then((r) => r !== undefined)
        .catch(() => true); // cannot tell: ask again next round
      const entry = { at: Date.now(), alive };
      check = entry;
      this.driverChecks.set(job, entry);
      void alive.then(() => setTimeout(() => this.driverChecks.get(job) === entry && this.driverChecks.delete(job), DRIVER_CHECK_MS).unref());
    }
    return check.alive;
  }

  private async abandon(task: string, e: Export): Promise<void> {
    if (this.exports.get(task) !== e) return;
    await this.catalog
      .update(e.ns, (t) => t.withoutMoves(e.job, [e.partition]))
      .catch(() => undefined);
    await this.endExport(task);
  }

  /** Partitions this node is receiving (so its cleanup leaves them alone). */
  receiving(ns: string, partition: number): boolean {
    for (const i of this.imports.values()) if (i.ns === ns && i.partition === partition) return true;
    return false;
  }

  /** The namespace's table, as cached when it already shows this job's move (the usual case), else fresh. */
  private async table(p: Params, job: string): Promise<{ table: RoutingTable; partition: number }> {
    if (typeof p.ns !== 'string' || typeof p.partition !== 'number') throw new InvalidArgumentError('ns and partition are required');
    const cached = this.catalog.find(p.ns);
    if (cached?.migrationOf(p.partition)?.job === job) return { table: cached, partition: p.partition };
    const table = await this.catalog.refresh(p.ns);
    if (!table) throw new InvalidArgumentError(`no namespace ${p.ns}`);
    return { table, partition: p.partition };
  }

  private place(table: RoutingTable, partition: number): { location: Location; bounds: { start?: string; end?: string | null } } {
    if (table.scheme === 'hash') return { location: { namespace: table.name, partition, slot: partition }, bounds: {} };
    const r = table.range(partition);
    if (!r) throw new InvalidArgumentError(`${table.name} has no range ${partition}`);
    return { location: { namespace: table.name, partition }, bounds: { start: r.start, end: r.end } };
  }

  private checkJob(table: RoutingTable, partition: number, job: string): void {
    if (table.migrationOf(partition)?.job !== job) {
      throw new UnavailableError(`${table.name}/${partition} has no move under job ${job} (aborted or finished)`);
    }
  }

  private async beginExport(task: string, job: string, p: Params): Promise<unknown> {
    if (this.exports.has(task)) return { ok: true };
    const { table, partition } = await this.table(p, job);
    this.checkJob(table, partition, job);
    if (table.ownerOf(partition) !== this.nodeId) throw new UnavailableError(`${this.nodeId} does not own ${table.name}/${partition}`);
    const { location, bounds } = this.place(table, partition);
    const log = new MemoryChangeLog();
    const capture = await this.engine.beginCapture(location, log);
    const size = this.engine.countersFor(location);
    const e: Export = { job, ns: table.name, partition, location, bounds, log, snapshot: capture.snapshot, stop: capture.stop, watchdog: undefined! };
    e.watchdog = setInterval(() => void this.checkDriver(task, e), DRIVER_CHECK_MS);
    e.watchdog.unref();
    this.exports.set(task, e);
    return { ok: true, keys: size.keys, bytes: size.bytes };
  }

  private async endExport(task: string): Promise<unknown> {
    const e = this.exports.get(task);
    if (!e) return { ended: false };
    this.exports.delete(task);
    clearInterval(e.watchdog);
    e.stop();
    // Learn the outcome before answering held requests: a moved partition answers them MOVED. The cached table
    // will do if it no longer shows this move (it is then newer than the decision); otherwise ask.
    const cached = this.catalog.find(e.ns);
    const table = cached && cached.migrationOf(e.partition)?.job !== e.job ? cached : await this.catalog.refresh(e.ns);
    this.kv.unfence(e.ns, e.partition);
    const moved = table !== undefined && table.ownerOf(e.partition) !== this.nodeId;
    if (moved) this.drops.add({ location: e.location, bounds: e.bounds });
    this.drops.kick();
    return { ended: true, moved };
  }

  /** One connection per source node, shared by the imports from it (a batch imports many partitions). */
  private sourcePeer(address: string, host: string, port: number): Peer {
    let shared = this.peers.get(address);
    if (!shared) {
      shared = { peer: new Peer({ host, port, secret: this.secret, name: `${this.nodeId}:import`, callTimeoutMs: 30_000 }), users: 0 };
      this.peers.set(address, shared);
    }
    shared.users++;
    return shared.peer;
  }

  private releasePeer(peer: Peer): void {
    for (const [address, shared] of this.peers) {
      if (shared.peer !== peer) continue;
      if (--shared.users === 0) {
        this.peers.delete(address);
        peer.close();
      }
      return;
    }
  }

  private exportOf(task: string): Export {
    const e = this.exports.get(task);
    if (!e) throw new UnavailableError(`no export for ${task} here (the source restarted?)`);
    return e;
  }

  private importOf(task: string): Import {
    const i = this.imports.get(task);
    if (!i) throw new UnavailableError(`no import for ${task} here (the target restarted?)`);
    return i;
  }

  private async startImport(task: string, job: string, p: Params): Promise<unknown> {
    const { table, partition } = await this.table(p, job);
    this.checkJob(table, partition, job);
    if (typeof p.source !== 'string') throw new InvalidArgumentError('source (host:port) is required');
    const [host, port] = splitAddress(p.source);
    const { location, bounds } = this.place(table, partition);
    const peer = this.sourcePeer(p.source, host, port);
    const bytesPerKey = typeof p.bytesPerKey === 'number' && p.bytesPerKey >= 0 ? p.bytesPerKey : 0;
    const sourceBytes = typeof p.bytes === 'number' && p.bytes >= 0 ? p.bytes : undefined;
    const i: Import = {
      job, ns: table.name, partition, location, bounds, peer, lastSeq: 0, copiedKeys: 0, keptKeys: 0, fetchedKeys: 0, deletedKeys: 0,
      cancelled: false, sourceBytes, bytesPerKey, bucket: undefined, rate: undefined,
    };
    setRate(i, typeof p.bytesPerSec === 'number' ? p.bytesPerSec : undefined);
    this.imports.set(task, i);
    // A drop of this partition's old data may be deleting a chunk right now (it re-checks `receiving` before the
    // next one): let it finish before this import looks at what is here.
    await this.drops.quiet();
    const copied = await importSnapshot(this.engine, i);
    if (i.keptKeys + i.fetchedKeys + i.deletedKeys > 0) {
      this.log.info('compared the copy with the entries kept here', { ns: i.ns, partition, kept: i.keptKeys, fetched: i.fetchedKeys, deleted: i.deletedKeys });
    }
    const ofNs = (this.imported.namespaces[i.ns] ??= { copiedKeys: 0, keptKeys: 0, deletedKeys: 0 });
    for (const counts of [this.imported, ofNs]) {
      counts.copiedKeys += copied - i.keptKeys;
      counts.keptKeys += i.keptKeys;
      counts.deletedKeys += i.deletedKeys;
    }
    await this.pullChanges(i, Number.POSITIVE_INFINITY);
    return { copied, lastSeq: i.lastSeq };
  }

  private async pullChanges(i: Import, untilSeq: number): Promise<void> {
    for (;;) {
      const r = await i.peer.call<{ changes: Change[]; lastSeq: number }>('mig.export.changes', {
        job: i.job,
        partition: i.partition,
        afterSeq: i.lastSeq,
      });
      checkLive(i);
      await this.engine.importEntries(i.location, r.changes);
      if (r.changes.length > 0) i.lastSeq = r.changes[r.changes.length - 1]!.seq;
      if (r.changes.length === 0 || i.lastSeq >= untilSeq) return;
    }
  }

  private async abortImport(task: string): Promise<unknown> {
    const i = this.imports.get(task);
    this.imports.delete(task);
    if (i) {
      i.cancelled = true; // its loop, if still running, writes nothing more
      this.releasePeer(i.peer);
      const table = await this.catalog.refresh(i.ns);
      // Drop the copy only if no part of its keys is ours now. For a range this asks about the ranges covering its
      // bounds today, not its id: a range merged away since would leave the id unowned while its keys are ours.
      const ours =
        table === undefined
          ? false
          : table.scheme === 'hash'
            ? table.holds(i.partition, this.nodeId)
            : table.rangesFor(i.bounds.start ?? '', i.bounds.end ?? null).some((r) => table.holds(r.id, this.nodeId));
      // A partition short of copies keeps what came so far: the next attempt compares with it (stale-copies.ts).
      // Otherwise the data goes in the background, re-checked before each chunk: a new attempt may begin meanwhile.
      if (!ours && table && StaleCopies.worthKeeping(table, i.partition)) {
        this.stale.keep(i.ns, i.partition, table.scheme === 'hash' ? undefined : { start: i.bounds.start ?? '', end: i.bounds.end ?? null });
      }
      else if (!ours) this.drops.add({ location: i.location, bounds: i.bounds });
    }
    return { aborted: i !== undefined };
  }

  /** The import finished (this node now owns the partition): forget it. */
  finishImport(task: string): void {
    const i = this.imports.get(task);
    this.imports.delete(task);
    if (i) this.releasePeer(i.peer);
  }
}

/** Entries a copy into this node copied (or fetched), found here already (kept), and deleted. */
export interface ImportCounts {
  copiedKeys: number;
  keptKeys: number;
  deletedKeys: number;
}
