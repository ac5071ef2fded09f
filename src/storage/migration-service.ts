/**
 * A storage node's part in moving a partition (see docs/ARCHITECTURE.md, "The path of a migration"):
 *
 *   source  mig.export.begin  { job, ns, partition }          snapshot + change capture, together
 *           mig.export.page   { job, after?, limit }          entries from the snapshot, in key order
 *           mig.export.changes{ job, afterSeq, limit }        committed changes since, in order
 *           mig.export.fence  { job }                         hold the partition's requests -> { lastSeq }
 *           mig.export.end    { job }                         stop capturing, release held requests
 *   target  mig.import        { job, ns, partition, source }  pull snapshot and changes from the source -> { lastSeq }
 *           mig.import.catchup{ job, untilSeq }               pull changes up to untilSeq
 *           mig.import.abort  { job }                         drop what was copied
 *
 * Every step checks the routing record's migration entry names this job, so a step from a driver that lost (an
 * abort already recorded) does nothing.
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { InvalidArgumentError, UnavailableError, UnknownMethodError } from '../errors/index.js';
import { Peer, splitAddress, type Connection } from '../wire/index.js';
import { MemoryChangeLog, type Change } from './change-log.js';
import type { Location, ReadSnapshot, StorageEngine, StoredEntry } from './engine.js';
import type { KvService } from './kv-service.js';

const PAGE = 1000;
/** Longest a partition's requests are held waiting for a cutover before the source aborts the move. */
const FENCE_LIMIT_MS = 10_000;

interface Export {
  ns: string;
  partition: number;
  location: Location;
  bounds: { start?: string; end?: string | null };
  log: MemoryChangeLog;
  snapshot: ReadSnapshot;
  stop(): void;
}

interface Import {
  ns: string;
  partition: number;
  location: Location;
  bounds: { start?: string; end?: string | null };
  peer: Peer;
  lastSeq: number;
}

type Params = Record<string, unknown>;

