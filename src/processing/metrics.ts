/**
 * A running job's metrics, kept as plain counters a live view reads at any time (`job.metrics.snapshot()`):
 * records in and out per stage, source and sink totals, dead letters, late records, queue depths, checkpoints,
 * batches, and end-to-end event latency — from the source read of a record to the sink's acceptance of the result it
 * led to — in an HDR histogram (µs resolution, reported in ms).
 */
import hdr from 'hdr-histogram-js';

/**
 * Records in and out of one stage, in a {@link MetricsSnapshot}.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type StageMetrics } from 'shardflow';
 * const result = await pipeline('odd').from(fromArray([1, 2, 3])).filter((n) => n % 2 === 1).to(collect<number>().sink).run();
 * const [stage]: StageMetrics[] = result.metrics.stages;
 * stage; // { id: 'chain-0', kind: 'stateless', in: 3, out: 2 }
 * ```
 */
export interface StageMetrics {
  id: string;
  kind: 'stateless' | 'keyed';
  in: number;
  out: number;
}

/**
 * End-to-end event latency of a job (source read to sink acceptance), in ms, in a {@link MetricsSnapshot}.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect, type LatencySummary } from 'shardflow';
 * const result = await pipeline('lat').from(generator({ count: 1_000, make: (i) => i })).to(collect<number>().sink).run();
 * const latency: LatencySummary = result.metrics.latency;
 * console.log(`${latency.count} records, p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms`);
 * ```
 */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/**
 * A job's metrics at one moment: what `job.metrics.snapshot()` returns and a {@link JobResult} carries.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type MetricsSnapshot } from 'shardflow';
 * const result = await pipeline('m').from(fromArray(['1', 'x'])).map((s) => JSON.parse(s) as number).to(collect<number>().sink).run();
 * const m: MetricsSnapshot = result.metrics;
 * [m.state, m.source.records, m.sink.records, m.deadLetters]; // ['finished', 2, 1, 1]
 * ```
 */
export interface MetricsSnapshot {
  job: string;
  mode: 'stream' | 'batch';
  state: 'running' | 'finished' | 'stopped' | 'killed' | 'failed';
  startedAt: number;
  elapsedMs: number;
  /** `pending`: records waiting at the source, unread (as the source estimates; 0 where it cannot tell). */
  source: { records: number; bytes: number; bad: number; splits: number; splitsDone: number; waiting: boolean; pending: number };
  stages: StageMetrics[];
  sink: { records: number; writes: number };
  deadLetters: number;
  late: number;
  /** Elements waiting in each queue (stream mode): before stage 0, …, before the sink. */
  queues: number[];
  batches: { count: number; lastTrigger: string | undefined; lastSize: number };
  checkpoints: { count: number; lastEpoch: number | undefined; lastAt: number | undefined; lastDurationMs: number | undefined };
  latency: LatencySummary;
}

/**
 * Live counters of one job; the runner writes them, anyone may read a {@link snapshot}.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect } from 'shardflow';
 * const job = pipeline('live').from(generator({ count: 300, rate: 1_000, make: (i) => i })).to(collect<number>().sink).start();
 * const timer = setInterval(() => { const m = job.metrics.snapshot(); console.log(m.sink.records, m.latency.p99Ms); }, 100);
 * await job.done;
 * clearInterval(timer);
 * ```
 */
export class JobMetrics {
  state: MetricsSnapshot['state'] = 'running';
  readonly startedAt = Date.now();
  readonly source = { records: 0, bytes: 0, bad: 0, splits: 0, splitsDone: 0, waiting: false, pending: 0 };
  readonly sink = { records: 0, writes: 0 };
  deadLetters = 0;
  late = 0;
  readonly batches = { count: 0, lastTrigger: undefined as string | undefined, lastSize: 0 };
  readonly checkpoints = {
    count: 0,
    lastEpoch: undefined as number | undefined,
    lastAt: undefined as number | undefined,
    lastDurationMs: undefined as number | undefined,
  };
  /** Read by {@link snapshot}: the runner sets it to report its queue depths. */
  queueDepths: () => number[] = () => [];
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

  constructor(
    readonly job: string,
    readonly mode: 'stream' | 'batch',
    readonly stages: StageMetrics[],
  ) {}

  /** Records one end-to-end latency, in ms (fractions kept to the µs). */
  recordLatency(ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  latency(): LatencySummary {
    const h = this.histogram;
    const ms = (us: number) => us / 1000;
    return {
      count: h.totalCount,
      p50Ms: ms(h.getValueAtPercentile(50)),
      p99Ms: ms(h.getValueAtPercentile(99)),
      maxMs: ms(h.maxValue),
      meanMs: ms(h.mean),
    };
  }

  snapshot(): MetricsSnapshot {
    return {
      job: this.job,
      mode: this.mode,
      state: this.state,
      startedAt: this.startedAt,
      elapsedMs: Date.now() - this.startedAt,
      source: { ...this.source },
      stages: this.stages.map((s) => ({ ...s })),
      sink: { ...this.sink },
      deadLetters: this.deadLetters,
      late: this.late,
      queues: this.queueDepths(),
      batches: { ...this.batches },
      checkpoints: { ...this.checkpoints },
      latency: this.latency(),
    };
  }
}
