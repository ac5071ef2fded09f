/**
 * The workload of `npm run bench:pipeline`: a keyed windowed count over generator records, at 1 or more chained keyed
 * stages, run by shardflow's local runner (`startJob`) in stream or batch mode.
 *
 * Stage 1 counts records per key (`k`, ~1000 keys) per tumbling event-time window; each further stage re-keys the
 * previous stage's results into 10× fewer buckets (`key % n`: 1000 → 100 → 10 keys) and sums their counts in the same
 * tumbling window — the classic cascade of keyed aggregations (keyBy -> window/aggregate -> keyBy -> ...). Event
 * time is the source's clock at read (no `eventTime` on the generator), so watermarks follow the wall clock.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSnapshot } from '../cpu.js';
import { count, generator, pipeline, sum, tumbling, type JobHandle, type Sink, type Source, type WindowResult } from '../../../src/processing/index.js';

export interface Rec {
  k: number;
}

export interface WorkloadSpec {
  /** Keys of stage 1: `k` is uniform in [0, keys). */
  keys: number;
  /** Chained keyed stages (1 or 3 in the default run). */
  depth: number;
  /** Tumbling window size, ms. */
  windowMs: number;
}

export type ModeSpec = { mode: 'stream' } | { mode: 'batch'; trigger: string };

/** What one measured run gives. */
export interface RunSample {
  /** Records the source read per second in the measured window. */
  recordsPerSec: number;
  /** Window results written to the sink in the measured window. */
  results: number;
  latency: { count: number; p50Ms: number; p99Ms: number; maxMs: number };
  /** Cores other processes kept busy meanwhile (host busy time minus this process's, /proc/stat), if known. */
  otherCores: number | undefined;
}

/** CPU use of the host outside this process over a measured window. */
export function hostLoad(): () => number | undefined {
  const a = cpuSnapshot([]);
  const t = performance.now();
  return () => {
    const b = cpuSnapshot([]);
    if (a.hostUs === undefined || b.hostUs === undefined) return undefined;
    return Math.max(0, b.hostUs - a.hostUs - (b.clientUs - a.clientUs)) / ((performance.now() - t) * 1000);
  };
}

/** The bucket of stage `stage` (2, 3, …): keys shrink 10× per stage, never below 1. */
export function bucket(key: number, stage: number, keys: number): number {
  const n = Math.max(1, Math.round(keys / 10 ** (stage - 1)));
  return key % n;
}

/** A sink that only counts what it is given: the sink costs nothing, so the table measures the pipeline. */
export function nullSink<T>(): { sink: Sink<T>; written: () => number } {
  let written = 0;
  return {
    written: () => written,
    sink: {
      name: 'null',
      idempotent: true,
      async open() {
        return {
          async write(records: T[]) {
            written += records.length;
          },
          async flush() {},
          async close() {},
        };
      },
    },
  };
}

/**
 * Wraps a source so that every read first yields to the event loop (`setImmediate`). Needed because an unpaced
 * generator answers every read without waiting on anything: the runner's loops then run on microtasks alone, and
 * timers (ticks, checkpoints, the batch interval check, `stop()`, this benchmark's own clock) never get to run — the
 * job cannot be stopped. Found while writing this benchmark; the runner (src/processing) is left as it is here.
 */
export function yielding<T>(source: Source<T>): Source<T> {
  return {
    name: source.name,
    bounded: source.bounded,
    splits: (n) => source.splits(n),
    async open(split, from) {
      const reader = await source.open(split, from);
      return {
        async read(max, waitMs) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          return reader.read(max, waitMs);
        },
        close: () => reader.close(),
      };
    },
  };
}

export function makeRecord(_i: number, rng: { int(n: number): number }, keys: number): Rec {
  return { k: rng.int(keys) };
}

