/**
 * The configuration of one tier's autoscaler ({@link ScalePolicy}) and its validation. Policies come from config
 * files and the command line, so {@link validatePolicy} takes `unknown` and names the offending field.
 *
 * @module
 */
import { ConfigError } from '../errors/index.js';

/**
 * How one tier (storage or compute) scales. Watermarks are fractions of `target`; times are ms on the caller's clock.
 *
 * @example
 * ```ts
 * const storage: ScalePolicy = {
 *   metric: 'bytes', target: 1.5 * 2 ** 30, highWatermark: 1.2, lowWatermark: 0.5,
 *   minNodes: 3, maxNodes: 12, scaleOutCooldownMs: 5 * 60_000, scaleInCooldownMs: 60 * 60_000,
 *   stabilizationMs: 30_000, maxStepIn: 1,
 * };
 * ```
 */
export interface ScalePolicy {
  /** The per-node metric scaled on, e.g. `bytes`, `keys`, `opsPerSec` (storage) or `callsPerSec`, `inFlight`. */
  metric: string;
  /** The desired value of the metric per node (> 0). */
  target: number;
  /** Scale out when the per-node value stays above `highWatermark × target`. At least 1. */
  highWatermark: number;
  /** Scale in when the per-node value stays below `lowWatermark × target`. In (0, 1], below `highWatermark`. */
  lowWatermark: number;
  /** The fewest nodes the tier may have (integer >= 1). */
  minNodes: number;
  /** The most nodes the tier may have (integer >= minNodes). */
  maxNodes: number;
  /** After any scaling action, how long before the next scale-out (ms). */
  scaleOutCooldownMs: number;
  /** After any scaling action, how long before the next scale-in (ms). Make it long: see FLINK-36018. */
  scaleInCooldownMs: number;
  /** How long a watermark must stay crossed before the autoscaler acts (ms). */
  stabilizationMs: number;
  /** Nodes added per decision at most. Default `maxNodes` (no limit in practice). */
  maxStepOut?: number;
  /** Nodes removed per decision at most. Default 1: each removal on the storage tier is a migration. */
  maxStepIn?: number;
}

const FIELDS: ReadonlySet<string> = new Set([
  'metric',
  'target',
  'highWatermark',
  'lowWatermark',
  'minNodes',
  'maxNodes',
  'scaleOutCooldownMs',
  'scaleInCooldownMs',
  'stabilizationMs',
  'maxStepOut',
  'maxStepIn',
]);

/**
 * Checks a policy from any source and returns a frozen copy with the defaults filled in (`maxStepIn` 1,
 * `maxStepOut` = `maxNodes`).
 *
 * Beyond the types, it rejects policies that could not work: `highWatermark < 1` (scaling out to
 * `ceil(total / target)` nodes would leave the per-node value above it, so nothing would ever be done about it),
 * `lowWatermark > 1` (a "scale-in" would want more nodes), `lowWatermark >= highWatermark` (no band to rest in), and
 * unknown fields (a misspelt `maxStepsIn` would otherwise fall back to the default without a word).
 *
 * @throws ConfigError naming the field (`details.field`) and the value found (`details.value`).
 *
 * @example
 * ```ts
 * const policy = validatePolicy(JSON.parse(text).autoscale.storage);
 * validatePolicy({ ...policy, lowWatermark: 2 }); // ConfigError: scale policy: lowWatermark must be ...
 * ```
 */
export function validatePolicy(p: unknown): ScalePolicy {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new ConfigError('scale policy must be an object', { details: { value: describe(p) } });
  }
  const o = p as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!FIELDS.has(key)) throw bad(key, o[key], 'is not a scale policy field');
  }
  if (typeof o.metric !== 'string' || o.metric.trim() === '') {
    throw bad('metric', o.metric, 'must be a non-empty string');
  }
  const target = positive(o, 'target');
  const high = positive(o, 'highWatermark');
  const low = positive(o, 'lowWatermark');
  if (high < 1) throw bad('highWatermark', high, 'must be >= 1 (a tier scaled to `target` per node must end below it)');
  if (low >= high) throw bad('lowWatermark', low, `must be < highWatermark (${high})`);
  if (low > 1) throw bad('lowWatermark', low, 'must be <= 1 (below it the tier has more nodes than it needs)');
  const minNodes = integer(o, 'minNodes', 1);
  const maxNodes = integer(o, 'maxNodes', minNodes);
  const scaleOutCooldownMs = nonNegative(o, 'scaleOutCooldownMs');
  const scaleInCooldownMs = nonNegative(o, 'scaleInCooldownMs');
  const stabilizationMs = nonNegative(o, 'stabilizationMs');
  const maxStepOut = o.maxStepOut === undefined ? maxNodes : integer(o, 'maxStepOut', 1);
  const maxStepIn = o.maxStepIn === undefined ? 1 : integer(o, 'maxStepIn', 1);
  return Object.freeze({
    metric: o.metric,
    target,
    highWatermark: high,
    lowWatermark: low,
    minNodes,
    maxNodes,
    scaleOutCooldownMs,
    scaleInCooldownMs,
    stabilizationMs,
    maxStepOut,
    maxStepIn,
  });
}

function positive(o: Record<string, unknown>, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(field, v, 'must be a finite number > 0');
  return v;
}

function nonNegative(o: Record<string, unknown>, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(field, v, 'must be a finite number >= 0 (ms)');
  return v;
}

function integer(o: Record<string, unknown>, field: string, min: number): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(field, v, `must be an integer >= ${min}`);
  return v;
}

function bad(field: string, value: unknown, rule: string): ConfigError {
  return new ConfigError(`scale policy: ${field} ${rule}, got ${describe(value)}`, {
    details: { field, value: describe(value) },
  });
}

// Details must survive msgpack and logs: keep the value short and plain.
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}
