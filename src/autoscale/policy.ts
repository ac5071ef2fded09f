/**
 * The autoscaler's decision for one tier: from the tier's metric total and node count, whether to add or remove
 * nodes, and why.
 *
 * Pure: no timers, no I/O. A control loop elsewhere feeds {@link Autoscaler.observe} with samples and `now`, carries
 * out a `scale` decision itself, and reports it with {@link Autoscaler.recordAction} once done. Three guards keep it
 * from flapping (Flink's autoscaler rescaled jobs 20+ times a day before it got a scale-down interval, FLINK-36018):
 *
 * - hysteresis: a watermark must stay crossed for `stabilizationMs` on every sample, so a spike does nothing;
 * - cooldowns: after any action, `scaleOutCooldownMs` / `scaleInCooldownMs` must pass before the next one;
 * - safe scale-in: never remove so many nodes that the per-node value lands above the high watermark.
 *
 * ```text
 *   desired = clamp(ceil(total / target), minNodes, maxNodes)
 *   per-node > high × target for stabilizationMs, out-cooldown over → nodes + min(desired - nodes, maxStepOut)
 *   per-node < low  × target for stabilizationMs, in-cooldown over  → nodes - min(nodes - desired, maxStepIn)
 * ```
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';
import { formatDuration, formatValue, short } from './format.js';
import { validatePolicy, type ScalePolicy } from './policy-config.js';

export { validatePolicy, type ScalePolicy } from './policy-config.js';

/** One sample of a tier: `total` is the metric summed over its `nodes` nodes, at time `now` (ms). */
export interface Observation {
  now: number;
  nodes: number;
  total: number;
}

/** What {@link Autoscaler.observe} advises. `reason` is for people: status output and logs. */
export type Decision =
  | { action: 'none'; reason: string }
  | { action: 'scale'; from: number; to: number; reason: string };

/** A scaling action that took effect, as reported to {@link Autoscaler.recordAction}. */
export interface ScaleEvent {
  readonly now: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

/** {@link Autoscaler.history} keeps this many events, the most recent ones: enough for status, bounded for a daemon. */
export const HISTORY_LIMIT = 100;

/**
 * The scaling state machine of one tier. One instance per tier, driven by one loop, on one monotonic clock.
 *
 * A decision takes effect only when reported: `observe` keeps advising (afresh from each sample) until `recordAction`
 * says an action was done, so the caller must not start a second action while one is under way. Cooldowns run from
 * the reported time, and the hysteresis windows start over then, since samples taken at the old size say little about
 * the new one.
 *
 * "Held for `stabilizationMs`" means: every sample since the first one across the watermark was across it too. The
 * autoscaler knows nothing between samples, so sample at a steady interval well below `stabilizationMs`.
 *
 * @example
 * ```ts
 * const scaler = new Autoscaler(validatePolicy(config.autoscale.storage));
 * const d = scaler.observe({ now: clock(), nodes: members.length, total: sumOf(members, 'bytes') });
 * if (d.action === 'scale' && (await resize(d.to))) scaler.recordAction(clock(), d.from, d.to);
 * status.autoscale = d.reason; // "bytes/node 1.9 GiB > 1.2 × 1.5 GiB for 30 s: 3 -> 4"
 * ```
 */
export class Autoscaler {
  /** The validated policy, defaults filled in. */
  readonly policy: Readonly<Required<ScalePolicy>>;
  private readonly events: ScaleEvent[] = [];
  private lastNow = -Infinity;
  private lastActionAt: number | undefined;
  /** When the current unbroken run of samples above the high (below the low) watermark began. */
  private aboveSince: number | undefined;
  private belowSince: number | undefined;
  /** The latest `scale` advice, so a report of it can carry its reason. */
  private lastAdvice: { from: number; to: number; reason: string } | undefined;

  /** @throws ConfigError if the policy is invalid (see {@link validatePolicy}). */
  constructor(policy: ScalePolicy) {
    this.policy = validatePolicy(policy) as Required<ScalePolicy>;
  }

  /** The actions reported so far, oldest first, at most {@link HISTORY_LIMIT}. */
  get history(): readonly ScaleEvent[] {
    return this.events;
  }

