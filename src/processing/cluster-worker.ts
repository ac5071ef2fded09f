/**
 * One worker of a job spread over the compute tier. Every worker of a generation runs the whole plan on its share:
 *
 * - it reads the splits whose index is its own modulo the number of workers;
 * - before each keyed stage an exchange sends every record to the worker that owns its key's slot — slot owners by
 *   rendezvous hashing over the workers' ids (`pickByKey`), so a change of workers moves few slots — and that worker
 *   alone handles the key, in order, with its state in the storage tier (restoring only its slots' timers);
 * - before a sink that takes one writer (a file) an exchange sends every record to worker 0;
 * - an epoch commits in two phases: the worker writes its state changes ({@link SharedJobState.prepare}), reports its
 *   splits' positions to the job's leader, and the leader answers once every worker has, after writing the
 *   checkpoint record: the commit point for the whole job.
 *
 * A worker keeps nothing that the storage tier and the last checkpoint do not have, so the leader can stop a
 * generation at a checkpoint and start the next on other compute nodes (rescaling), or, after a failure, start the
 * next from the last checkpoint: records after it are read again and their effects on state were never committed.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { keySlot } from '../partitioning/index.js';
import { pickByKey } from '../dispatch/index.js';
import type { Json } from './connectors/types.js';
import type { Element, RecordEl } from './elements.js';
import { ExchangeIn, ExchangeOut, fromWire, toWire, type WireBatch } from './exchange.js';
import type { LogicalPlan } from './plan.js';
import { LocalJob, type CommitKind, type Inlet, type JobRunOptions, type Outlet } from './runner.js';
import { SplitSet } from './splits.js';
import { GroupedOutlet } from './batch-queue.js';
import type { Checkpoint, CommitRecord, JobState, SharedJobState, SharedStateBackend, StateBackend } from './state.js';
import type { MetricsSnapshot } from './metrics.js';

/** Where a worker stands in its generation. */
export interface WorkerPlacement {
  job: string;
  generation: number;
  /** The state backend's run all workers of this generation share. */
  run: number;
  /** The generation's workers, in index order. */
  workers: Array<{ id: string; address: string }>;
  index: number;
}

/** What a worker tells the leader when an epoch is ready on its side. */
export interface EpochReport {
  generation: number;
  index: number;
  epoch: number;
  kind: CommitKind;
  positions: Checkpoint['positions'];
  watermarks?: Json;
  metrics: MetricsSnapshot;
}

/** How a worker reaches the others and its leader (the job host gives it calls over the wire). */
export interface WorkerLinks {
  /** Sends a batch to worker `to`'s exchange before step `step`. */
  send(to: number, step: number, batch: WireBatch): Promise<void>;
  /** Reports an epoch; resolves with the checkpoint record once the leader has written it. */
  report(report: EpochReport): Promise<CommitRecord>;
}

const SLOTS = 4096;
/** An exchange buffers this many times a local queue's capacity, per channel. */
const EXCHANGE_DEPTH = 16;

export class ClusterWorker extends LocalJob {
  /** Exchange inputs by the step they feed. */
  private readonly inputs = new Map<number, ExchangeIn>();
  private readonly outs: ExchangeOut[] = [];
  protected override readonly warnWithoutSplits = false;
  /** Slot → index of the worker that owns it. */
  private readonly owners = new Uint16Array(SLOTS);

  constructor(
    plan: LogicalPlan,
    options: JobRunOptions & { state: SharedStateBackend },
    readonly placement: WorkerPlacement,
    private readonly links: WorkerLinks,
  ) {
    super(plan, options);
    const ids = placement.workers.map((w) => w.id);
    for (let slot = 0; slot < SLOTS; slot++) this.owners[slot] = ids.indexOf(pickByKey(String(slot), ids));
    // Inputs exist from the start: other workers may send before this one has opened its source.
    // Deeper than a local queue: a send is in flight for a round trip, and the sender should not stall meanwhile.
    const capacity = (options.queueCapacity ?? 256) * EXCHANGE_DEPTH;
    for (const step of this.exchangeSteps())
      this.inputs.set(step, new ExchangeIn(placement.workers.length, placement.index, capacity, (epoch) => this.pull(epoch)));
  }

