/**
 * The data and the foreground load, the same for both systems.
 *
 * Keys are `key:00000000` … ; a value is a string of exactly `valueBytes` ASCII bytes that starts with the sequence
 * number of the write that stored it (`0:` for the initial load), so a read tells which write it sees. Each
 * foreground loop writes only its own keys (index ≡ loop mod concurrency) and awaits each write, so at most one write
 * per key is in flight and the last acknowledged sequence number of every key is known exactly. A read must return a
 * sequence number at least the one acknowledged for its key when the read was issued (else it is stale); after the
 * scale-out every key must hold at least its last acknowledged sequence number (else the write was lost).
 */
import * as hdr from 'hdr-histogram-js';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { sleep } from './proc.js';

export interface KvOps {
  put(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<string | null | undefined>;
}

export function makeKeys(count: number): string[] {
  const width = Math.max(8, String(count - 1).length);
  return Array.from({ length: count }, (_, i) => `key:${String(i).padStart(width, '0')}`);
}

export class Values {
  private readonly pad: string;
  constructor(readonly bytes: number) {
    this.pad = 'x'.repeat(bytes);
  }
  /** A value of exactly `bytes` bytes carrying `seq`. */
  make(seq: number): string {
    const head = `${seq}:`;
    return head + this.pad.slice(head.length);
  }
  /** The sequence number a value carries, or -1 for something else. */
  static seqOf(value: unknown): number {
    if (typeof value !== 'string') return -1;
    const colon = value.indexOf(':');
    if (colon <= 0 || colon > 12) return -1;
    const n = Number(value.slice(0, colon));
    return Number.isInteger(n) ? n : -1;
  }
}

/** Runs `task` over indexes 0..count-1 with at most `limit` in flight. */
export async function forEachIndex(count: number, limit: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

export type PhaseName = 'warmup' | 'baseline' | 'during' | 'after';

export interface PhaseStats {
  seconds: number;
  ops: number;
  opsPerSec: number;
  writes: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  errors: number;
  staleReads: number;
  /** Event-loop delay of this (the benchmark) process in the phase, ms: a stall here delays every operation in flight. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

interface Phase {
  name: PhaseName;
  startedAt: number;
  endedAt?: number;
  histogram: hdr.Histogram;
  ops: number;
  writes: number;
  errors: number;
  staleReads: number;
  loopDelay: IntervalHistogram;
}

export interface ForegroundSpec {
  keys: string[];
  values: Values;
  concurrency: number;
  /** Operations per second in total; 0 = closed loop. */
  rate: number;
  writeRatio: number;
}

/**
 * The foreground load: `concurrency` loops, paced to `rate` operations per second in total, each operation a read of
 * a random key or a write of one of the loop's own keys. Latency is the time from issuing an operation to its answer,
 * recorded into the histogram of the phase the operation was issued in.
 */
export class Foreground {
  /** Last acknowledged write sequence number of every key (0: the initial load). */
  readonly acked: Float64Array;
  private seq = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly phases: Phase[] = [];
  private current!: Phase;
  firstError: unknown;
  /** Latest failure, with the phase it happened in (for the log). */
  errorLog: string[] = [];

  constructor(
    private readonly ops: KvOps,
    private readonly spec: ForegroundSpec,
  ) {
    this.acked = new Float64Array(spec.keys.length);
    this.setPhase('warmup');
  }

  setPhase(name: PhaseName): void {
    const now = performance.now();
    if (this.current) {
      this.current.endedAt = now;
      this.current.loopDelay.disable();
    }
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    this.current = {
      loopDelay,
      name,
      startedAt: now,
      histogram: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3, autoResize: true }),
      ops: 0,
      writes: 0,
      errors: 0,
      staleReads: 0,
    };
    this.phases.push(this.current);
  }

  start(): void {
    const { concurrency, rate } = this.spec;
    const intervalMs = rate > 0 ? (1000 * concurrency) / rate : 0;
    this.loops = Array.from({ length: concurrency }, (_, w) => this.loop(w, intervalMs));
  }