/** The shardflow pipeline of the workload, unbounded, paced at `rate` records/s (unpaced without). */
export function benchSource(spec: WorkloadSpec, rate: number | undefined): Source<Rec> {
  return yielding(generator<Rec>({ seed: 7, make: (i, rng) => makeRecord(i, rng, spec.keys), bytes: () => 12, ...(rate ? { rate } : {}) }));
}

export function buildPipeline(spec: WorkloadSpec, rate: number | undefined, sink: Sink<WindowResult<number, number>>) {
  const source = benchSource(spec, rate);
  let s = pipeline(`bench-pipeline-d${spec.depth}`)
    .from(source)
    .keyBy((r) => r.k)
    .window(tumbling(spec.windowMs))
    .aggregate(count<Rec>());
  for (let stage = 2; stage <= spec.depth; stage++) {
    const st = stage;
    s = s
      .keyBy((r) => bucket(r.key, st, spec.keys))
      .window(tumbling(spec.windowMs))
      .aggregate(sum<WindowResult<number, number>>((r) => r.value));
  }
  return s.to(sink);
}

/**
 * The runner keeps one HDR histogram per job from its start; the benchmark wants only the measured window. The
 * histogram is private to `JobMetrics` (src/processing/metrics.ts has no reset), so this reaches in and resets it —
 * measuring around the runner rather than changing it.
 */
function resetLatency(job: JobHandle): void {
  const h = (job.metrics as unknown as { histogram?: { reset(): void } }).histogram;
  if (!h || typeof h.reset !== 'function') throw new Error('JobMetrics has no resettable histogram any more: update bench/lib/pipeline/workload.ts');
  h.reset();
}

/** Runs the workload on the local runner: `warmupS` unmeasured, then `seconds` measured; stops the job. */
export async function runShardflow(spec: WorkloadSpec, mode: ModeSpec, rate: number | undefined, warmupS: number, seconds: number): Promise<RunSample> {
  const out = nullSink<WindowResult<number, number>>();
  const p = buildPipeline(spec, rate, out.sink);
  const job = p.start({
    mode: mode.mode,
    ...(mode.mode === 'batch' ? { trigger: mode.trigger } : {}),
    checkpointInterval: false,
  });
  let failed: unknown;
  job.done.catch((err) => (failed = err));
  // Batch mode: reads and group processing take turns, so the source's read rate over a window shorter than a few
  // cycles says little. There the rate is the records of the groups completed in the window over the time between
  // the first and the last completion; the window is stretched until it holds 3 completions (at most 4x `seconds`).
  const completions: Array<{ at: number; records: number }> = [];
  job.on('batch', (b: { records: number }) => completions.push({ at: performance.now(), records: b.records }));
  await sleep(warmupS * 1000);
  if (failed) throw failed;
  resetLatency(job);
  const load = hostLoad();
  const r0 = job.metrics.source.records;
  const w0 = out.written();
  const t0 = performance.now();
  const c0 = completions.length;
  await sleep(seconds * 1000);
  if (mode.mode === 'batch') {
    const deadline = t0 + 4 * seconds * 1000;
    while (completions.length - c0 < 3 && performance.now() < deadline && !failed) await sleep(20);
  }
  const r1 = job.metrics.source.records;
  const w1 = out.written();
  const t1 = performance.now();
  const lat = job.metrics.latency();
  const otherCores = load();
  await job.stop();
  if (failed) throw failed;
  let recordsPerSec = ((r1 - r0) * 1000) / (t1 - t0);
  const done = completions.slice(c0);
  if (mode.mode === 'batch' && done.length >= 2) {
    const recs = done.slice(1).reduce((a, c) => a + c.records, 0);
    recordsPerSec = (recs * 1000) / (done.at(-1)!.at - done[0]!.at);
  }
  return {
    recordsPerSec,
    results: w1 - w0,
    otherCores,
    latency: { count: lat.count, p50Ms: lat.p50Ms, p99Ms: lat.p99Ms, maxMs: lat.maxMs },
  };
}
