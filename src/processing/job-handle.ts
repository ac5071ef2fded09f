/**
 * What a job is to its callers and its steps: how to run one (mode, trigger, checkpoints, queues), its handle and
 * result, and the inlets and outlets that join its steps (bounded queues, batch queues, exchanges between nodes).
 */
import type { EventEmitter } from 'node:events';
import type { DeadLetter } from './plan.js';
import type { Sink } from './connectors/types.js';
import type { Element } from './elements.js';
import type { JobMetrics, MetricsSnapshot } from './metrics.js';
import type { Checkpoint, StateBackend } from './state.js';
import type { TriggerInput } from './triggers.js';
import type { Duration } from './units.js';

/**
 * How a job runs: `stream`, each record as it arrives, or `batch`, in groups a trigger releases (see the runner).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type Mode } from 'shardflow';
 * const p = pipeline('m').from(fromArray([1, 2, 3])).to(collect<number>().sink);
 * const modes: Mode[] = ['stream', 'batch'];
 * for (const mode of modes) await p.run({ mode }); // the same results; only when they appear differs
 * ```
 */
export type Mode = 'stream' | 'batch';

/** What brought a commit: a checkpoint barrier, a final barrier (a stop), or the end of the input. */
export type CommitKind = 'barrier' | 'final' | 'end';

/**
 * How to run a job in this process: what {@link Pipeline.run}, {@link Pipeline.start}, `runJob` and `startJob` take.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect, MemoryStateBackend, type JobRunOptions } from 'shardflow';
 * const options: JobRunOptions = { mode: 'batch', trigger: 'interval=1s,count=500', checkpointInterval: '5s', state: new MemoryStateBackend() };
 * await pipeline('opts').from(generator({ count: 2_000, make: (i) => i })).to(collect<number>().sink).run(options);
 * ```
 */
export interface JobRunOptions {
  /** `stream` (default) or `batch`. */
  mode?: Mode;
  /** Batch mode: when a group is processed, e.g. `interval=5s,count=1000,bytes=1mb`. Default `interval=1s,count=1000`. */
  trigger?: TriggerInput;
  /** How often to checkpoint (`5s`, ms); `false` or 0: never. Default `10s`. */
  checkpointInterval?: Duration | false;
  /** Where keyed state and checkpoints go. Default: a fresh `MemoryStateBackend` (state.ts). */
  state?: StateBackend;
  /** Stream mode: elements each queue between steps holds before the step feeding it waits. Default 256. */
  queueCapacity?: number;
  /** Records per source read. Default 256. */
  readBatch?: number;
  /** How often processing time advances (ticks through the pipeline). Default `100ms`. */
  tickInterval?: Duration;
  /** How long an unbounded source's read waits for records before giving control back. Default `50ms`. */
  pollInterval?: Duration;
  /** The processing-time clock. Default `Date.now`. */
  clock?: () => number;
  /** Splits to ask the source for. Default 1 (sources may return more, e.g. one per file). */
  parallelism?: number;
  /** Overrides the plan's dead-letter sink. */
  deadLetters?: Sink<DeadLetter>;
}

/**
 * How a job ended: what `done`, `stop()`, `kill()` and {@link Pipeline.run} resolve with.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type JobResult } from 'shardflow';
 * const result: JobResult = await pipeline('r').from(fromArray(['a', 'b'])).to(collect<string>().sink).run();
 * [result.job, result.state, result.metrics.sink.records]; // ['r', 'finished', 2]
 * result.checkpoint?.epoch; // the last committed epoch
 * ```
 */
export interface JobResult {
  job: string;
  state: 'finished' | 'stopped' | 'killed';
  metrics: MetricsSnapshot;
  /** The last checkpoint committed (by this run or an earlier one). */
  checkpoint: Checkpoint | undefined;
}

/**
 * A running job. Events: `checkpoint` (a {@link Checkpoint} committed), `batch` (`{ reason, records }`).
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect, type JobHandle, type Checkpoint } from 'shardflow';
 * const job: JobHandle = pipeline('h').from(generator({ rate: 1_000, make: (i) => i })).to(collect<number>().sink).start({ checkpointInterval: '100ms' });
 * job.on('checkpoint', (c: Checkpoint) => console.log('committed epoch', c.epoch));
 * await new Promise((resolve) => setTimeout(resolve, 300));
 * const result = await job.stop(); // takes a final checkpoint
 * result.state; // 'stopped'
 * ```
 */
export interface JobHandle extends EventEmitter {
  readonly name: string;
  /** Live counters; `metrics.snapshot()` for a view. */
  readonly metrics: JobMetrics;
  /** Settles when the job ends: finished (input ended), stopped or killed; rejects if it failed. */
  readonly done: Promise<JobResult>;
  /** Stops reading, takes a final checkpoint, and ends. Resolves like `done`. */
  stop(): Promise<JobResult>;
  /** Ends at once, committing nothing more — what a crash leaves. Resolves like `done`. */
  kill(): Promise<JobResult>;
}

/** Where one step of a stream-mode job puts its elements. */
export interface Inlet {
  put(el: Element): Promise<boolean>;
  close(): void;
  readonly size: number;
  readonly capacity: number;
}

/** Where one step of a stream-mode job takes its elements from. */
export interface Outlet {
  take(max: number): Promise<Element[]>;
  close(): void;
  readonly size: number;
}
