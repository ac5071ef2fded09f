/**
 * Closed-loop load: `concurrency` async loops, each issuing one operation and awaiting it before the next, on keys
 * drawn uniformly from the keyspace. Requests from concurrent loops share the clients' pipelined connections.
 *
 * A run is a warm-up (operations issued, nothing recorded) followed by the measured window, without a pause between
 * them. An operation counts — towards ops/s and into the latency histogram (µs) — if it completes inside the window.
 */
import hdr from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import type { KvTarget } from './targets.js';
import type { OpName } from './args.js';
import { cpuSnapshot, type CpuSnapshot } from './cpu.js';

export interface Sample {
  ops: number;
  seconds: number;
  opsPerSec: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  errors: number;
  /** Gets that did not return the stored value. */
  misses: number;
  /** CPU time per operation in the window: this process (the client), and the server processes together. */
  clientCpuUsPerOp: number;
  serverCpuUsPerOp: number | undefined;
  /** Cores busy with other processes on the host (neither the client nor the servers) during the window. */
  otherCores: number | undefined;
  /** The measured window on the monotonic clock, in µs (the clock V8's .cpuprofile timestamps use). */
  windowStartUs: number;
  windowEndUs: number;
}

export interface LoadSpec {
  op: OpName;
  concurrency: number;
  warmupSeconds: number;
  seconds: number;
  keys: string[];
  value: string;
}

/** Stops a run early once this many operations have failed. */
const MAX_ERRORS = 100;

export async function runLoad(target: KvTarget, spec: LoadSpec): Promise<Sample> {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
  const { keys, value } = spec;
  const n = keys.length;
  const start = performance.now();
  const monotonicStartUs = Number(process.hrtime.bigint() / 1000n);
  const windowStart = start + spec.warmupSeconds * 1000;
  const windowEnd = windowStart + spec.seconds * 1000;
  let stop = false;
  let ops = 0;
  let errors = 0;
  let misses = 0;
  let firstError: unknown;

  const call =
    spec.op === 'put'
      ? (key: string) => target.put(key, value)
      : async (key: string) => {
          if ((await target.get(key)) !== value) misses++;
        };

  const loop = async () => {
    while (!stop) {
      const key = keys[Math.floor(Math.random() * n)]!;
      const t0 = performance.now();
      try {
        await call(key);
      } catch (err) {
        errors++;
        firstError ??= err;
        if (errors >= MAX_ERRORS) stop = true;
        continue;
      }
      const t1 = performance.now();
      if (t1 >= windowStart) {
        if (t1 > windowEnd) {
          stop = true;
          return;
        }
        ops++;
        histogram.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
      }
    }
  };
  let cpuStart: CpuSnapshot | undefined;
  let cpuEnd: CpuSnapshot | undefined;
  const startTimer = setTimeout(() => (cpuStart = cpuSnapshot(target.serverPids)), windowStart - start);
  const timer = setTimeout(() => {
    stop = true;
    cpuEnd = cpuSnapshot(target.serverPids);
  }, windowEnd - start);
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, loop));
  } finally {
    clearTimeout(startTimer);
    clearTimeout(timer);
  }
  cpuStart ??= cpuSnapshot(target.serverPids);
  cpuEnd ??= cpuSnapshot(target.serverPids);
  const perOp = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || ops === 0 ? undefined : (b - a) / ops;
  if (errors >= MAX_ERRORS) {
    histogram.destroy();
    throw new Error(`${target.name} ${spec.op}: ${errors} operations failed; first: ${String(firstError)}`, {
      cause: firstError,
    });
  }
  const sample: Sample = {
    ops,
    seconds: spec.seconds,
    opsPerSec: ops / spec.seconds,
    meanUs: histogram.mean,
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    p999Us: histogram.getValueAtPercentile(99.9),
    maxUs: histogram.maxValue,
    errors,
    misses,
    clientCpuUsPerOp: perOp(cpuStart.clientUs, cpuEnd.clientUs) ?? 0,
    serverCpuUsPerOp: perOp(cpuStart.serversUs, cpuEnd.serversUs),
    otherCores:
      cpuStart.hostUs === undefined || cpuEnd.hostUs === undefined || cpuStart.serversUs === undefined || cpuEnd.serversUs === undefined
        ? undefined
        : Math.max(
            0,
            (cpuEnd.hostUs - cpuStart.hostUs - (cpuEnd.clientUs - cpuStart.clientUs) - (cpuEnd.serversUs - cpuStart.serversUs)) /
              (spec.seconds * 1e6),
          ),
    windowStartUs: monotonicStartUs + spec.warmupSeconds * 1e6,
    windowEndUs: monotonicStartUs + (spec.warmupSeconds + spec.seconds) * 1e6,
  };
  histogram.destroy();
  return sample;
}

/** The median of some numbers (mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
