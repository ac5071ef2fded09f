/**
 * A {@link StateBackend} whose state lives in the storage tier: one hash namespace per job, so the process running
 * the job keeps no state of its own (a read cache aside), and the job survives the storage tier being rescaled under
 * it — partitions move with their data and the client follows them (MOVED → refresh → retry).
 *
 * **Layout** (storage-state-keys.ts): a state entry `(stage, slot, key)` is stored at
 * `esc(stage) SEP {tag(slot)} esc(key)`, where the hash tag makes the storage slot the processing slot (mod the
 * namespace's slot count, a power of two ≤ 4096 keeps this exact): one processing slot's state sits in one storage
 * partition, next to nothing else's. The checkpoint record is one more key, `SEP meta`.
 *
 * **Exactly-once without multi-key transactions.** A checkpoint's changes span many partitions on several nodes, and
 * a batch is atomic only per node. So every stored value carries versions and the single checkpoint record decides
 * which are real:
 *
 * ```text
 * stored value   { a, e, v | d:1, p?: { a, e, v | d:1 } }   a: the run (attempt) that wrote it, e: its epoch,
 *                                                          v: the value or d: deleted, p: the version before it
 * meta record    { attempts, lineage: [[attempt, fromEpoch], …], checkpoint? }        (the checkpoint record)
 * ```
 *
 * - `open` bumps `attempts` (compare-and-set on the meta record's version): this run's versions are tagged with a
 *   number no earlier run used. `lineage` says which run committed which epochs: run `a` owns the epochs from its
 *   `fromEpoch` up to the next entry's.
 * - A version `(a, e)` is **committed** iff `e <= checkpoint.epoch` and the lineage says `a` owns epoch `e`. A reader
 *   takes the stored version if it is committed, else its `p` — so a version written by a commit that never wrote its
 *   checkpoint record, or by a run that crashed, is invisible, even after a later run commits that same epoch number
 *   (it would be owned by the later run).
 * - `commit(E)`: the changes of every epoch ≤ E (newest wins) are written in batches as versions `(run, E)` with
 *   `p` = the key's committed version (read first when this run has not seen the key); deletes are written as
 *   `d: 1` versions (the previous version must survive until the checkpoint record). Only once every batch is
 *   acknowledged is the meta record written — LAST, one key, conditional on its version — with `checkpoint = E` (and
 *   `[run, fromEpoch]` added to the lineage at the run's first commit). That single put is the commit point: before
 *   it, the new versions are invisible and `p` holds the previous checkpoint's value; after it, they are the state.
 *   Afterwards, keys whose committed version is a delete are removed (best effort; a leftover delete is harmless).
 * - A key has at most one uncommitted version on top of a committed one (commits run one at a time, and a new
 *   version's `p` is always the committed one, also when it replaces a crashed run's leftover), so one `p` suffices.
 *
 * So a crash at any point — after some state batches, after all of them, before or during the meta write — leaves
 * exactly the previous checkpoint: the job reopens, drops its buffered changes, and reads the old versions.
 *
 * **Shared runs** (a job spread over compute nodes): `begin` takes the run number and returns the writer of the meta
 * record (the job's leader); each worker `join`s that run and `prepare`s its own slots' versions of an epoch (slots are
 * disjoint between workers, so each key has one writer); once every worker has, the leader `write`s the meta record
 * and the workers apply it (`committed`). `commit` is the three steps in one process.
 *
 * **Limits.**
 * - One live run per job. A second `open` fences the first off for its checkpoint record (its meta write fails with
 *   `VersionConflictError`), but not for its state batches: a run that is still alive after being replaced (a
 *   partition from the network, not a crash) can overwrite the new run's versions. The runner's kill -9 / restart
 *   model (the old process is dead) is what this covers.
 * - The read cache (committed versions this run has read or written, `cacheKeys` entries) is only correct while this
 *   run is the only writer of the job's state — the same assumption.
 * - A value and its previous version share the storage tier's 1 MiB value limit.
 * - Scans walk every storage slot of the namespace (the client scans a hash namespace slot by slot), restricted to
 *   the stage's key range: keep `slotCount` small (default 256) for jobs that restore many timers.
 * - `lineage` grows by one entry per run that commits; it is a few bytes each.
 */