  /**
   * Takes one sample and advises. Never advises a count outside `[minNodes, maxNodes]` unless `nodes` already is
   * outside, and then only a step back towards the range (subject to the cooldowns, not to hysteresis: bounds are
   * config, not load).
   *
   * @throws InvalidArgumentError if `now` is not finite or earlier than a previous call's, `nodes` is not an integer
   * >= 0, or `total` is not a finite number >= 0.
   */
  observe(o: Observation): Decision {
    this.checkNow(o?.now);
    const { now, nodes, total } = o;
    if (!Number.isSafeInteger(nodes) || nodes < 0) throw new InvalidArgumentError('nodes must be an integer >= 0');
    if (typeof total !== 'number' || !Number.isFinite(total) || total < 0) {
      throw new InvalidArgumentError('total must be a finite number >= 0');
    }
    this.lastNow = now;
    const p = this.policy;
    const perNode = nodes === 0 ? Infinity : total / nodes;
    const high = p.highWatermark * p.target;
    const low = p.lowWatermark * p.target;
    // Hysteresis: a run is broken by any sample on the other side of its watermark.
    this.aboveSince = perNode > high ? (this.aboveSince ?? now) : undefined;
    this.belowSince = perNode < low ? (this.belowSince ?? now) : undefined;

    if (nodes < p.minNodes) {
      const to = Math.min(p.minNodes, nodes + p.maxStepOut);
      return this.advise(now, 'out', nodes, to, `${nodes} nodes is below minNodes ${p.minNodes}`);
    }
    if (nodes > p.maxNodes) {
      const to = Math.max(p.maxNodes, nodes - p.maxStepIn);
      return this.advise(now, 'in', nodes, to, `${nodes} nodes is above maxNodes ${p.maxNodes}`);
    }

    const value = `${p.metric}/node ${formatValue(p.metric, perNode)}`;
    const stabilization = formatDuration(p.stabilizationMs);
    const desired = Math.min(p.maxNodes, Math.max(p.minNodes, Math.ceil(total / p.target)));
    if (this.aboveSince !== undefined) {
      const held = now - this.aboveSince;
      const what = `${value} > ${short(p.highWatermark)} × ${formatValue(p.metric, p.target)}`;
      const since = `${what} for ${formatDuration(held)}`;
      if (held < p.stabilizationMs) return none(`${since} of ${stabilization}`);
      if (desired <= nodes) return none(`${since}, but already at maxNodes ${p.maxNodes}`);
      const to = Math.min(desired, nodes + p.maxStepOut);
      const limit = to < desired ? ` (step limit ${p.maxStepOut}; ${desired} wanted)` : '';
      return this.advise(now, 'out', nodes, to, `${since}${limit}`);
    }
    if (this.belowSince !== undefined) {
      const held = now - this.belowSince;
      const what = `${value} < ${short(p.lowWatermark)} × ${formatValue(p.metric, p.target)}`;
      const since = `${what} for ${formatDuration(held)}`;
      if (held < p.stabilizationMs) return none(`${since} of ${stabilization}`);
      if (nodes <= p.minNodes) return none(`${since}, but already at minNodes ${p.minNodes}`);
      const to = safeScaleIn(total, high, nodes, Math.max(desired, nodes - p.maxStepIn));
      if (to >= nodes) {
        const each = formatValue(p.metric, total / (nodes - 1));
        const but =
          desired >= nodes
            ? `${desired} nodes are needed at ${formatValue(p.metric, p.target)} each`
            : `${nodes - 1} nodes would carry ${each} each, over the high watermark`;
        return none(`${since}, but ${but}`);
      }
      const limit = to > desired ? ` (step limit ${p.maxStepIn}; ${desired} wanted)` : '';
      return this.advise(now, 'in', nodes, to, `${since}${limit}`);
    }
    return none(
      `${value} within ${short(p.lowWatermark)}–${short(p.highWatermark)} × ${formatValue(p.metric, p.target)}`,
    );
  }

  /**
   * Reports that the tier went from `from` to `to` nodes at `now`: the cooldowns start, the hysteresis windows start
   * over, and the event joins {@link history}. Call it when the action has taken effect, not when it was advised; an
   * action that failed is simply not reported. Actions taken by hand may be reported too, so they count for cooldown.
   *
   * @param reason Shown in the history; defaults to the reason of the advice with the same `from` and `to`.
   * @throws InvalidArgumentError if `now` is not finite or goes back in time, or the counts are not distinct
   * integers >= 0.
   */
  recordAction(now: number, from: number, to: number, reason?: string): void {
    this.checkNow(now);
    for (const n of [from, to]) {
      if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('from and to must be integers >= 0');
    }
    if (from === to) throw new InvalidArgumentError(`from and to are both ${from}: no action to record`);
    this.lastNow = now;
    const advice = this.lastAdvice;
    const advised = advice !== undefined && advice.from === from && advice.to === to;
    const why = reason ?? (advised ? advice.reason : `reported by the caller: ${from} -> ${to}`);
    this.events.push(Object.freeze({ now, from, to, reason: why }));
    if (this.events.length > HISTORY_LIMIT) this.events.shift();
    this.lastActionAt = now;
    this.aboveSince = undefined;
    this.belowSince = undefined;
    this.lastAdvice = undefined;
  }

  /** Advises `from -> to` unless the cooldown of that direction is still running. */
  private advise(now: number, direction: 'out' | 'in', from: number, to: number, why: string): Decision {
    const cooldown = direction === 'out' ? this.policy.scaleOutCooldownMs : this.policy.scaleInCooldownMs;
    const left = this.lastActionAt === undefined ? 0 : this.lastActionAt + cooldown - now;
    if (left > 0) return none(`${why}, but the scale-${direction} cooldown has ${formatDuration(left)} left`);
    const reason = `${why}: ${from} -> ${to}`;
    this.lastAdvice = { from, to, reason };
    return { action: 'scale', from, to, reason };
  }

  // A NaN or backwards `now` would corrupt the hysteresis windows and cooldowns without a sound.
  private checkNow(now: unknown): asserts now is number {
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new InvalidArgumentError('now must be a finite number (ms)');
    }
    if (now < this.lastNow) {
      throw new InvalidArgumentError(`now went back in time (${now} < ${this.lastNow}); use one monotonic clock`);
    }
  }
}

/**
 * The smallest count in `[candidate, nodes]` whose per-node value stays at or under `high`, or `nodes` if none.
 * With `desired = ceil(total / target)` and `high >= target` the candidate is already safe; the check is kept so the
 * rule holds by construction rather than by arithmetic that a later change could break.
 */
function safeScaleIn(total: number, high: number, nodes: number, candidate: number): number {
  let to = Math.max(1, candidate);
  while (to < nodes && total / to > high) to++;
  return to;
}

function none(reason: string): Decision {
  return { action: 'none', reason };
}
