/**
 * Closed-loop call load: `concurrency` async loops, each issuing one call of the echo service and awaiting it before
 * the next. Calls from concurrent loops share the caller's connections (both systems pipeline them).
 *
 * A run is a warm-up (calls issued, nothing recorded) followed by the measured window, without a pause between
 * them. A call counts — towards calls/s and into the latency histogram (µs) — if it completes inside the window.
 */
import hdr from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import { cpuSnapshot, type CpuSnapshot } from '../cpu.js';
import type { CallTarget } from './targets.js';

export interface CallSample {
  calls: number;
  seconds: number;
  callsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  errors: number;
  /** Calls whose answer was not the payload sent. */
  wrong: number;
  /** CPU time per call in the window: this process (the caller), and the service processes together. */
  clientCpuUsPerCall: number;
  serverCpuUsPerCall: number | undefined;
  /** CPU per call of the system's processes that take no part in a call (shardflow's coordinator and storage node). */
  supportCpuUsPerCall: number | undefined;
  /** Cores busy with other processes on the host (none of the above) during the window. */
  otherCores: number | undefined;
  /** The measured window on the monotonic clock, in µs (the clock V8's .cpuprofile timestamps use). */
  windowStartUs: number;
  windowEndUs: number;
}

export interface CallLoadSpec {
  concurrency: number;
  warmupSeconds: number;
  seconds: number;
  /** Sent on every call; the answer must equal it (checked on `n` and `s`). */
  payload: { n: number; s: string };
  /** Checked before every call: once true, the loops stop (the benchmark is being interrupted). */
  cancelled?: () => boolean;
}

/** Stops a run early once this many calls have failed. */
const MAX_ERRORS = 100;

interface Snapshot extends CpuSnapshot {
  supportUs: number | undefined;
}

function snapshot(target: CallTarget): Snapshot {
  return { ...cpuSnapshot(target.serverPids), supportUs: cpuSnapshot(target.supportPids).serversUs };
}

export async function runCalls(target: CallTarget, spec: CallLoadSpec): Promise<CallSample> {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
  const { payload } = spec;
  const start = performance.now();
  const monotonicStartUs = Number(process.hrtime.bigint() / 1000n);
  const windowStart = start + spec.warmupSeconds * 1000;
  const windowEnd = windowStart + spec.seconds * 1000;
  let stop = false;
  let calls = 0;
  let errors = 0;
  let wrong = 0;
  let firstError: unknown;

  const cancelled = spec.cancelled ?? (() => false);
  const loop = async () => {
    while (!stop && !cancelled()) {
      const t0 = performance.now();
      let answer: unknown;
      try {
        answer = await target.call(payload);
      } catch (err) {
        if (cancelled()) return;
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
        calls++;
        histogram.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
        const a = answer as { n?: unknown; s?: unknown } | null;
        if (a === null || typeof a !== 'object' || a.n !== payload.n || a.s !== payload.s) wrong++;
      }
    }
  };
  let cpuStart: Snapshot | undefined;
  let cpuEnd: Snapshot | undefined;
  const startTimer = setTimeout(() => (cpuStart = snapshot(target)), windowStart - start);
  const timer = setTimeout(() => {
    stop = true;
    cpuEnd = snapshot(target);
  }, windowEnd - start);
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, loop));
  } finally {
    clearTimeout(startTimer);
    clearTimeout(timer);
  }
  cpuStart ??= snapshot(target);
  cpuEnd ??= snapshot(target);
  if (errors >= MAX_ERRORS) {
    histogram.destroy();
    throw new Error(`${target.system} echo: ${errors} calls failed; first: ${String(firstError)}`, { cause: firstError });
  }
  const perCall = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || calls === 0 ? undefined : (b - a) / calls;
  const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  const host = delta(cpuStart.hostUs, cpuEnd.hostUs);
  const servers = delta(cpuStart.serversUs, cpuEnd.serversUs);
  const support = delta(cpuStart.supportUs, cpuEnd.supportUs);
  const sample: CallSample = {
    calls,
    seconds: spec.seconds,
    callsPerSec: calls / spec.seconds,
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    p999Us: histogram.getValueAtPercentile(99.9),
    maxUs: histogram.maxValue,
    errors,
    wrong,
    clientCpuUsPerCall: perCall(cpuStart.clientUs, cpuEnd.clientUs) ?? 0,
    serverCpuUsPerCall: perCall(cpuStart.serversUs, cpuEnd.serversUs),
    supportCpuUsPerCall: perCall(cpuStart.supportUs, cpuEnd.supportUs),
    otherCores:
      host === undefined || servers === undefined || support === undefined
        ? undefined
        : Math.max(0, (host - (cpuEnd.clientUs - cpuStart.clientUs) - servers - support) / (spec.seconds * 1e6)),
    windowStartUs: monotonicStartUs + spec.warmupSeconds * 1e6,
    windowEndUs: monotonicStartUs + (spec.warmupSeconds + spec.seconds) * 1e6,
  };
  histogram.destroy();
  return sample;
}
