/**
 * The local runner: runs a {@link LogicalPlan} in this process, in one of two modes.
 *
 * - **stream**: each record flows through as it arrives. Every step (the source, each stage, the sink) is its own
 *   async loop, joined by bounded queues; a step that falls behind fills the queue before it, and the steps before it
 *   wait — a slow sink slows the source (backpressure) instead of filling memory.
 * - **batch**: the same loops, but each step of the pipeline (the first stage, and every keyed stage after the first)
 *   collects its input into a group and gets it only when a trigger fires — interval, count, bytes, whichever first —
 *   or the input ends (processing/batch-queue.ts). A result waits for the next step's trigger, so the waits add up
 *   with the depth of the pipeline, as the seed says batch processing does.
 *
 * Both see the same sequence of records and control elements (reads, watermarks, barriers do not depend on the
 * mode), so a bounded input gives the same results in either; only when results appear differs.
 *
 * Checkpoints: every `checkpointInterval` a barrier goes in after the current read, carrying every split's position.
 * Each keyed stage moves its state writes to the next epoch as the barrier passes; when the barrier reaches the sink,
 * the sink and the side outputs are flushed and the state backend commits the epoch's state changes with the
 * positions in one step — in the background: the sink goes on with the next epoch meanwhile, and the next barrier
 * waits for it (one commit in flight). A restarted job (same name, same backend) reopens its splits at those positions with that
 * state: exactly-once effect on state, at-least-once output.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import { isBadRecords, withoutBigInts } from './connectors/bad-records.js';
import type { Sink, SinkContext, SinkWriter } from './connectors/types.js';
import type { BarrierEl, Element } from './elements.js';
import { KeyedExec } from './keyed-stage.js';
import { JobMetrics, type MetricsSnapshot, type StageMetrics } from './metrics.js';
import { deadLetterLog, SideOutput, SideOutputs } from './outputs.js';
import type { DeadLetter, LogicalPlan } from './plan.js';
import { BoundedQueue } from './queue.js';
import { SplitSet } from './splits.js';
import { MemoryStateBackend, type Checkpoint, type JobState, type StateBackend } from './state.js';
import { alignWatermarks, StatelessExec, type WatermarkState } from './stateless-stage.js';
import { BatchQueue } from './batch-queue.js';
import { parseTrigger, type TriggerInput, type TriggerSpec } from './triggers.js';
import { parseDuration } from './units.js';
import type { CommitKind, Inlet, JobHandle, JobResult, JobRunOptions, Mode, Outlet } from './job-handle.js';

export type { CommitKind, Inlet, JobHandle, JobResult, JobRunOptions, Mode, Outlet } from './job-handle.js';

/** Most time a job runs without giving the event loop a turn (timers, I/O). */
const YIELD_EVERY_MS = 10;

/**
 * Starts a job in this process and returns its handle.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect, startJob } from 'shardflow';
 * const out = collect<number>();
 * const { plan } = pipeline('live').from(generator({ count: 500, rate: 2_000, make: (i) => i })).to(out.sink);
 * const job = startJob(plan, { mode: 'stream', checkpointInterval: '100ms' });
 * const timer = setInterval(() => console.log('p99 ms', job.metrics.snapshot().latency.p99Ms), 100);
 * const result = await job.done; // about 0.25 s at 2000 records/s
 * clearInterval(timer);
 * [result.state, out.values.length]; // ['finished', 500]
 * ```
 */
export function startJob(plan: LogicalPlan, options: JobRunOptions = {}): JobHandle {
  return new LocalJob(plan, options);
}

/**
 * Runs a job in this process until its input ends (bounded sources) and resolves with its result.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, runJob } from 'shardflow';
 * const out = collect<number>();
 * const { plan } = pipeline('squares').from(fromArray([1, 2, 3])).map((n) => n * n).to(out.sink);
 * const result = await runJob(plan, { mode: 'batch', trigger: 'count=500' });
 * result.metrics.sink.records; // 3
 * out.values; // [1, 4, 9]
 * ```
 */
export function runJob(plan: LogicalPlan, options: JobRunOptions = {}): Promise<JobResult> {
  return startJob(plan, options).done;
}

/**
 * A job run by this process. The local runner is this class as it is; a worker of a job spread over compute nodes
 * (processing/cluster-worker.ts) overrides the hooks: which splits it reads, which slots it owns, what joins its
 * steps (exchanges between nodes before keyed stages) and how an epoch commits (through the job's leader).
 */