  /** A batch another worker sent to the exchange before `step`; resolves when there is room for more. */
  deliver(step: number, from: number, els: unknown): Promise<void> {
    const input = this.inputs.get(step);
    if (!input) throw new InvalidArgumentError(`step ${step} of job ${this.placement.job} takes no exchange`);
    return input.accept(from, fromWire(els));
  }

  /** The steps that an exchange feeds: keyed stages, and a sink with one writer when there are several workers. */
  private exchangeSteps(): number[] {
    const W = this.placement.workers.length;
    const steps: number[] = [];
    this.plan.stages.forEach((s, i) => s.kind === 'keyed' && W > 1 && steps.push(i));
    if (W > 1 && !this.plan.sink.manyWriters) steps.push(this.plan.stages.length);
    return steps;
  }

  /** Another worker injected a checkpoint barrier: inject it here too, without waiting for this worker's timer. */
  private pull(epoch: number): void {
    if (epoch >= this.nextEpoch && !this.stopping) this.checkpointDue = true;
  }

  protected override openState(backend: StateBackend): Promise<JobState> {
    // The job's id, not its pipeline's name, names its state: two submissions of one file are two jobs.
    return (backend as SharedStateBackend).join(this.placement.job, this.placement.run);
  }

  protected override openSplits(restored: Checkpoint | undefined): Promise<SplitSet<unknown>> {
    const { index, workers } = this.placement;
    return SplitSet.open(this.plan.source, workers.length, restored?.positions, (i) => i % workers.length === index);
  }

  protected override ownsSlot(slot: number): boolean {
    return this.owners[slot] === this.placement.index;
  }

  protected override get workerName(): string {
    return `w${this.placement.index}`;
  }

  protected override link(i: number): { inlet: Inlet; outlet: Outlet } {
    const input = this.inputs.get(i);
    if (!input) return super.link(i);
    const stage = this.plan.stages[i];
    const route = stage?.kind === 'keyed' ? this.slotRoute(stage.keyFn) : () => 0;
    const { index } = this.placement;
    const group = this.groupBefore(i);
    const out = new ExchangeOut(
      this.placement.workers.length,
      index,
      route,
      (to, els) => (to === index ? input.accept(index, els) : this.links.send(to, i, toWire(els))),
      (this.options.queueCapacity ?? 256) * EXCHANGE_DEPTH,
    );
    this.outs.push(out);
    // Batch mode: what arrives from every worker is grouped on this side, so the step still waits for its own trigger.
    return { inlet: out, outlet: group ? new GroupedOutlet(input, group, this.options.readBatch ?? 256) : input };
  }

  /** Routes a record to its key's slot owner; a key that cannot be had stays here (the stage dead-letters it). */
  private slotRoute(keyFn: (value: unknown) => unknown): (el: RecordEl) => number {
    const cache = new Map<string, number>();
    return (el) => {
      let key: unknown;
      try {
        key = keyFn(el.value);
      } catch {
        return this.placement.index;
      }
      if (typeof key !== 'string' && !(typeof key === 'number' && Number.isFinite(key))) return this.placement.index;
      const keyStr = String(key);
      let owner = cache.get(keyStr);
      if (owner === undefined) {
        if (cache.size >= 65_536) cache.clear();
        cache.set(keyStr, (owner = this.owners[keySlot(keyStr)]!));
      }
      return owner;
    };
  }

  protected override async commitEpoch(checkpoint: Checkpoint, kind: CommitKind): Promise<void> {
    const store = this.store as SharedJobState;
    await store.prepare(checkpoint.epoch);
    const report: EpochReport = {
      generation: this.placement.generation,
      index: this.placement.index,
      epoch: checkpoint.epoch,
      kind,
      positions: checkpoint.positions,
      metrics: this.metrics.snapshot(),
    };
    if (checkpoint.watermarks !== undefined) report.watermarks = checkpoint.watermarks;
    const record = await this.links.report(report);
    await store.committed(record);
    // What this worker sent before the end must have reached the others before it says it is done.
    if (kind !== 'barrier') await Promise.all(this.outs.map((o) => o.drained()));
  }
}