import { copyValue } from './copy-value.js';
import type { BatchOp, ShardflowClient } from '../client/index.js';
import { ClosedError, InvalidArgumentError, UnknownNamespaceError, VersionConflictError } from '../errors/index.js';
import type { Json } from './connectors/types.js';
import type { Checkpoint, CheckpointWriter, CommitRecord, JobState, SharedJobState, SharedStateBackend, StateEntry } from './state.js';
import { META_KEY, parseStoredKey, stageRange, stateNamespace, storedKey } from './storage-state-keys.js';

/**
 * The part of the client this backend uses (a test can wrap it to inject faults).
 *
 * @example
 * ```ts
 * import { connect, StorageStateBackend, type StateStoreClient } from 'shardflow';
 * const client = await connect({ dir: '.shardflow' });
 * let puts = 0;
 * const store: StateStoreClient = {
 *   getEntry: client.getEntry.bind(client), batch: client.batch.bind(client),
 *   scan: client.scan.bind(client), createNamespace: client.createNamespace.bind(client),
 *   put: (ns, key, value, options) => (++puts % 10 === 0 ? Promise.reject(new Error('injected')) : client.put(ns, key, value, options)),
 * };
 * const state = new StorageStateBackend(store); // every 10th put fails: a test of how jobs recover
 * ```
 */
export type StateStoreClient = Pick<ShardflowClient, 'getEntry' | 'put' | 'batch' | 'scan' | 'createNamespace'>;

/**
 * Options of {@link StorageStateBackend}.
 *
 * @example
 * ```ts
 * import { connect, StorageStateBackend, type StorageStateOptions } from 'shardflow';
 * const options: StorageStateOptions = { prefix: 'jobs.', slotCount: 64, batchOps: 1_000 };
 * const state = new StorageStateBackend(await connect({ dir: '.shardflow' }), options); // job `j` in namespace `jobs.j`
 * ```
 */
export interface StorageStateOptions {
  /** Namespace of job `j` is `prefix + j` (made a valid name if it is not). Default `job.`. */
  prefix?: string;
  /** Slots of a job namespace created by this backend. Default 256 (a divisor of 4096 keeps slots aligned). */
  slotCount?: number;
  /** Committed versions kept in memory per open job. Default 100 000. */
  cacheKeys?: number;
  /** State writes per batch request. Default 500. */
  batchOps?: number;
}

interface Version {
  a: number;
  e: number;
  v?: Json;
  d?: 1;
}
interface Stored extends Version {
  p?: Version;
}
interface Meta {
  attempts: number;
  lineage: Array<[number, number]>;
  checkpoint?: Checkpoint;
}

const TOMBSTONE = Symbol('deleted');
type Pending = { stage: string; slot: number; key: string; value: Json | typeof TOMBSTONE };


/**
 * Keeps each job's state and checkpoints in a namespace of the storage tier; see the module documentation for the
 * design. The client is shared, not closed by the backend.
 *
 * @example
 * ```ts
 * import { connect, pipeline, generator, collect, StorageStateBackend } from 'shardflow';
 * const client = await connect({ dir: '.shardflow' }); // a running cluster: `shardflow up`
 * const state = new StorageStateBackend(client);
 * const counts = pipeline('counts').from(generator({ count: 10_000, make: (i) => i % 10 })).keyBy((n) => n).reduce((a, b) => a + b);
 * await counts.to(collect<number>().sink).run({ state, checkpointInterval: '5s' }); // kill it, run it again: it resumes exactly
 * await client.close();
 * ```
 */
export class StorageStateBackend implements SharedStateBackend {
  readonly name = 'storage';
  private readonly prefix: string;
  private readonly slotCount: number;

  constructor(
    private readonly client: StateStoreClient,
    private readonly options: StorageStateOptions = {},
  ) {
    this.prefix = options.prefix ?? 'job.';
    this.slotCount = options.slotCount ?? 256;
    if (!Number.isInteger(this.slotCount) || this.slotCount < 1 || this.slotCount > 65536)
      throw new InvalidArgumentError(`slotCount must be an integer from 1 to 65536, not ${this.slotCount}`);
  }

  /** The namespace holding `job`'s state. */
  namespaceOf(job: string): string {
    return stateNamespace(this.prefix, job);
  }