export class LocalJob extends EventEmitter implements JobHandle {
  private lastYield = performance.now();
  readonly name: string;
  readonly metrics: JobMetrics;
  readonly done: Promise<JobResult>;
  protected readonly mode: Mode;
  protected readonly trigger: TriggerSpec;
  private readonly checkpointMs: number;
  private readonly queueCapacity: number;
  private readonly readBatch: number;
  private readonly tickMs: number;
  private readonly pollMs: number;
  protected readonly clock: () => number;
  protected stopping = false;
  protected killed = false;
  protected checkpointDue = false;
  protected barrierInFlight = false;
  private tickDue = false;
  protected nextEpoch = 1;
  protected queues: Array<Inlet | Outlet> = [];
  // Set up in run():
  protected store!: JobState;
  protected splits!: SplitSet<unknown>;
  private writer!: SinkWriter<unknown>;
  protected outputs!: SideOutputs;
  protected execs: Array<StatelessExec | KeyedExec> = [];

  constructor(
    protected readonly plan: LogicalPlan,
    protected readonly options: JobRunOptions,
  ) {
    super();
    this.name = plan.name;
    this.mode = options.mode ?? 'stream';
    if (this.mode !== 'stream' && this.mode !== 'batch')
      throw new InvalidArgumentError(`unknown mode "${String(this.mode)}": expected stream or batch`);
    this.trigger = parseTrigger(options.trigger ?? 'interval=1s,count=1000');
    this.checkpointMs = options.checkpointInterval === false ? 0 : parseDuration(options.checkpointInterval ?? '10s', 'checkpointInterval');
    this.queueCapacity = positiveInt(options.queueCapacity ?? 256, 'queueCapacity');
    this.readBatch = positiveInt(options.readBatch ?? 256, 'readBatch');
    this.tickMs = parseDuration(options.tickInterval ?? '100ms', 'tickInterval');
    this.pollMs = parseDuration(options.pollInterval ?? '50ms', 'pollInterval');
    this.clock = options.clock ?? Date.now;
    const stageMetrics: StageMetrics[] = plan.stages.map((s) => ({ id: s.id, kind: s.kind, in: 0, out: 0 }));
    this.metrics = new JobMetrics(plan.name, this.mode, stageMetrics);
    this.done = new Promise<void>((r) => setImmediate(r)).then(() => this.run()); // subclasses finish constructing first
    this.done.catch(() => {}); // a caller that never looks at `done` must not crash the process
  }

  // ---- hooks (see the class comment) --------------------------------------------------------------------------

  protected openState(backend: StateBackend): Promise<JobState> {
    return backend.open(this.name);
  }

  protected openSplits(restored: Checkpoint | undefined): Promise<SplitSet<unknown>> {
    return SplitSet.open(this.plan.source, this.options.parallelism ?? 1, restored?.positions);
  }

  /** Whether a source without splits is worth a warning (a worker of a distributed job may have no share). */
  protected readonly warnWithoutSplits: boolean = true;

  /** Whether this process handles the keys of `slot` (all of them, when it runs the whole job). */
  protected ownsSlot(_slot: number): boolean {
    return true;
  }

  /** The name sinks see for this process's writer. */
  protected get workerName(): string {
    return 'local-0';
  }

  /**
   * What joins step `i - 1` (the source when i = 0) to step `i` (the sink when i = steps): a bounded queue; in batch
   * mode, a {@link BatchQueue} in front of the first step and of every keyed stage after the first, so each step of
   * the pipeline collects its own input.
   */
  protected link(i: number): { inlet: Inlet; outlet: Outlet } {
    const group = this.groupBefore(i);
    if (group) return { inlet: group, outlet: group };
    const q = new BoundedQueue<Element>(this.queueCapacity);
    return { inlet: q, outlet: q };
  }

  /** Batch mode: the queue that collects step `i`'s input into groups, if step `i` collects its own (see {@link link}). */
  protected groupBefore(i: number): BatchQueue | undefined {
    if (this.mode !== 'batch') return undefined;
    if (i !== 0 && !(this.plan.stages[i]?.kind === 'keyed' && this.plan.stages.slice(0, i).some((s) => s.kind === 'keyed'))) return undefined;
    return new BatchQueue(this.trigger, this.queueCapacity, i === 0 ? (reason, records) => this.batchReleased(reason, records) : undefined);
  }