  private async loop(w: number, intervalMs: number): Promise<void> {
    const { keys, values, writeRatio, concurrency } = this.spec;
    const n = keys.length;
    const mine = Math.floor((n - 1 - w) / concurrency) + 1; // keys i with i ≡ w (mod concurrency)
    // Loops start spread over one interval so that paced operations do not leave in bursts.
    let next = performance.now() + (intervalMs * w) / concurrency;
    while (!this.stopping) {
      if (intervalMs > 0) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (this.stopping) return;
        next = Math.max(next + intervalMs, performance.now() - 10 * intervalMs); // catch up a little, not without bound
      }
      const phase = this.current;
      const write = Math.random() < writeRatio;
      const t0 = performance.now();
      try {
        if (write) {
          const i = w + concurrency * Math.floor(Math.random() * mine);
          const seq = ++this.seq;
          await this.ops.put(keys[i]!, values.make(seq));
          this.acked[i] = seq;
          phase.writes++;
        } else {
          const i = Math.floor(Math.random() * n);
          const expected = this.acked[i]!;
          const got = Values.seqOf(await this.ops.get(keys[i]!));
          if (got < expected) phase.staleReads++;
        }
      } catch (err) {
        phase.errors++;
        this.firstError ??= err;
        if (this.errorLog.length < 10) this.errorLog.push(`${phase.name}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      phase.ops++;
      phase.histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
  }

  /** Stops issuing and resolves once every operation in flight has returned. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.current.endedAt ??= performance.now();
    this.current.loopDelay.disable();
    await Promise.all(this.loops);
  }

  stats(name: PhaseName): PhaseStats {
    const p = this.phases.find((x) => x.name === name);
    if (!p) throw new Error(`no phase ${name}`);
    const seconds = ((p.endedAt ?? performance.now()) - p.startedAt) / 1000;
    const h = p.histogram;
    return {
      seconds,
      ops: p.ops,
      opsPerSec: p.ops / seconds,
      writes: p.writes,
      p50Us: h.getValueAtPercentile(50),
      p99Us: h.getValueAtPercentile(99),
      p999Us: h.getValueAtPercentile(99.9),
      maxUs: h.maxValue,
      errors: p.errors,
      staleReads: p.staleReads,
      loopDelayP99Ms: p.loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: p.loopDelay.max / 1e6,
    };
  }

  /** Acknowledged foreground writes in all. */
  get ackedWrites(): number {
    return this.phases.reduce((a, p) => a + p.writes, 0);
  }

  destroy(): void {
    for (const p of this.phases) p.histogram.destroy();
  }
}

/**
 * Reads every key back and compares with the last acknowledged write: `lost` keys hold an older value (or none),
 * `unreadable` failed to read at all.
 */
export async function verifyAll(
  get: (key: string) => Promise<string | null | undefined>,
  keys: string[],
  acked: Float64Array,
  concurrency = 256,
): Promise<{ checked: number; lost: number; unreadable: number; examples: string[] }> {
  let lost = 0;
  let unreadable = 0;
  const examples: string[] = [];
  await forEachIndex(keys.length, concurrency, async (i) => {
    if (unreadable >= 1000) return; // the cluster is broken: say so, do not wait out every key's deadline
    let value: string | null | undefined;
    try {
      value = await get(keys[i]!);
    } catch (err) {
      unreadable++;
      if (examples.length < 5) examples.push(`${keys[i]}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const got = Values.seqOf(value);
    if (got < acked[i]!) {
      lost++;
      if (examples.length < 5) examples.push(`${keys[i]}: holds write ${got}, acknowledged ${acked[i]}`);
    }
  });
  if (unreadable >= 1000) examples.push(`stopped checking after ${unreadable} keys could not be read`);
  return { checked: keys.length, lost, unreadable, examples };
}

/** The line both runs log once the data is loaded: keys, seconds, MB/s. */
export function loadedLine(keys: number, values: Values, loadSeconds: number): string {
  return `  loaded ${keys.toLocaleString('en-US')} keys in ${loadSeconds.toFixed(1)} s (${((keys * values.bytes) / 2 ** 20 / loadSeconds).toFixed(0)} MB/s)`;
}

/**
 * Starts the foreground load on `ops` (`closers` gets its stop), lets it warm up for `warmup` seconds, then measures
 * `baseline` seconds of it: resolves with the load, still running, and the baseline phase's stats.
 */
export async function startForeground(
  ops: KvOps,
  spec: ForegroundSpec,
  seconds: { warmup: number; baseline: number },
  closers: (() => Promise<void>)[],
): Promise<{ fg: Foreground; base: PhaseStats }> {
  const fg = new Foreground(ops, spec);
  closers.push(async () => {
    await fg.stop();
    fg.destroy();
  });
  fg.start();
  await sleep(seconds.warmup * 1000);
  fg.setPhase('baseline');
  await sleep(seconds.baseline * 1000);
  return { fg, base: fg.stats('baseline') };
}