  async open(job: string): Promise<JobState> {
    const { ns, meta, version } = await this.newRun(job);
    return new StorageJobState(this.client, ns, meta, version, this.options);
  }

  /**
   * A new run of `job` whose checkpoint records one writer makes, while its workers ({@link join}) write the state:
   * how a job spread over several compute nodes commits.
   */
  async begin(job: string): Promise<CheckpointWriter> {
    const { ns, meta, version } = await this.newRun(job);
    return new StorageJobState(this.client, ns, meta, version, this.options);
  }

  async join(job: string, run: number): Promise<SharedJobState> {
    const ns = this.namespaceOf(job);
    const entry = await this.client.getEntry<Meta>(ns, META_KEY);
    if (!entry || entry.value.attempts !== run)
      throw new VersionConflictError(`job state ${ns} is at run ${entry?.value.attempts ?? 0}, not ${run}: a newer run has begun`);
    return new StorageJobState(this.client, ns, entry.value, entry.version, this.options, run);
  }

  /** Takes a fresh run (attempt) number: compare-and-set, so two runs starting at once get different ones. */
  private async newRun(job: string): Promise<{ ns: string; meta: Meta; version: number }> {
    const ns = this.namespaceOf(job);
    await this.client.createNamespace(ns, { scheme: 'hash', slotCount: this.slotCount });
    for (let tries = 0; ; tries++) {
      const entry = await this.client.getEntry<Meta>(ns, META_KEY);
      const meta: Meta = entry?.value ?? { attempts: 0, lineage: [] };
      const next: Meta = { ...meta, attempts: meta.attempts + 1 };
      try {
        const version = await this.client.put(ns, META_KEY, next, { ifVersion: entry?.version ?? 0 });
        return { ns, meta: next, version };
      } catch (err) {
        if (!(err instanceof VersionConflictError) || tries >= 20) throw err;
      }
    }
  }

  /** The last checkpoint committed for `job`, if any (read from the storage tier). */
  async checkpointOf(job: string): Promise<Checkpoint | undefined> {
    try {
      return (await this.client.getEntry<Meta>(this.namespaceOf(job), META_KEY))?.value.checkpoint;
    } catch (err) {
      if (err instanceof UnknownNamespaceError) return undefined; // the job never ran here
      throw err;
    }
  }
}

class StorageJobState implements SharedJobState, CheckpointWriter {
  /** This run's attempt number: the `a` of every version it writes. */
  private readonly attempt: number;
  /** Stored records this run knows to be current (null: none stored), stored-key → record. Bounded. */
  private readonly cache = new Map<string, Stored | null>();
  private readonly pending = new Map<number, Map<string, Pending>>();
  private epochs: number[] = [];
  private closed = false;
  private readonly cacheKeys: number;
  private readonly batchOps: number;

  constructor(
    private readonly client: StateStoreClient,
    private readonly ns: string,
    private meta: Meta,
    private metaVersion: number,
    options: StorageStateOptions,
    run?: number,
  ) {
    this.attempt = run ?? meta.attempts;
    this.cacheKeys = options.cacheKeys ?? 100_000;
    this.batchOps = options.batchOps ?? 500;
  }

  get checkpoint(): Checkpoint | undefined {
    return this.meta.checkpoint;
  }

  get run(): number {
    return this.attempt;
  }

  async get(stage: string, slot: number, key: string): Promise<Json | undefined> {
    const id = storedKey(stage, slot, key);
    for (let i = this.epochs.length - 1; i >= 0; i--) {
      const hit = this.pending.get(this.epochs[i]!)!.get(id);
      if (hit) return hit.value === TOMBSTONE ? undefined : copyValue(hit.value);
    }
    const stored = this.cache.has(id) ? this.cache.get(id)! : await this.fetch(id);
    return copyValue(this.valueOf(stored));
  }

  put(stage: string, slot: number, key: string, value: Json, epoch: number): void {
    this.layer(epoch).set(storedKey(stage, slot, key), { stage, slot, key, value: copyValue(value) });
  }

  delete(stage: string, slot: number, key: string, epoch: number): void {
    this.layer(epoch).set(storedKey(stage, slot, key), { stage, slot, key, value: TOMBSTONE });
  }

