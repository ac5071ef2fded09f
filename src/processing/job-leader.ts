/**
 * The leader of a job on the compute tier (the compute node that won the job's election) runs it in generations.
 * A generation is a set of workers (processing/cluster-worker.ts), one per ready compute node (in either mode),
 * sharing one run of the job's state. The leader:
 *
 * - starts a generation from the last checkpoint: a new run of the state (which fences every earlier one), the
 *   workers' placements, `job.worker.start` on each;
 * - commits epochs: each worker reports an epoch when it has written its state changes; once every worker has (or
 *   has ended), the leader writes the checkpoint record — positions of every split, the watermark state — and
 *   answers the reports with it. That write is the commit point of the epoch for the whole job;
 * - **rescales** when compute membership changes: it stops the generation at a checkpoint (a final barrier on every
 *   worker) and starts the next on the new set of nodes from that checkpoint — nothing is read twice, nothing lost,
 *   the job is not restarted (a pause of about one checkpoint);
 * - **recovers** when a worker fails or its node dies: it kills the generation and starts the next from the last
 *   checkpoint; what the dead generation had not committed is invisible to the new run.
 *
 * @module
 */
import type { MemberView, PeerPool } from '../client/index.js';
import { ClosedError, InvalidArgumentError, UnavailableError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import type { EpochReport, WorkerPlacement } from './cluster-worker.js';
import type { JobSpec } from './job-host.js';
import type { MetricsSnapshot } from './metrics.js';
import type { Checkpoint, CheckpointWriter, CommitRecord, SharedStateBackend } from './state.js';
import type { WatermarkState } from './stateless-stage.js';

export interface JobLeaderOptions {
  spec: JobSpec;
  nodeId: string;
  backend: SharedStateBackend;
  members: MemberView;
  pool: PeerPool;
  log: Logger;
  /** Longest wait for a worker's call (start, stop, kill). */
  callTimeoutMs?: number;
}

/** How a job ended on this leader: `abandoned` when it lost the lead (another node leads the job now). */
export type LeaderOutcome = 'finished' | 'stopped' | 'abandoned';

/** How long a node that refused a worker is left out. */
const EXCLUDE_MS = 5000;

type GenerationEnd = { kind: 'finished' } | { kind: 'stopped' } | { kind: 'failed'; why: string };

interface Waiter {
  epoch: number;
  resolve: (record: CommitRecord) => void;
  reject: (err: Error) => void;
}

/** One generation's bookkeeping: the latest report of each worker, the reports waiting for their epoch's commit. */
class Generation {
  readonly latest: Array<EpochReport | undefined>;
  readonly waiters: Waiter[] = [];
  stopping = false;
  committing = false;
  settle!: (end: GenerationEnd) => void;
  readonly ended: Promise<GenerationEnd>;
  done = false;

  constructor(
    readonly number: number,
    readonly writer: CheckpointWriter,
    readonly placements: WorkerPlacement[],
  ) {
    this.latest = placements.map(() => undefined);
    this.ended = new Promise((r) => (this.settle = (end) => {
      if (this.done) return;
      this.done = true;
      r(end);
    }));
  }
}

export class JobLeader {
  private generation: Generation | undefined;
  /** Nodes left out of generations until a time (they refused a worker). */
  private readonly excluded = new Map<string, number>();
  private generations = 0;
  private stopRequested = false;
  private abandoned = false;
  private readonly callTimeoutMs: number;
  private unwatch: (() => void) | undefined;
  /** The workers' latest figures, merged (for `shardflow jobs`). */
  metrics: MetricsSnapshot | undefined;
  onCheckpoint: (checkpoint: Checkpoint) => void = () => undefined;
  /** A generation started on these compute nodes (worker order). */
  onGeneration: (generation: number, workers: string[]) => void = () => undefined;

  constructor(private readonly options: JobLeaderOptions) {
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
  }

  /** Runs generations until the job finishes or is stopped. */
  async run(): Promise<LeaderOutcome> {
    const { members } = this.options;
    this.unwatch = members.onChange(() => this.membershipChanged());
    try {
      for (;;) {
        if (this.abandoned) return 'abandoned';
        if (this.stopRequested) return 'stopped';
        const end = await this.runGeneration();
        if (this.abandoned) return 'abandoned';
        if (end.kind === 'finished') return 'finished';
        if (end.kind === 'stopped' && this.stopRequested) return 'stopped';
        if (end.kind === 'failed') {
          this.options.log.warn('generation failed; starting the next from the last checkpoint', { job: this.options.spec.id, why: end.why });
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      this.unwatch?.();
    }
  }

  /** Stops the job at a checkpoint (a final barrier on every worker); `run` then resolves with `stopped`. */
  requestStop(): void {
    this.stopRequested = true;
    if (this.generation) this.stopGeneration(this.generation);
  }

  /**
   * This node no longer leads the job (its lease lapsed): the generation is killed at once, nothing more is
   * committed, and `run` resolves with `abandoned`. The next leader starts from the last checkpoint.
   */
  abandon(why: string): void {
    this.abandoned = true;
    this.generation?.settle({ kind: 'failed', why: `lost the lead: ${why}` });
  }

  /** A worker's report of an epoch: answered with the checkpoint record once the epoch is committed job-wide. */
  report(r: EpochReport): Promise<CommitRecord> {
    const g = this.generation;
    if (!g || g.number !== r.generation || g.done)
      return Promise.reject(new ClosedError(`generation ${r.generation} of job ${this.options.spec.id} is over`));
    if (r.index >= g.latest.length)
      return Promise.reject(new InvalidArgumentError(`generation ${r.generation} of job ${this.options.spec.id} has no worker ${r.index}`));
    g.latest[r.index] = r;
    const waiting = new Promise<CommitRecord>((resolve, reject) => g.waiters.push({ epoch: r.epoch, resolve, reject }));
    if (r.kind === 'final' && !g.stopping) this.stopGeneration(g); // a worker stopping (its node leaves) stops all
    void this.tryCommit(g);
    return waiting;
  }

  /** A worker of generation `generation` failed. */
  workerFailed(generation: number, index: number, why: string): void {
    const g = this.generation;
    if (g && g.number === generation) g.settle({ kind: 'failed', why: `worker ${index} failed: ${why}` });
  }

  private async runGeneration(): Promise<GenerationEnd> {
    const { spec, backend, members, log } = this.options;
    const writer = await backend.begin(spec.id);
    const now = Date.now();
    const nodes = members.ready('compute').filter((m) => (this.excluded.get(m.id) ?? 0) <= now);
    if (nodes.length === 0) return { kind: 'failed', why: 'no compute node is ready' };
    const workers = nodes.map((m) => ({ id: m.id, address: m.address }));
    const number = ++this.generations;
    const placements = workers.map((_, index): WorkerPlacement => ({ job: spec.id, generation: number, run: writer.run, workers, index }));
    const g = new Generation(number, writer, placements);
    this.generation = g;
    log.info('starting generation', { job: spec.id, generation: number, workers: workers.map((w) => w.id), fromEpoch: writer.checkpoint?.epoch ?? 0 });
    const started = await Promise.allSettled(
      placements.map((p) => this.call(p.workers[p.index]!, 'job.worker.start', { spec, placement: p, leader: this.options.nodeId })),
    );
    const refused = started.flatMap((r, i) => (r.status === 'rejected' ? [{ id: workers[i]!.id, why: String(r.reason) }] : []));
    if (refused.length === 0) this.onGeneration(number, workers.map((w) => w.id));
    else {
      // A node that would not start its worker (stopping, or its job host not up yet) sits the next generations out.
      for (const r of refused) this.excluded.set(r.id, Date.now() + EXCLUDE_MS);
      // When they may come back, look again: they may be ready by then (no membership change would say so).
      setTimeout(() => this.membershipChanged(), EXCLUDE_MS + 50).unref();
      g.settle({ kind: 'failed', why: `${refused.map((r) => r.id).join(', ')} did not start a worker: ${refused[0]!.why}` });
    }
    if (this.stopRequested) this.stopGeneration(g);
    const end = await g.ended;
    this.generation = undefined;
    for (const w of g.waiters.splice(0)) w.reject(new ClosedError(`generation ${number} of job ${spec.id} is over`));
    if (end.kind === 'failed') await this.killGeneration(g);
    return end;
  }

  /** Commits the oldest epoch every worker has reported (or ended before). */
  private async tryCommit(g: Generation): Promise<void> {
    if (g.committing || g.done) return;
    g.committing = true;
    try {
      for (;;) {
        if (g.waiters.length === 0) return;
        const epoch = Math.min(...g.waiters.map((w) => w.epoch));
        const ready = g.latest.every((r) => r !== undefined && (r.epoch >= epoch || r.kind !== 'barrier'));
        if (!ready) return;
        const reports = g.latest as EpochReport[];
        const checkpoint: Checkpoint = { epoch, positions: Object.assign({}, ...reports.map((r) => r.positions)), at: Date.now() };
        const watermarks = mergeWatermarks(reports.map((r) => r.watermarks as WatermarkState | undefined));
        if (watermarks) checkpoint.watermarks = watermarks as never;
        const record = await g.writer.write(checkpoint);
        this.metrics = mergeMetrics(reports.map((r) => r.metrics));
        this.onCheckpoint(checkpoint);
        const answered = g.waiters.filter((w) => w.epoch <= epoch);
        g.waiters.splice(0, g.waiters.length, ...g.waiters.filter((w) => w.epoch > epoch));
        for (const w of answered) w.resolve(record);
        if (reports.every((r) => r.kind !== 'barrier' && r.epoch <= epoch)) {
          g.settle(reports.every((r) => r.kind === 'end') ? { kind: 'finished' } : { kind: 'stopped' });
          return;
        }
      }
    } catch (err) {
      g.settle({ kind: 'failed', why: `checkpoint record: ${String(err)}` });
    } finally {
      g.committing = false;
    }
  }

  private membershipChanged(): void {
    const g = this.generation;
    if (!g || g.done || g.stopping) return;
    const ids = new Set(g.placements[0]!.workers.map((w) => w.id));
    const all = this.options.members;
    // A worker's node gone (its lease expired): the generation cannot commit any more.
    for (const id of ids) if (!all.get(id)) return g.settle({ kind: 'failed', why: `compute node ${id} left` });
    // Nodes joined or are draining: stop at a checkpoint and start again on the new set.
    const at = Date.now();
    const now = all.ready('compute').filter((m) => (this.excluded.get(m.id) ?? 0) <= at).map((m) => m.id);
    if (now.length !== ids.size || now.some((id) => !ids.has(id))) {
      this.options.log.info('compute nodes changed: rescaling at the next checkpoint', { job: this.options.spec.id, from: [...ids], to: now });
      this.stopGeneration(g);
    }
  }

  private stopGeneration(g: Generation): void {
    if (g.stopping || g.done) return;
    g.stopping = true;
    for (const p of g.placements)
      this.call(p.workers[p.index]!, 'job.worker.stop', { job: p.job, generation: p.generation }).catch((err: unknown) =>
        g.settle({ kind: 'failed', why: `could not stop worker ${p.index}: ${String(err)}` }),
      );
  }

  /** Ends every worker of a failed generation at once (what they had not committed is lost to the next run anyway). */
  private async killGeneration(g: Generation): Promise<void> {
    await Promise.allSettled(
      g.placements.map((p) => this.call(p.workers[p.index]!, 'job.worker.kill', { job: p.job, generation: p.generation })),
    );
  }

  private async call(worker: { id: string; address: string }, method: string, params: unknown): Promise<unknown> {
    const deadline = Date.now() + this.callTimeoutMs;
    const peer = this.options.pool.peerAt(worker.id, worker.address, deadline);
    try {
      return await peer.call(method, params, { timeoutMs: this.callTimeoutMs });
    } catch (err) {
      if (err instanceof Error) throw err;
      throw new UnavailableError(`compute node ${worker.id} did not answer ${method}`);
    }
  }
}

/** One watermark state from the workers' (each has its own splits): union of splits, the least emitted watermark. */
function mergeWatermarks(states: Array<WatermarkState | undefined>): WatermarkState | undefined {
  const present = states.filter((s): s is WatermarkState => s !== undefined);
  if (present.length === 0) return undefined;
  return {
    ids: present.flatMap((s) => s.ids),
    max: present.flatMap((s) => s.max),
    done: present.flatMap((s) => s.done),
    emitted: Math.min(...present.map((s) => s.emitted)),
  };
}

/** The workers' figures as one job's: counts summed; latency the worst worker's (a percentile does not add up). */
function mergeMetrics(snaps: MetricsSnapshot[]): MetricsSnapshot {
  const base = structuredClone(snaps[0]!);
  for (const s of snaps.slice(1)) {
    base.source.records += s.source.records;
    base.source.bytes += s.source.bytes;
    base.source.bad += s.source.bad;
    base.source.splits += s.source.splits;
    base.source.splitsDone += s.source.splitsDone;
    base.source.waiting ||= s.source.waiting;
    base.source.pending += s.source.pending ?? 0;
    s.stages.forEach((st, i) => {
      base.stages[i]!.in += st.in;
      base.stages[i]!.out += st.out;
    });
    base.sink.records += s.sink.records;
    base.sink.writes += s.sink.writes;
    base.deadLetters += s.deadLetters;
    base.late += s.late;
    base.latency.count += s.latency.count;
    base.latency.p50Ms = Math.max(base.latency.p50Ms, s.latency.p50Ms);
    base.latency.p99Ms = Math.max(base.latency.p99Ms, s.latency.p99Ms);
    base.latency.maxMs = Math.max(base.latency.maxMs, s.latency.maxMs);
  }
  return base;
}