export class MigrationService {
  private readonly exports = new Map<string, Export>();
  private readonly imports = new Map<string, Import>();

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly kv: KvService,
    private readonly secret: Uint8Array,
  ) {}

  async handle(method: string, raw: unknown, _connection?: Connection): Promise<unknown> {
    if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError('parameters must be an object');
    const p = raw as Params;
    const job = p.job;
    if (typeof job !== 'string' || job.length === 0 || job.length > 100) throw new InvalidArgumentError('job must be a job id');
    switch (method) {
      case 'mig.export.begin':
        return this.beginExport(job, p);
      case 'mig.export.page': {
        const e = this.exportOf(job);
        const after = typeof p.after === 'string' ? p.after : undefined;
        const entries = this.engine.scan(e.location, { ...e.bounds, after, limit: PAGE, snapshot: e.snapshot });
        return { entries, done: entries.length < PAGE };
      }
      case 'mig.export.changes': {
        const e = this.exportOf(job);
        const afterSeq = typeof p.afterSeq === 'number' ? p.afterSeq : 0;
        const changes = e.log.read(afterSeq, PAGE);
        e.log.release(afterSeq);
        return { changes, lastSeq: e.log.lastSeq };
      }
      case 'mig.export.fence': {
        const e = this.exportOf(job);
        this.kv.fence(e.ns, e.partition);
        // A driver that dies now must not leave the partition held: past the limit the source aborts the move itself
        // (one CAS that clears the entry; if the cutover won first, it changes nothing).
        setTimeout(() => void this.abandon(job, e), FENCE_LIMIT_MS).unref();
        await this.engine.settle(); // writes accepted before the fence are committed, so in the log
        return { lastSeq: e.log.lastSeq };
      }
      case 'mig.export.end':
        return this.endExport(job);
      case 'mig.import':
        return this.startImport(job, p);
      case 'mig.import.catchup': {
        const i = this.importOf(job);
        const untilSeq = typeof p.untilSeq === 'number' ? p.untilSeq : Number.POSITIVE_INFINITY;
        await this.pullChanges(job, i, untilSeq);
        return { lastSeq: i.lastSeq };
      }
      case 'mig.import.abort':
        return this.abortImport(job, p);
      case 'mig.import.finish':
        this.finishImport(job);
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
    for (const [job, e] of this.exports) {
      if (e.ns === table.name && table.migrationOf(e.partition)?.job !== job) void this.endExport(job);
    }
    for (const [job, i] of this.imports) {
      if (i.ns !== table.name || table.migrationOf(i.partition)?.job === job) continue;
      if (table.ownerOf(i.partition) === this.nodeId) this.finishImport(job);
      else void this.abortImport(job, {});
    }
  }

  private async abandon(job: string, e: Export): Promise<void> {
    if (this.exports.get(job) !== e) return;
    await this.catalog
      .update(e.ns, (t) => (t.migrationOf(e.partition)?.job === job ? t.withMigration(e.partition, undefined) : undefined))
      .catch(() => undefined);
    await this.endExport(job);
  }

  /** Partitions this node is receiving (so its cleanup leaves them alone). */
  receiving(ns: string, partition: number): boolean {
    for (const i of this.imports.values()) if (i.ns === ns && i.partition === partition) return true;
    return false;
  }

  private async table(p: Params): Promise<{ table: RoutingTable; partition: number }> {
    if (typeof p.ns !== 'string' || typeof p.partition !== 'number') throw new InvalidArgumentError('ns and partition are required');
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

  private async beginExport(job: string, p: Params): Promise<unknown> {
    if (this.exports.has(job)) return { ok: true };
    const { table, partition } = await this.table(p);
    this.checkJob(table, partition, job);
    if (table.ownerOf(partition) !== this.nodeId) throw new UnavailableError(`${this.nodeId} does not own ${table.name}/${partition}`);
    const { location, bounds } = this.place(table, partition);
    const log = new MemoryChangeLog();
    const capture = await this.engine.beginCapture(location, log);
    this.exports.set(job, { ns: table.name, partition, location, bounds, log, snapshot: capture.snapshot, stop: capture.stop });
    return { ok: true };
  }

  private async endExport(job: string): Promise<unknown> {
    const e = this.exports.get(job);
    if (!e) return { ended: false };
    this.exports.delete(job);
    e.stop();
    // Learn the outcome before answering held requests: a moved partition answers them MOVED.
    const table = await this.catalog.refresh(e.ns);
    this.kv.unfence(e.ns, e.partition);
    const moved = table !== undefined && table.ownerOf(e.partition) !== this.nodeId;
    if (moved) void this.engine.dropPartition(e.location, e.bounds);
    return { ended: true, moved };
  }

  private exportOf(job: string): Export {
    const e = this.exports.get(job);
    if (!e) throw new UnavailableError(`no export for job ${job} here (the source restarted?)`);
    return e;
  }

  private importOf(job: string): Import {
    const i = this.imports.get(job);
    if (!i) throw new UnavailableError(`no import for job ${job} here (the target restarted?)`);
    return i;
  }

  private async startImport(job: string, p: Params): Promise<unknown> {
    const { table, partition } = await this.table(p);
    this.checkJob(table, partition, job);
    if (typeof p.source !== 'string') throw new InvalidArgumentError('source (host:port) is required');
    const [host, port] = splitAddress(p.source);
    const { location, bounds } = this.place(table, partition);
    const peer = new Peer({ host, port, secret: this.secret, name: `${this.nodeId}:import`, callTimeoutMs: 30_000 });
    const i: Import = { ns: table.name, partition, location, bounds, peer, lastSeq: 0 };
    this.imports.set(job, i);
    // Whatever an earlier attempt left here is not to be trusted: start from nothing.
    await this.engine.dropPartition(location, bounds);
    let after: string | undefined;
    let copied = 0;
    for (;;) {
      const page = await peer.call<{ entries: StoredEntry[]; done: boolean }>('mig.export.page', { job, after });
      await this.engine.importEntries(location, page.entries);
      copied += page.entries.length;
      if (page.done || page.entries.length === 0) break;
      after = page.entries[page.entries.length - 1]!.key;
    }
    await this.pullChanges(job, i, Number.POSITIVE_INFINITY);
    return { copied, lastSeq: i.lastSeq };
  }

  private async pullChanges(job: string, i: Import, untilSeq: number): Promise<void> {
    for (;;) {
      const r = await i.peer.call<{ changes: Change[]; lastSeq: number }>('mig.export.changes', { job, afterSeq: i.lastSeq });
      await this.engine.importEntries(i.location, r.changes);
      if (r.changes.length > 0) i.lastSeq = r.changes[r.changes.length - 1]!.seq;
      if (r.changes.length === 0 || i.lastSeq >= untilSeq) return;
    }
  }

  private async abortImport(job: string, p: Params): Promise<unknown> {
    const i = this.imports.get(job);
    this.imports.delete(job);
    i?.peer.close();
    if (i) {
      const table = await this.catalog.refresh(i.ns);
      if (table?.ownerOf(i.partition) !== this.nodeId) await this.engine.dropPartition(i.location, i.bounds);
    }
    void p;
    return { aborted: i !== undefined };
  }

  /** The import finished (this node now owns the partition): forget it. */
  finishImport(job: string): void {
    const i = this.imports.get(job);
    this.imports.delete(job);
    i?.peer.close();
  }
}
