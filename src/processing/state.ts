/**
 * Where keyed state and window state live: a {@link StateBackend}. Every value is addressed by job, stage, slot and
 * key — the slot is `keySlot(key)` of the record's key (4096 slots), so a distributed runner can hand a slot's state
 * to whichever worker owns the slot and rescaling compute is a change of mapping, not a move of state.
 *
 * Writes are buffered per **checkpoint epoch** and become durable only with {@link JobState.commit}, together with
 * the source positions of that epoch, in one atomic step: after a crash the job restarts from the last commit, and
 * state reflects exactly the records before those positions (exactly-once effect on state). A stage that has passed
 * the barrier of epoch `e` already writes under `e + 1` while the commit of `e` is pending, so the two are kept apart.
 *
 * {@link MemoryStateBackend} keeps everything in the process (tests, single-process jobs, and a restart within one
 * process). A storage-tier backend can implement the same interface: a shardflow namespace per job, each epoch's
 * changes written as batches of puts tagged with their epoch, the checkpoint record written last, and reads taking a
 * key's newest value from an epoch no later than the committed one — so a half-written epoch is never seen.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect, MemoryStateBackend } from 'shardflow';
 * const state = new MemoryStateBackend();
 * const counts = pipeline('counts')
 *   .from(generator({ count: 600, rate: 2_000, make: (i) => i % 10 }))
 *   .keyBy((n) => n)
 *   .reduce((a, b) => a + b)
 *   .to(collect<number>().sink);
 * const first = counts.start({ state, checkpointInterval: '50ms' });
 * await new Promise((resolve) => setTimeout(resolve, 150));
 * await first.kill();                                  // a crash: nothing more is committed
 * const result = await counts.run({ state });          // resumes from the last checkpoint
 * result.metrics.source.records < 600;                 // true: the records before it are not read again
 * ```
 */
import { copyValue } from './copy-value.js';
import type { Json } from './connectors/types.js';
import type { SplitPosition } from './elements.js';

/**
 * What a checkpoint commits besides state: where every split stood, and the watermark generator's state.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type Checkpoint } from 'shardflow';
 * const result = await pipeline('cp').from(fromArray([1, 2, 3])).to(collect<number>().sink).run();
 * const checkpoint: Checkpoint | undefined = result.checkpoint; // committed at the end of the input
 * Object.keys(checkpoint?.positions ?? {}); // ['array-0']: the split, and where it stood
 * ```
 */
export interface Checkpoint {
  epoch: number;
  positions: Record<string, SplitPosition>;
  watermarks?: Json;
  /** When it was committed (ms since the epoch). */
  at: number;
}

/**
 * One entry of a stage's state, as {@link JobState.scan} yields it.
 *
 * @example
 * ```ts
 * import { MemoryStateBackend, type StateEntry } from 'shardflow';
 * const job = await new MemoryStateBackend().open('j');
 * job.put('keyed-1', 7, 'user:a', { n: 1 }, 1);
 * const entries: StateEntry[] = [];
 * for await (const e of job.scan('keyed-1')) entries.push(e);
 * entries; // [{ slot: 7, key: 'user:a', value: { n: 1 } }]
 * ```
 */
export interface StateEntry {
  slot: number;
  key: string;
  value: Json;
}

/**
 * A job's state, opened by {@link StateBackend.open}. Keys are strings; values are JSON-like (structured-clonable).
 * The runner drives it; a custom {@link StateBackend} implements it.
 *
 * @example
 * ```ts
 * import { MemoryStateBackend, type JobState } from 'shardflow';
 * const backend = new MemoryStateBackend();
 * const job: JobState = await backend.open('j');
 * job.put('keyed-1', 0, 'a', 1, 1);            // buffered under epoch 1
 * await job.commit({ epoch: 1, positions: {}, at: Date.now() });
 * const reopened = await backend.open('j');
 * await reopened.get('keyed-1', 0, 'a'); // 1: committed, so a reopened job sees it
 * ```
 */
