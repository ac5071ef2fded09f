/**
 * Elastic scaling decisions, as pure code: no timers, no I/O. A control loop elsewhere feeds samples and `now`, and
 * carries out what they advise.
 *
 * - {@link Autoscaler}: whether one tier (storage or compute) should grow or shrink, with hysteresis, cooldowns and a
 *   human-readable reason for every decision. Configured by a {@link ScalePolicy} ({@link validatePolicy}).
 * - {@link RateController}: migration bandwidth that halves when foreground p99 rises and recovers gradually.
 * - {@link TokenBucket}: holds a copier to the controller's rate.
 *
 * @example
 * ```ts
 * import { Autoscaler, RateController, TokenBucket, validatePolicy } from './autoscale/index.js';
 * const scaler = new Autoscaler(validatePolicy(config.autoscale.compute));
 * const d = scaler.observe({ now, nodes: instances.length, total: sum(instances, 'callsPerSec') });
 * if (d.action === 'scale' && (await resize(d.to))) scaler.recordAction(clock(), d.from, d.to);
 * ```
 *
 * @module
 */
export {
  Autoscaler,
  HISTORY_LIMIT,
  validatePolicy,
  type Decision,
  type Observation,
  type ScaleEvent,
  type ScalePolicy,
} from './policy.js';
export {
  RateController,
  TokenBucket,
  validateRateOptions,
  type LatencySample,
  type RateControllerOptions,
} from './rate-controller.js';
export { formatBytes, formatDuration, formatValue } from './format.js';
