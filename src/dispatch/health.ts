/**
 * Outlier ejection: an instance that keeps failing stops getting traffic for a while, and comes back only after it
 * answers a health check.
 *
 * One {@link InstanceHealth} per instance, driven by the dispatcher with call outcomes and the current time. It keeps
 * no timers: every method takes `now` (milliseconds on any monotonic clock, the same clock for every call).
 *
 * ```text
 *   healthy ──(N failures in a row)──▶ ejected ──(time over; needsProbe → true)──▶ probing
 *   probing ──probeSucceeded──▶ healthy
 *   probing ──probeFailed─────▶ ejected (twice as long as last time, at most maxEjectMs)
 * ```
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';

/** When to eject an instance and for how long. */
export interface EjectionPolicy {
  /** Failures in a row (no success in between) that eject an instance. Default 3. */
  consecutiveFailures: number;
  /** The first ejection's length in ms. Default 1000. */
  baseEjectMs: number;
  /** Ejections double in length up to this many ms. Default 30000. */
  maxEjectMs: number;
  /**
   * How long a probe may stay unreported, in ms, before {@link InstanceHealth.needsProbe} hands out another one.
   * A safety net for a caller that loses a probe's outcome; normally a ping's own deadline reports it as failed
   * much sooner. Default 10000.
   */
  probeTimeoutMs: number;
}

/** The policy used for every field not given. */
export const DEFAULT_EJECTION_POLICY: Readonly<EjectionPolicy> = Object.freeze({
  consecutiveFailures: 3,
  baseEjectMs: 1000,
  maxEjectMs: 30_000,
  probeTimeoutMs: 10_000,
});

/** Where an instance stands: serving, kept out of traffic, or out of traffic while one health check is under way. */
export type HealthState = 'healthy' | 'ejected' | 'probing';

/**
 * The ejection state machine of one instance.
 *
 * - `healthy`: takes traffic. {@link recordFailure} counts failures in a row; the N-th ejects the instance for the
 *   current ejection length. {@link recordSuccess} resets the count and the ejection length to `baseEjectMs`.
 * - `ejected`: no traffic. Call outcomes still arriving (calls sent before the ejection) are ignored: they say
 *   nothing new. Once the ejection time is over, {@link needsProbe} returns `true` to one caller, which sends a
 *   health check (ping) and reports it with {@link probeSucceeded} or {@link probeFailed}.
 * - `probing`: still no traffic; the probe is under way. A success readmits the instance; a failure ejects it again
 *   for twice as long as last time (at most `maxEjectMs`).
 *
 * A successful probe does not reset the ejection length, only a successful real call does: an instance that answers
 * pings but fails real calls is ejected for longer and longer.
 *
 * @example
 * ```ts
 * const health = new InstanceHealth({ consecutiveFailures: 5 });
 * // Per call: skip the instance unless health.isAvailable(now); on completion recordSuccess / recordFailure.
 * // Per dispatch (or on a timer of the caller's):
 * if (health.needsProbe(now)) {
 *   ping(instance).then(() => health.probeSucceeded(clock()), () => health.probeFailed(clock()));
 * }
 * ```
 */
export class InstanceHealth {
  private readonly policy: Readonly<EjectionPolicy>;
  private current: HealthState = 'healthy';
  private failures = 0;
  /** The length of the next ejection. */
  private nextEjectMs: number;
  private until = 0;
  private probeStartedAt = 0;

  /** @throws InvalidArgumentError if a policy field is out of range. */
  constructor(policy: Partial<EjectionPolicy> = {}) {
    const p = { ...DEFAULT_EJECTION_POLICY, ...definedOnly(policy) };
    if (!Number.isInteger(p.consecutiveFailures) || p.consecutiveFailures < 1) {
      throw invalid('consecutiveFailures must be an integer >= 1', p);
    }
    for (const field of ['baseEjectMs', 'maxEjectMs', 'probeTimeoutMs'] as const) {
      if (typeof p[field] !== 'number' || !Number.isFinite(p[field]) || p[field] < 0) {
        throw invalid(`${field} must be a finite number >= 0`, p);
      }
    }
    if (p.maxEjectMs < p.baseEjectMs) throw invalid('maxEjectMs must be >= baseEjectMs', p);
    this.policy = Object.freeze(p);
    this.nextEjectMs = p.baseEjectMs;
  }