  async *scan(stage: string, options: { slot?: number; prefix?: string } = {}): AsyncIterable<StateEntry> {
    const prefix = options.prefix ?? '';
    const merged = new Map<string, StateEntry | undefined>();
    const { start, end } = stageRange(stage);
    for await (const e of this.client.scan<Stored>(this.ns, { start, end })) {
      const at = parseStoredKey(stage, e.key);
      if (!at || (options.slot !== undefined && at.slot !== options.slot) || !at.key.startsWith(prefix)) continue;
      const stored = this.remember(e.key, e.value);
      const value = this.valueOf(stored);
      if (value !== undefined) merged.set(e.key, { slot: at.slot, key: at.key, value });
    }
    for (const epoch of this.epochs)
      for (const [id, p] of this.pending.get(epoch)!) {
        if (p.stage !== stage || !p.key.startsWith(prefix)) continue;
        if (options.slot !== undefined && p.slot !== options.slot) continue;
        merged.set(id, p.value === TOMBSTONE ? undefined : { slot: p.slot, key: p.key, value: p.value });
      }
    for (const entry of merged.values()) if (entry) yield { ...entry, value: copyValue(entry.value) };
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    await this.prepare(checkpoint.epoch);
    await this.committed(await this.write(checkpoint));
  }

  /** Versions written by the last `prepare`, applied to the cache once their checkpoint record is written. */
  private prepared: { epoch: number; written: Map<string, Stored> } | undefined;

  async prepare(epoch: number): Promise<void> {
    if (this.closed) throw new ClosedError(`the state of ${this.ns} is closed`);
    this.checkEpoch(epoch);
    // The changes of every epoch up to this one, newest last.
    const changes = new Map<string, Pending>();
    for (const e of this.epochs) if (e <= epoch) for (const [id, p] of this.pending.get(e)!) changes.set(id, p);
    // Each new version keeps the committed one as `p`: read the keys this run has not seen.
    // (Kept here, not only in the cache, which may evict them before they are used.)
    const current = new Map<string, Stored | null>();
    const unknown: string[] = [];
    for (const id of changes.keys()) if (this.cache.has(id)) current.set(id, this.cache.get(id)!);
    else unknown.push(id);
    for (let i = 0; i < unknown.length; i += 256)
      await Promise.all(unknown.slice(i, i + 256).map(async (id) => current.set(id, await this.fetch(id))));
    const written = new Map<string, Stored>();
    const ops: BatchOp[] = [];
    for (const [id, p] of changes) {
      const prev = this.committedVersion(current.get(id) ?? null);
      const rec: Stored = p.value === TOMBSTONE ? { a: this.attempt, e: epoch, d: 1 } : { a: this.attempt, e: epoch, v: p.value };
      if (prev) rec.p = prev;
      written.set(id, rec);
      ops.push({ op: 'put', key: id, value: rec });
    }
    await this.writeBatches(ops);
    this.prepared = { epoch, written };
  }

  /** The commit point: one put of one key, conditional on the version this run last wrote (a newer run fences us). */
  async write(checkpoint: Checkpoint): Promise<CommitRecord> {
    if (this.closed) throw new ClosedError(`the state of ${this.ns} is closed`);
    const epoch = checkpoint.epoch;
    const last = this.checkEpoch(epoch);
    const lineage = this.meta.lineage.some(([a]) => a === this.attempt) ? this.meta.lineage : [...this.meta.lineage, [this.attempt, last + 1] as [number, number]];
    const next: Meta = { attempts: this.meta.attempts, lineage, checkpoint: structuredClone(checkpoint) };
    try {
      this.metaVersion = await this.client.put(this.ns, META_KEY, next, { ifVersion: this.metaVersion });
    } catch (err) {
      if (err instanceof VersionConflictError)
        throw new VersionConflictError(`job state ${this.ns} was opened by a newer run: this run's checkpoint ${epoch} is refused`, { cause: err });
      throw err;
    }
    this.meta = next;
    return next as unknown as CommitRecord;
  }