  /** A group of the source's records went on: counted, and told (`batch` event). */
  private batchReleased(reason: string, records: number): void {
    if (records === 0) return;
    this.metrics.batches.count++;
    this.metrics.batches.lastTrigger = reason;
    this.metrics.batches.lastSize = records;
    this.emit('batch', { reason, records });
  }

  /** Makes an epoch's state changes and the positions durable in one step; `how` it came: a barrier, a final one, the end of the input. */
  protected commitEpoch(checkpoint: Checkpoint, _how: CommitKind): Promise<void> {
    return this.store.commit(checkpoint);
  }

  stop(): Promise<JobResult> {
    this.stopping = true;
    return this.done;
  }

  kill(): Promise<JobResult> {
    this.killed = true;
    for (const q of this.queues) q.close();
    return this.done;
  }

  private async run(): Promise<JobResult> {
    const timers: NodeJS.Timeout[] = [];
    const backend = this.options.state ?? new MemoryStateBackend();
    try {
      this.store = await this.openState(backend);
      const restored = this.store.checkpoint;
      this.nextEpoch = (restored?.epoch ?? 0) + 1;
      this.splits = await this.openSplits(restored);
      this.metrics.source.splits = this.splits.splits.length;
      // Most often a glob that matched nothing: the job would finish at once with no output and no other sign.
      if (this.splits.splits.length === 0 && this.warnWithoutSplits) createLogger(`processing:${this.name}`).warn('the source has nothing to read', { source: this.plan.source.name });
      await this.openOutputs(restored !== undefined);
      for (const [i, stage] of this.plan.stages.entries()) {
        const m = this.metrics.stages[i]!;
        if (stage.kind === 'stateless') {
          const ids = this.splits.splits.map((s) => s.id);
          const wm = i === 0 ? alignWatermarks(restored?.watermarks as WatermarkState | undefined, ids) : undefined;
          this.execs.push(new StatelessExec(stage, m, this.outputs, wm));
        } else {
          const exec = new KeyedExec(stage, this.store, m, this.outputs, this.clock, () => this.metrics.late++, (slot) => this.ownsSlot(slot));
          await exec.restore();
          this.execs.push(exec);
        }
      }
      if (this.checkpointMs > 0) timers.push(setInterval(() => (this.checkpointDue = true), this.checkpointMs));
      if (this.plan.stages.some((s) => s.kind === 'keyed')) timers.push(setInterval(() => (this.tickDue = true), this.tickMs));
      for (const t of timers) t.unref();
      const restoredWm = (restored?.watermarks as WatermarkState | undefined)?.emitted;
      const first: Element[] = restoredWm !== undefined && restoredWm > -Infinity ? [{ t: 'w', wm: restoredWm, readAt: performance.now() }] : [];
      await this.runSteps(first);
      this.metrics.state = this.killed ? 'killed' : this.stopping ? 'stopped' : 'finished';
      return { job: this.name, state: this.metrics.state as JobResult['state'], metrics: this.metrics.snapshot(), checkpoint: this.store.checkpoint };
    } catch (err) {
      this.metrics.state = 'failed';
      for (const q of this.queues) q.close();
      throw err;
    } finally {
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([this.splits?.close(), this.writer?.close(), this.outputs?.close(), this.store?.close()]);
    }
  }

  /** `resumed`: the job restored a checkpoint, so sinks keep what earlier runs wrote (a file appends). */
  private async openOutputs(resumed: boolean): Promise<void> {
    const ctx: SinkContext = { job: this.name, worker: this.workerName, resumed };
    this.writer = await this.plan.sink.open(ctx);
    const deadSink = this.options.deadLetters ?? this.plan.deadLetters ?? deadLetterLog();
    const late = new Map<Sink<unknown>, SideOutput<unknown>>();
    for (const s of this.plan.stages)
      if (s.kind === 'keyed' && s.operator.kind === 'window' && s.operator.late && !late.has(s.operator.late))
        late.set(s.operator.late, new SideOutput(await s.operator.late.open(ctx)));
    this.outputs = new SideOutputs(this.name, new SideOutput(await deadSink.open(ctx)), late);
    const dl = this.outputs.deadLetters;
    const push = dl.push.bind(dl);
    dl.push = (d: DeadLetter) => {
      this.metrics.deadLetters++;
      push(d);
    };
  }