export interface JobState {
  /** The last committed checkpoint, or undefined for a fresh job. */
  readonly checkpoint: Checkpoint | undefined;
  /** The newest value: pending changes of any epoch first, then the committed value. */
  get(stage: string, slot: number, key: string): Promise<Json | undefined>;
  /** Buffers a write under `epoch`; durable once that epoch commits. */
  put(stage: string, slot: number, key: string, value: Json, epoch: number): void;
  delete(stage: string, slot: number, key: string, epoch: number): void;
  /** Every entry of a stage (optionally one slot) whose key starts with `prefix`, pending changes included. */
  scan(stage: string, options?: { slot?: number; prefix?: string }): AsyncIterable<StateEntry>;
  /** Atomically makes every change of epochs up to `checkpoint.epoch` durable, with the checkpoint record. */
  commit(checkpoint: Checkpoint): Promise<void>;
  close(): Promise<void>;
}

/**
 * A job's state shared by the workers of one distributed run: each worker writes its own slots' changes of an epoch
 * ({@link SharedJobState.prepare}), one writer makes the epoch the state by writing the checkpoint record
 * ({@link CheckpointWriter.write}) once every worker has prepared it, and each worker then learns of it
 * ({@link SharedJobState.committed}). Until the record is written, prepared changes are invisible.
 */
export interface SharedJobState extends JobState {
  /** Writes this worker's changes of every epoch up to `epoch`, invisible until the checkpoint record says so. */
  prepare(epoch: number): Promise<void>;
  /** The checkpoint record was written (`commit` is what {@link CheckpointWriter.write} returned). */
  committed(commit: CommitRecord): Promise<void>;
}

/** What a written checkpoint record is, as workers need it to tell committed versions from others (opaque JSON). */
export type CommitRecord = Json;

/** Writes a shared run's checkpoint records: the commit point of each epoch. */
export interface CheckpointWriter {
  /** The run's number: workers join it with {@link SharedStateBackend.join}. */
  readonly run: number;
  readonly checkpoint: Checkpoint | undefined;
  write(checkpoint: Checkpoint): Promise<CommitRecord>;
}

/** A backend whose runs can be shared by the workers of a distributed job. */
export interface SharedStateBackend extends StateBackend {
  /** Starts a new run of `job` (fencing earlier ones) and returns the writer of its checkpoint records. */
  begin(job: string): Promise<CheckpointWriter>;
  /** Opens `job`'s state as a worker of run `run`. @throws VersionConflictError if a newer run has begun. */
  join(job: string, run: number): Promise<SharedJobState>;
}

/**
 * Stores the state of jobs. Opening a job drops the changes it had not committed (they belong to a lost run).
 * {@link MemoryStateBackend} and {@link StorageStateBackend} implement it; a job takes one as its `state` option.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, MemoryStateBackend, type StateBackend } from 'shardflow';
 * const state: StateBackend = new MemoryStateBackend();
 * await pipeline('sum').from(fromArray([1, 2])).keyBy(() => 'all').reduce((a, b) => a + b).to(collect<number>().sink).run({ state });
 * (await state.open('sum')).checkpoint?.epoch; // the epoch the run committed last
 * ```
 */
export interface StateBackend {
  readonly name: string;
  open(job: string): Promise<JobState>;
}

const TOMBSTONE = Symbol('deleted');
type Pending = Json | typeof TOMBSTONE;


class MemoryJobState implements JobState {
  /** Committed state: stage → slot → key → value. */
  private readonly committed: Map<string, Map<number, Map<string, Json>>>;
  /** Uncommitted changes per epoch, oldest first: epoch → "stage\0slot\0key" → value. */
  private readonly pending = new Map<number, Map<string, { stage: string; slot: number; key: string; value: Pending }>>();
  /** The epochs in `pending`, ascending. Layers are not created in epoch order: a stage behind may open an older one. */
  private epochs: number[] = [];

  constructor(
    private readonly record: { committed: Map<string, Map<number, Map<string, Json>>>; checkpoint?: Checkpoint },
  ) {
    this.committed = record.committed;
  }

  get checkpoint(): Checkpoint | undefined {
    return this.record.checkpoint;
  }