  async committed(commit: CommitRecord): Promise<void> {
    const next = commit as unknown as Meta;
    const epoch = next.checkpoint?.epoch ?? 0;
    const written = this.prepared && this.prepared.epoch <= epoch ? this.prepared.written : new Map<string, Stored>();
    this.prepared = undefined;
    // Synchronously: the new meta, the new versions and the end of the committed layers, so no read sees a mix.
    this.meta = next;
    for (const [id, rec] of written) this.remember(id, rec, true);
    for (const e of this.epochs) if (e <= epoch) this.pending.delete(e);
    this.epochs = this.epochs.filter((e) => e > epoch);
    // Committed deletes need no record any more (a crash before this leaves a harmless one).
    const gone = [...written].filter(([, rec]) => rec.d === 1).map(([id]) => id);
    if (gone.length > 0) {
      try {
        await this.writeBatches(gone.map((key) => ({ op: 'del', key })));
        for (const id of gone) if (this.cache.get(id) === written.get(id)) this.remember(id, null, true);
      } catch {
        // Best effort: the delete versions stay, and read as deleted.
      }
    }
  }

  /** The last committed epoch, after checking that `epoch` may follow it. */
  private checkEpoch(epoch: number): number {
    const last = this.meta.checkpoint?.epoch ?? 0;
    if (!Number.isInteger(epoch) || epoch <= last)
      throw new InvalidArgumentError(`checkpoint epoch ${epoch} must be an integer after the last committed epoch ${last}`);
    return last;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    this.epochs = [];
    this.cache.clear();
  }

  // ---- versions ---------------------------------------------------------------------------------------------

  /** Whether `v` belongs to a committed checkpoint: its epoch is committed, and by the run that wrote it. */
  private isCommitted(v: Version): boolean {
    if (v.e > (this.meta.checkpoint?.epoch ?? 0)) return false;
    let owner: number | undefined;
    for (const [a, from] of this.meta.lineage) if (from <= v.e) owner = a;
    return owner === v.a;
  }

  /** The committed version of a stored record: itself, or the one it replaced, or none. */
  private committedVersion(stored: Stored | null): Version | undefined {
    if (!stored) return undefined;
    if (this.isCommitted(stored)) return stored.d === 1 ? { a: stored.a, e: stored.e, d: 1 } : { a: stored.a, e: stored.e, v: stored.v! };
    return stored.p && this.isCommitted(stored.p) ? stored.p : undefined;
  }

  private valueOf(stored: Stored | null): Json | undefined {
    const v = this.committedVersion(stored);
    return !v || v.d === 1 ? undefined : v.v;
  }

  // ---- storage and cache ------------------------------------------------------------------------------------

  private async fetch(id: string): Promise<Stored | null> {
    const entry = await this.client.getEntry<Stored>(this.ns, id);
    return this.remember(id, entry?.value ?? null);
  }

  /**
   * Caches a stored record and returns the current one. A record read from storage does not replace one already
   * cached: the cached one is at least as new (this run wrote it, or read it no earlier), and a read that started
   * before a commit could otherwise put back the version it replaced.
   */
  private remember(id: string, stored: Stored | null, written = false): Stored | null {
    if (!written && this.cache.has(id)) return this.cache.get(id)!;
    if (!this.cache.has(id) && this.cache.size >= this.cacheKeys) {
      let drop = Math.max(1, this.cacheKeys >> 4);
      for (const k of this.cache.keys()) {
        this.cache.delete(k);
        if (--drop === 0) break;
      }
    }
    this.cache.set(id, stored);
    return stored;
  }

  private async writeBatches(ops: BatchOp[]): Promise<void> {
    const chunks: BatchOp[][] = [];
    let chunk: BatchOp[] = [];
    let bytes = 0;
    for (const op of ops) {
      const size = op.op === 'put' ? (JSON.stringify(op.value)?.length ?? 8) + op.key.length : op.key.length;
      if (chunk.length > 0 && (chunk.length >= this.batchOps || bytes + size > 8 << 20)) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(op);
      bytes += size;
    }
    if (chunk.length > 0) chunks.push(chunk);
    for (let i = 0; i < chunks.length; i += 4) await Promise.all(chunks.slice(i, i + 4).map((c) => this.client.batch(this.ns, c)));
  }

  private layer(epoch: number) {
    let layer = this.pending.get(epoch);
    if (!layer) {
      this.pending.set(epoch, (layer = new Map()));
      this.epochs = [...this.pending.keys()].sort((a, b) => a - b);
    }
    return layer;
  }
}