  /** The control element due before the next read, if any. */
  private control(): Element | undefined {
    if (this.checkpointDue && !this.barrierInFlight) {
      this.checkpointDue = false;
      this.barrierInFlight = true;
      return this.barrier(false);
    }
    if (this.tickDue) {
      this.tickDue = false;
      return { t: 'p', now: this.clock() };
    }
    return undefined;
  }

  private barrier(final: boolean): BarrierEl {
    return { t: 'b', epoch: this.nextEpoch++, positions: this.splits.snapshot(), final };
  }

  /** One source read turned into elements. False once every split has ended. */
  private async read(push: (el: Element) => Promise<boolean>, waitMs: number): Promise<boolean> {
    // A source that always has records (an unpaced generator, a big file) would keep the job on microtasks alone and
    // starve every timer: checkpoints, triggers, stop(). So the event loop gets a turn at least every few ms.
    if (performance.now() - this.lastYield >= YIELD_EVERY_MS) {
      await new Promise((r) => setImmediate(r));
      this.lastYield = performance.now();
    }
    const got = await this.splits.read(this.readBatch, waitMs);
    if (!got) return false;
    const readAt = performance.now();
    const src = this.metrics.source;
    src.pending = this.splits.pending;
    for (const r of got.batch.records) {
      src.records++;
      src.bytes += r.bytes;
      if (!(await push({ t: 'r', value: r.value, ts: r.eventTime ?? this.clock(), readAt, bytes: r.bytes, split: got.split }))) return true;
    }
    for (const bad of got.batch.bad) {
      src.bad++;
      this.outputs.dead('source', bad.reason, bad.raw, bad.where, true);
    }
    src.splitsDone = this.splits.doneCount;
    await push({ t: 'm', split: got.split, done: got.batch.done, readAt });
    return true;
  }

  // ---- the steps' loops -------------------------------------------------------------------------------------

  private async runSteps(first: Element[]): Promise<void> {
    const n = this.execs.length;
    const links = Array.from({ length: n + 1 }, (_, i) => this.link(i));
    this.inlets = links.map((l) => l.inlet);
    this.outlets = links.map((l) => l.outlet);
    this.queues = links.flatMap((l) => (l.inlet === (l.outlet as unknown) ? [l.inlet] : [l.inlet, l.outlet]));
    this.metrics.queueDepths = () => this.outlets.map((q) => q.size);
    if (this.killed) for (const q of this.queues) q.close(); // killed while starting: no loop may wait
    const loops = [this.sourceLoop(first), ...this.execs.map((_, i) => this.stageLoop(i)), this.sinkLoop()];
    try {
      await Promise.all(loops);
    } catch (err) {
      for (const q of this.queues) q.close();
      await Promise.allSettled(loops);
      throw err;
    }
    // A commit that failed in the background ended the loops: the job fails with it.
    if (this.commitFailure) throw this.commitFailure;
  }

  private inlets: Inlet[] = [];
  private outlets: Outlet[] = [];

  private async sourceLoop(first: Element[]): Promise<void> {
    const q = this.inlets[0]!;
    const push = async (el: Element) => {
      this.metrics.source.waiting = q.size >= q.capacity;
      const ok = await q.put(el);
      this.metrics.source.waiting = false;
      return ok;
    };
    for (const el of first) await push(el);
    while (!this.killed && !this.stopping) {
      const c = this.control();
      if (c && !(await push(c))) return;
      const more = await this.read(push, this.pollMs);
      if (this.outputs.pending > 0) await this.outputs.flush();
      if (!more) {
        await push({ t: 'e', readAt: performance.now() });
        return;
      }
    }
    if (this.stopping && !this.killed) await push(this.barrier(true));
  }

  private async stageLoop(i: number): Promise<void> {
    const exec = this.execs[i]!;
    const input = this.outlets[i]!;
    const output = this.inlets[i + 1]!;
    for (;;) {
      const els = await input.take(64);
      if (els.length === 0 || this.killed) return;
      for (const el of els) {
        const out: Element[] = [];
        await exec.handle(el, out);
        if (this.outputs.pending > 0) await this.outputs.flush();
        for (const o of out) if (!(await output.put(o))) return;
        if (el.t === 'e' || (el.t === 'b' && el.final)) return;
      }
    }
  }

  private async sinkLoop(): Promise<void> {
    const input = this.outlets[this.outlets.length - 1]!;
    for (;;) {
      const els = await input.take(this.readBatch);
      if (els.length === 0 || this.killed) return;
      if (await this.toSink(els)) return;
    }
  }