  /** The current state. Time alone never changes it: `ejected` becomes `probing` only through {@link needsProbe}. */
  get state(): HealthState {
    return this.current;
  }

  /** When the current ejection ends (ms, on the caller's clock); `undefined` while healthy. For status output. */
  get ejectedUntil(): number | undefined {
    return this.current === 'healthy' ? undefined : this.until;
  }

  /** A call to this instance succeeded: the failure count and ejection length start over. Ignored unless healthy. */
  recordSuccess(now: number): void {
    checkNow(now);
    if (this.current !== 'healthy') return;
    this.failures = 0;
    this.nextEjectMs = this.policy.baseEjectMs;
  }

  /** A call to this instance failed; the N-th failure in a row ejects it. Ignored unless healthy. */
  recordFailure(now: number): void {
    checkNow(now);
    if (this.current !== 'healthy') return;
    this.failures++;
    if (this.failures >= this.policy.consecutiveFailures) this.eject(now);
  }

  /** Whether the instance may take traffic: `false` while ejected or probing. */
  isAvailable(now: number): boolean {
    checkNow(now);
    return this.current === 'healthy';
  }

  /**
   * Whether the caller should send a health check now. `true` once the ejection time is over, and then the instance
   * moves to `probing`: the caller that got `true` owns the probe and must report it with {@link probeSucceeded} or
   * {@link probeFailed} (a ping that times out is a failure). Later calls return `false` while that probe is under
   * way, so a busy dispatcher sends one ping rather than one per call, unless it stays unreported for
   * `probeTimeoutMs`, when another probe is handed out.
   */
  needsProbe(now: number): boolean {
    checkNow(now);
    if (this.current === 'ejected' && now >= this.until) {
      this.current = 'probing';
      this.probeStartedAt = now;
      return true;
    }
    if (this.current === 'probing' && now >= this.probeStartedAt + this.policy.probeTimeoutMs) {
      this.probeStartedAt = now;
      return true;
    }
    return false;
  }

  /**
   * The health check answered: the instance takes traffic again with a clean failure count. Ignored unless the
   * ejection time is over (a ping sent early proves nothing about the end of an ejection).
   */
  probeSucceeded(now: number): void {
    checkNow(now);
    if (this.current === 'healthy' || now < this.until) return;
    this.current = 'healthy';
    this.failures = 0;
  }

  /** The health check failed: ejected again, for twice as long as last time (capped). Ignored like a success. */
  probeFailed(now: number): void {
    checkNow(now);
    if (this.current === 'healthy' || now < this.until) return;
    this.eject(now);
  }

  private eject(now: number): void {
    this.current = 'ejected';
    this.until = now + this.nextEjectMs;
    this.nextEjectMs = Math.min(this.nextEjectMs * 2, this.policy.maxEjectMs);
    this.failures = 0;
  }
}

// `{ baseEjectMs: undefined }` means "default", as it would for a missing field.
function definedOnly(policy: Partial<EjectionPolicy>): Partial<EjectionPolicy> {
  return Object.fromEntries(Object.entries(policy ?? {}).filter(([, v]) => v !== undefined));
}

function invalid(message: string, policy: EjectionPolicy): InvalidArgumentError {
  return new InvalidArgumentError(`ejection policy: ${message}`, { details: { ...policy } });
}

// A NaN `now` would compare false with everything and freeze the state machine silently.
function checkNow(now: number): void {
  if (typeof now !== 'number' || Number.isNaN(now)) throw new InvalidArgumentError('now must be a number (ms)');
}