  async get(stage: string, slot: number, key: string): Promise<Json | undefined> {
    if (this.pending.size > 0) {
      const id = `${stage}\0${slot}\0${key}`;
      for (let i = this.epochs.length - 1; i >= 0; i--) {
        const hit = this.pending.get(this.epochs[i]!)!.get(id);
        if (hit) return hit.value === TOMBSTONE ? undefined : copyValue(hit.value);
      }
    }
    return copyValue(this.committed.get(stage)?.get(slot)?.get(key));
  }

  put(stage: string, slot: number, key: string, value: Json, epoch: number): void {
    this.layer(epoch).set(`${stage}\0${slot}\0${key}`, { stage, slot, key, value: copyValue(value) });
  }

  delete(stage: string, slot: number, key: string, epoch: number): void {
    this.layer(epoch).set(`${stage}\0${slot}\0${key}`, { stage, slot, key, value: TOMBSTONE });
  }

  async *scan(stage: string, options: { slot?: number; prefix?: string } = {}): AsyncIterable<StateEntry> {
    const prefix = options.prefix ?? '';
    const merged = new Map<string, StateEntry | undefined>();
    const slots = this.committed.get(stage);
    for (const [slot, keys] of slots ?? []) {
      if (options.slot !== undefined && slot !== options.slot) continue;
      for (const [key, value] of keys) if (key.startsWith(prefix)) merged.set(`${slot}\0${key}`, { slot, key, value });
    }
    for (const epoch of this.epochs)
      for (const p of this.pending.get(epoch)!.values()) {
        if (p.stage !== stage || !p.key.startsWith(prefix)) continue;
        if (options.slot !== undefined && p.slot !== options.slot) continue;
        merged.set(`${p.slot}\0${p.key}`, p.value === TOMBSTONE ? undefined : { slot: p.slot, key: p.key, value: p.value });
      }
    for (const entry of merged.values()) if (entry) yield { ...entry, value: copyValue(entry.value) };
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    // One synchronous pass: nothing can observe a half-applied epoch.
    for (const epoch of this.epochs) {
      if (epoch > checkpoint.epoch) continue;
      for (const p of this.pending.get(epoch)!.values()) {
        let slots = this.committed.get(p.stage);
        if (!slots) this.committed.set(p.stage, (slots = new Map()));
        let keys = slots.get(p.slot);
        if (!keys) slots.set(p.slot, (keys = new Map()));
        if (p.value === TOMBSTONE) keys.delete(p.key);
        else keys.set(p.key, p.value);
      }
      this.pending.delete(epoch);
    }
    this.epochs = this.epochs.filter((e) => e > checkpoint.epoch);
    this.record.checkpoint = structuredClone(checkpoint);
  }

  async close(): Promise<void> {
    this.pending.clear();
    this.epochs = [];
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

/**
 * Keeps every job's committed state and last checkpoint in this process. Pass the same instance to a restarted job
 * to resume it; uncommitted changes of a previous run are dropped when the job is opened again.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, MemoryStateBackend } from 'shardflow';
 * const state = new MemoryStateBackend();
 * const counts = pipeline('counts').from(fromArray([1, 2, 3])).keyBy(() => 'sum').reduce((a, b) => a + b).to(collect<number>().sink);
 * await counts.run({ state, checkpointInterval: 500 });
 * state.checkpointOf('counts'); // { epoch, positions, watermarks, at } of the last commit
 * ```
 */
export class MemoryStateBackend implements StateBackend {
  readonly name = 'memory';
  private readonly jobs = new Map<string, { committed: Map<string, Map<number, Map<string, Json>>>; checkpoint?: Checkpoint }>();

  async open(job: string): Promise<JobState> {
    let record = this.jobs.get(job);
    if (!record) this.jobs.set(job, (record = { committed: new Map() }));
    return new MemoryJobState(record);
  }

  /** The last checkpoint committed for `job`, if any. */
  checkpointOf(job: string): Checkpoint | undefined {
    return this.jobs.get(job)?.checkpoint;
  }
}