  // ---- the sink, checkpoints -------------------------------------------------------------------------------

  /** Writes the records among `els` and commits the barriers among them, in order. True at the end of the job. */
  private async toSink(els: Element[]): Promise<boolean> {
    let values: unknown[] = [];
    let readAts: number[] = [];
    const write = async () => {
      if (values.length === 0) return;
      const batch = values;
      const times = readAts;
      values = [];
      readAts = [];
      let refused = new Set<number>();
      try {
        await this.writer.write(batch);
      } catch (err) {
        // Records the sink named as bad are dead letters; any other failure fails the job as before.
        if (!isBadRecords(err)) throw err;
        refused = new Set(err.rejected.map((r) => r.index));
        for (const r of err.rejected) this.outputs.dead('sink', r.reason, withoutBigInts(batch[r.index]));
        await this.outputs.flush(); // the end of the input commits nothing when checkpoints are off
      }
      const now = performance.now();
      this.metrics.sink.records += batch.length - refused.size;
      this.metrics.sink.writes++;
      for (const [i, t] of times.entries()) if (!refused.has(i)) this.metrics.recordLatency(now - t);
    };
    for (const el of els) {
      if (el.t === 'r') {
        values.push(el.value);
        readAts.push(el.readAt);
      } else if (el.t === 'b') {
        await write();
        await this.settleCommit();
        // A barrier that came through an exchange after this process's source ended carries no positions: they are
        // the final ones.
        const positions = el.positions ?? this.splits.snapshot();
        const watermarks = el.positions ? el.watermarks : (this.execs[0] as StatelessExec | undefined)?.watermarkState();
        this.nextEpoch = Math.max(this.nextEpoch, el.epoch + 1);
        if (el.final) {
          await this.commit(el.epoch, positions, watermarks, 'final');
          return true;
        }
        // The sink goes on with the next epoch's records while this one commits (at-least-once output allows it;
        // state after the barrier is already the next epoch's). The source injects no barrier until it is done.
        await this.flushForCommit();
        const commit = this.commit(el.epoch, positions, watermarks, 'barrier', true);
        this.pendingCommit = commit;
        // Surfaced by settleCommit at the next barrier; and at once, since without it no barrier comes again.
        commit.catch((err: unknown) => {
          this.commitFailure ??= err instanceof Error ? err : new Error(String(err));
          for (const q of this.queues) q.close();
        });
      } else if (el.t === 'e') {
        await write();
        await this.settleCommit();
        // The end of a bounded input is a checkpoint too: a finished job run again has nothing left to do.
        if (this.checkpointMs > 0) await this.commit(this.nextEpoch++, this.splits.snapshot(), (this.execs[0] as StatelessExec).watermarkState(), 'end');
        return true;
      }
    }
    await write();
    await this.outputs.flush();
    return false;
  }

  /** The commit of the last barrier, while it runs. */
  private pendingCommit: Promise<void> | undefined;
  private commitFailure: Error | undefined;

  /** Waits for the commit in flight, if any; throws what it failed with. */
  private async settleCommit(): Promise<void> {
    const pending = this.pendingCommit;
    this.pendingCommit = undefined;
    if (pending) await pending;
  }

  /** What an epoch's records wrote must be durable before the epoch commits. */
  private async flushForCommit(): Promise<void> {
    await this.writer.flush();
    await this.outputs.durable();
  }

  private async commit(epoch: number, positions: Checkpoint['positions'], watermarks: BarrierEl['watermarks'], how: CommitKind, flushed = false): Promise<void> {
    if (this.killed) return;
    const started = performance.now();
    if (!flushed) await this.flushForCommit();
    if (this.killed) return;
    const checkpoint: Checkpoint = { epoch, positions, at: Date.now() };
    if (watermarks !== undefined) checkpoint.watermarks = watermarks;
    await this.commitEpoch(checkpoint, how);
    this.barrierInFlight = false;
    // Not awaited: a source trimming its log must not hold the next epoch up.
    void this.splits.committed(positions);
    const c = this.metrics.checkpoints;
    c.count++;
    c.lastEpoch = epoch;
    c.lastAt = checkpoint.at;
    c.lastDurationMs = performance.now() - started;
    this.emit('checkpoint', checkpoint);
  }
}

function positiveInt(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer, got ${n}`);
  return n;
}
