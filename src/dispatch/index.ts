/**
 * Dispatch for stateless compute services: which instance serves a call. Pure code, no I/O and no timers; the
 * caller passes the candidates, the call outcomes and the current time.
 *
 * - {@link createStrategy}: unkeyed calls (round-robin, random, least-outstanding, power-of-two choices).
 * - {@link pickByKey}: keyed calls stick to one instance (rendezvous hashing).
 * - {@link InstanceHealth}: outlier ejection, so a failing instance gets no traffic until a probe readmits it.
 *
 * @example
 * ```ts
 * import { createStrategy, pickByKey, InstanceHealth } from './dispatch/index.js';
 * const usable = instances.filter((i) => health.get(i.id)!.isAvailable(now));
 * const target = key === undefined ? strategy.choose(usable) : pickByKey(key, usable.map((i) => i.id));
 * ```
 *
 * @module
 */
export {
  createStrategy,
  parseStrategyName,
  STRATEGY_NAMES,
  type InstanceState,
  type Strategy,
  type StrategyName,
  type StrategyOptions,
} from './strategies.js';
export { pickByKey } from './keyed.js';
export { InstanceHealth, DEFAULT_EJECTION_POLICY, type EjectionPolicy, type HealthState } from './health.js';
