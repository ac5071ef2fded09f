/**
 * Migration bandwidth that yields to the foreground. A fixed rate is wrong both ways: CockroachDB's fixed 2 MB/s
 * rebalance cap lost to 9 MB/s of writes (cockroachdb/cockroach#34752), and adding nodes there pushed foreground p99
 * from ~7 ms to ~32 ms (#113720). So the rate follows foreground latency, AIMD-style, as TCP does:
 *
 * ```text
 *   p99 > maxP99Ratio × baseline → rate = max(min, rate × decreaseFactor)   halves: min in O(log) samples
 *   otherwise                    → rate = min(max, rate + increaseStep)     recovers gradually, linearly
 * ```
 *
 * Pure: the caller measures foreground p99 over a fixed interval (say 1 s) and calls {@link RateController.onSample}
 * once per interval; the rate changes once per sample, so the interval sets how fast it moves. The returned rate
 * feeds a {@link TokenBucket}.
 *
 * @module
 */
import { ConfigError, InvalidArgumentError } from '../errors/index.js';
import { formatBytes, short } from './format.js';

export { TokenBucket } from './token-bucket.js';

/** How fast migration may go and when it must back off. Rates in bytes per second, latencies in ms. */
export interface RateControllerOptions {
  /** The highest rate (> 0). */
  maxBytesPerSec: number;
  /** The lowest rate (> 0, <= max): migration always makes progress, or a node being drained never empties. */
  minBytesPerSec: number;
  /** The rate before any sample. Default `minBytesPerSec`: start slow and earn speed, not the other way round. */
  initialBytesPerSec?: number;
  /** Foreground p99 before migration started (> 0). */
  baselineP99Ms: number;
  /** Back off when foreground p99 exceeds `maxP99Ratio × baselineP99Ms`, e.g. 2. At least 1. */
  maxP99Ratio: number;
  /** Added per good sample. Default 10% of `maxBytesPerSec`: from min to max in about ten samples. */
  increaseStepBytesPerSec?: number;
  /** The rate is multiplied by this per bad sample, in (0, 1). Default 0.5. */
  decreaseFactor?: number;
}

/** One measurement of the foreground: its p99 latency over the last interval, ending at `now` (ms). */
export interface LatencySample {
  now: number;
  foregroundP99Ms: number;
}

/**
 * The AIMD controller of one migration's bandwidth.
 *
 * @example
 * ```ts
 * const controller = new RateController({
 *   maxBytesPerSec: 200 * 2 ** 20, minBytesPerSec: 2 * 2 ** 20, baselineP99Ms: 7, maxP99Ratio: 2,
 * });
 * const bucket = new TokenBucket(controller.bytesPerSec, 4 * 2 ** 20);
 * // Every second:
 * bucket.setRate(controller.onSample({ now, foregroundP99Ms: histogram.p99() }), now);
 * status.migration = controller.reason; // "foreground p99 31 ms > 2 × 7 ms: 64 MiB/s -> 32 MiB/s"
 * ```
 */
export class RateController {
  /** The validated options, defaults filled in. */
  readonly options: Readonly<Required<RateControllerOptions>>;
  private rate: number;
  private why: string;
  private lastNow = -Infinity;

  /** @throws ConfigError naming the field if an option is out of range. */
  constructor(options: RateControllerOptions) {
    this.options = validateRateOptions(options);
    this.rate = this.options.initialBytesPerSec;
    this.why = `initial rate ${perSec(this.rate)}`;
  }

  /** The current rate, always within `[minBytesPerSec, maxBytesPerSec]`. */
  get bytesPerSec(): number {
    return this.rate;
  }

  /** Why the rate is what it is, for status output and logs. */
  get reason(): string {
    return this.why;
  }

  /**
   * Takes one foreground latency sample and returns the new rate: cut by `decreaseFactor` if p99 is over the limit,
   * raised by `increaseStepBytesPerSec` otherwise, kept within `[min, max]`.
   *
   * @throws InvalidArgumentError if `now` is not finite or goes back in time, or `foregroundP99Ms` is not a finite
   * number >= 0 (no foreground traffic at all is a p99 of 0).
   */
  onSample(sample: LatencySample): number {
    const now = sample?.now;
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new InvalidArgumentError('now must be a finite number (ms)');
    }
    if (now < this.lastNow) throw new InvalidArgumentError(`now went back in time (${now} < ${this.lastNow})`);
    const p99 = sample.foregroundP99Ms;
    if (typeof p99 !== 'number' || !Number.isFinite(p99) || p99 < 0) {
      throw new InvalidArgumentError('foregroundP99Ms must be a finite number >= 0');
    }
    this.lastNow = now;
    const o = this.options;
    const limit = o.maxP99Ratio * o.baselineP99Ms;
    const before = this.rate;
    const over = p99 > limit;
    this.rate = over
      ? Math.max(o.minBytesPerSec, before * o.decreaseFactor)
      : Math.min(o.maxBytesPerSec, before + o.increaseStepBytesPerSec);
    const cmp = over ? '>' : '<=';
    this.why = `foreground p99 ${short(p99)} ms ${cmp} ${short(o.maxP99Ratio)} × ${short(o.baselineP99Ms)} ms: `;
    const change = before === this.rate ? `(at ${over ? 'min' : 'max'})` : `-> ${perSec(this.rate)}`;
    this.why += `${perSec(before)} ${change}`;
    return this.rate;
  }
}

/**
 * Checks rate controller options and returns a frozen copy with the defaults filled in.
 *
 * @throws ConfigError naming the field (`details.field`).
 *
 * @example
 * ```ts
 * validateRateOptions({ maxBytesPerSec: 1e8, minBytesPerSec: 1e6, baselineP99Ms: 5, maxP99Ratio: 2 });
 * ```
 */
export function validateRateOptions(options: RateControllerOptions): Readonly<Required<RateControllerOptions>> {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('rate controller options must be an object');
  }
  const positive = (field: keyof RateControllerOptions): number => {
    const v = options[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(field, v, 'must be a finite number > 0');
    return v;
  };
  const max = positive('maxBytesPerSec');
  const min = positive('minBytesPerSec');
  if (min > max) throw bad('minBytesPerSec', min, `must be <= maxBytesPerSec (${max})`);
  const initial = options.initialBytesPerSec === undefined ? min : positive('initialBytesPerSec');
  if (initial < min || initial > max) throw bad('initialBytesPerSec', initial, `must be within [${min}, ${max}]`);
  const baselineP99Ms = positive('baselineP99Ms');
  const maxP99Ratio = positive('maxP99Ratio');
  // Below 1 the foreground would count as hurt while doing better than before migration: the rate would sit at min.
  if (maxP99Ratio < 1) throw bad('maxP99Ratio', maxP99Ratio, 'must be >= 1');
  const step = options.increaseStepBytesPerSec === undefined ? max / 10 : positive('increaseStepBytesPerSec');
  const factor = options.decreaseFactor === undefined ? 0.5 : positive('decreaseFactor');
  if (factor >= 1) throw bad('decreaseFactor', factor, 'must be < 1');
  return Object.freeze({
    maxBytesPerSec: max,
    minBytesPerSec: min,
    initialBytesPerSec: initial,
    baselineP99Ms,
    maxP99Ratio,
    increaseStepBytesPerSec: step,
    decreaseFactor: factor,
  });
}

function bad(field: string, value: unknown, rule: string): ConfigError {
  return new ConfigError(`rate controller: ${field} ${rule}, got ${String(value)}`, {
    details: { field, value: String(value) },
  });
}

function perSec(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}
