/**
 * The reference: the same keyed windowed count written with RxJS, in this process, over the same generator source
 * (same records, same reads of 256, same pacing, same yield to the event loop before each read).
 *
 * Semantics match the runner's: event time is the clock at read; after each read comes a watermark `max event time - 1`;
 * a keyed tumbling window fires when the watermark reaches `end - 1`, its results carry event time `end - 1` and the
 * read time of the watermark that fired them; end-to-end latency is read -> the sink's subscriber, in an HDR
 * histogram (µs). What RxJS does not have, and this reference therefore does not do: state kept by key slot in a
 * state backend, checkpoints, bounded queues with backpressure between steps, dead letters.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import hdr from 'hdr-histogram-js';
import { Observable, mergeMap, from, type OperatorFunction } from 'rxjs';
import { benchSource, bucket, hostLoad, type RunSample, type WorkloadSpec } from './workload.js';

type El =
  | { t: 'r'; key: number; value: number; ts: number; readAt: number }
  | { t: 'w'; wm: number; readAt: number };

/** Reads the source in a loop, as the runner's source loop does, and emits its records then a watermark per read. */
function source$(spec: WorkloadSpec, rate: number | undefined, counter: { records: number }): Observable<El> {
  return new Observable<El>((subscriber) => {
    let stopped = false;
    (async () => {
      const src = benchSource(spec, rate);
      const [split] = await src.splits(1);
      const reader = await src.open(split!);
      let max = -Infinity;
      let emitted = -Infinity;
      while (!stopped) {
        const batch = await reader.read(256, 50);
        const readAt = performance.now();
        for (const r of batch.records) {
          const ts = Date.now();
          if (ts > max) max = ts;
          counter.records++;
          subscriber.next({ t: 'r', key: r.value.k, value: 1, ts, readAt });
        }
        const wm = max - 1;
        if (wm > emitted) {
          emitted = wm;
          subscriber.next({ t: 'w', wm, readAt });
        }
      }
      await reader.close();
      subscriber.complete();
    })().catch((err) => subscriber.error(err));
    return () => {
      stopped = true;
    };
  });
}

/** keyBy(keyFn) -> tumbling(windowMs) -> sum(value): a keyed event-time window as an RxJS operator. */
function keyedWindowSum(keyFn: (key: number) => number, windowMs: number): OperatorFunction<El, El> {
  return (input) => {
    // window start -> key -> sum
    const windows = new Map<number, Map<number, number>>();
    let watermark = -Infinity;
    return input.pipe(
      mergeMap((el) => {
        if (el.t === 'r') {
          const start = el.ts - (el.ts % windowMs);
          if (start + windowMs - 1 <= watermark) return []; // late: dropped, as the runner does without lateTo
          let w = windows.get(start);
          if (!w) windows.set(start, (w = new Map()));
          const k = keyFn(el.key);
          w.set(k, (w.get(k) ?? 0) + el.value);
          return [];
        }
        watermark = el.wm;
        const out: El[] = [];
        for (const [start, w] of [...windows].sort((a, b) => a[0] - b[0])) {
          const end = start + windowMs;
          if (end - 1 > el.wm) break;
          windows.delete(start);
          for (const [key, value] of w) out.push({ t: 'r', key, value, ts: end - 1, readAt: el.readAt });
        }
        out.push(el);
        return from(out);
      }),
    );
  };
}

/** Runs the RxJS reference: `warmupS` unmeasured, then `seconds` measured. */
export async function runRx(spec: WorkloadSpec, rate: number | undefined, warmupS: number, seconds: number): Promise<RunSample> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const counter = { records: 0 };
  let written = 0;
  let stream = source$(spec, rate, counter).pipe(keyedWindowSum((k) => k, spec.windowMs));
  for (let stage = 2; stage <= spec.depth; stage++) {
    const st = stage;
    stream = stream.pipe(keyedWindowSum((k) => bucket(k, st, spec.keys), spec.windowMs));
  }
  let failed: unknown;
  const sub = stream.subscribe({
    next(el) {
      if (el.t !== 'r') return;
      written++;
      histogram.recordValue(Math.max(1, Math.round((performance.now() - el.readAt) * 1000)));
    },
    error(err) {
      failed = err;
    },
  });
  await sleep(warmupS * 1000);
  histogram.reset();
  const load = hostLoad();
  const r0 = counter.records;
  const w0 = written;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const r1 = counter.records;
  const w1 = written;
  const t1 = performance.now();
  const otherCores = load();
  sub.unsubscribe();
  if (failed) throw failed;
  const ms = (us: number) => us / 1000;
  return {
    recordsPerSec: ((r1 - r0) * 1000) / (t1 - t0),
    results: w1 - w0,
    otherCores,
    latency: {
      count: histogram.totalCount,
      p50Ms: ms(histogram.getValueAtPercentile(50)),
      p99Ms: ms(histogram.getValueAtPercentile(99)),
      maxMs: ms(histogram.maxValue),
    },
  };
}
