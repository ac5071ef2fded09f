/**
 * The autoscaler's configuration: the `autoscale` section of cluster.json, overridden by command-line flags, checked
 * field by field (a bad value is a {@link ConfigError} naming it, before anything runs), and the provisioner it names.
 *
 * @module
 */
import { validatePolicy, type ScalePolicy } from '../autoscale/index.js';
import { ConfigError } from '../errors/index.js';
import { TIER_METRICS } from './autoscale-metrics.js';
import { LocalProvisioner, MAX_TIER_NODES, TIERS, type Provisioner, type Tier } from './provisioner.js';
import { CommandProvisioner } from './provisioner-command.js';
import { parseHookCommand } from './provisioner-hook.js';

/** Where the provisioner comes from. */
export type ProvisionerConfig =
  | { kind: 'local'; concurrency?: number }
  | {
      kind: 'command';
      /** The hook (see `parseHookCommand`): `"./my-scaler.sh {tier} {count} {nodes}"` or an array of words. */
      command: string | string[];
      timeoutMs?: number;
      settleTimeoutMs?: number;
      maxOutputBytes?: number;
      concurrency?: number;
    };

/** A checked autoscaler configuration. */
export interface AutoscaleConfig {
  /** How often each tier is sampled (ms). */
  intervalMs: number;
  /** Policies of the tiers that are autoscaled; a tier without one is left alone. */
  policies: Partial<Record<Tier, ScalePolicy>>;
  provisioner: ProvisionerConfig;
}

/** Default sampling interval. */
export const DEFAULT_INTERVAL_MS = 5000;

const SECTION_FIELDS = new Set(['intervalMs', 'storage', 'compute', 'provisioner']);
const LOCAL_FIELDS = new Set(['kind', 'concurrency']);
const COMMAND_FIELDS = new Set(['kind', 'command', 'timeoutMs', 'settleTimeoutMs', 'maxOutputBytes', 'concurrency']);

/**
 * Checks an `autoscale` section (from cluster.json, or built from flags) and fills in the defaults: interval 5 s,
 * the local provisioner.
 *
 * Beyond `validatePolicy`'s rules: a policy's metric must be one its tier's nodes report (storage `bytes`, `keys`,
 * `opsPerSec`; compute `callsPerSec`, `inFlight`), `maxNodes` may not exceed what a provisioner is asked for (64),
 * and a command provisioner's hook must parse.
 *
 * @throws ConfigError whose message and `details.field` name the field, e.g. `autoscale.storage.lowWatermark`.
 *
 * @example
 * ```ts
 * const config = parseAutoscaleConfig((await new ClusterDir('.shardflow').readCluster()).autoscale);
 * parseAutoscaleConfig({ compute: { metric: 'cpu', ... } }); // ConfigError: autoscale.compute.metric must be one of ...
 * ```
 */
export function parseAutoscaleConfig(raw: unknown, where = 'autoscale'): AutoscaleConfig {
  if (raw === undefined || raw === null) return { intervalMs: DEFAULT_INTERVAL_MS, policies: {}, provisioner: { kind: 'local' } };
  const o = object(raw, where);
  unknownFields(o, SECTION_FIELDS, where);
  const intervalMs = o.intervalMs === undefined ? DEFAULT_INTERVAL_MS : number(o.intervalMs, `${where}.intervalMs`, 50, 3_600_000);
  const policies: Partial<Record<Tier, ScalePolicy>> = {};
  for (const tier of TIERS) {
    if (o[tier] !== undefined) policies[tier] = tierPolicy(tier, o[tier], `${where}.${tier}`);
  }
  const provisioner = parseProvisioner(o.provisioner, `${where}.provisioner`);
  return { intervalMs, policies, provisioner };
}

/** Checks one tier's policy: `validatePolicy`, a metric the tier reports, and `maxNodes` within reach. */
export function tierPolicy(tier: Tier, raw: unknown, where: string): ScalePolicy {
  let policy: ScalePolicy;
  try {
    policy = validatePolicy(raw);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const field = typeof err.details.field === 'string' ? `${where}.${err.details.field}` : where;
    // "scale policy: lowWatermark must be ..." -> "autoscale.storage.lowWatermark must be ..."
    const text = err.message.replace(/^scale policy: /, `${where}.`).replace(/^scale policy /, `${where} `);
    throw new ConfigError(text, { cause: err, details: { ...err.details, field } });
  }
  const metrics = TIER_METRICS[tier];
  if (!metrics.includes(policy.metric)) {
    throw new ConfigError(
      `${where}.metric must be one of ${metrics.join(', ')} (what ${tier} nodes report), got ${JSON.stringify(policy.metric)}`,
      { details: { field: `${where}.metric`, value: policy.metric } },
    );
  }
  if (policy.maxNodes > MAX_TIER_NODES) {
    throw new ConfigError(`${where}.maxNodes must be at most ${MAX_TIER_NODES}, got ${policy.maxNodes}`, {
      details: { field: `${where}.maxNodes`, value: String(policy.maxNodes) },
    });
  }
  return policy;
}

function parseProvisioner(raw: unknown, where: string): ProvisionerConfig {
  if (raw === undefined) return { kind: 'local' };
  const o = object(raw, where);
  const concurrency = o.concurrency === undefined ? undefined : integer(o.concurrency, `${where}.concurrency`, 1, 64);
  if (o.kind === 'local') {
    unknownFields(o, LOCAL_FIELDS, where);
    return { kind: 'local', ...(concurrency === undefined ? {} : { concurrency }) };
  }
  if (o.kind === 'command') {
    unknownFields(o, COMMAND_FIELDS, where);
    parseHookCommand(o.command, `${where}.command`);
    const opt = (field: string, min: number, max: number) =>
      o[field] === undefined ? {} : { [field]: integer(o[field], `${where}.${field}`, min, max) };
    return {
      kind: 'command',
      command: o.command as string | string[],
      ...opt('timeoutMs', 100, 24 * 3_600_000),
      ...opt('settleTimeoutMs', 100, 24 * 3_600_000),
      ...opt('maxOutputBytes', 1024, 16 * 1024 * 1024),
      ...(concurrency === undefined ? {} : { concurrency }),
    };
  }
  throw new ConfigError(`${where}.kind must be "local" or "command", got ${JSON.stringify(o.kind)}`, { details: { field: `${where}.kind` } });
}

/**
 * The provisioner a configuration names, for the cluster in `dir`.
 *
 * @example
 * ```ts
 * const provisioner = createProvisioner('.shardflow', config.provisioner);
 * ```
 */
export function createProvisioner(dir: string, config: ProvisionerConfig): Provisioner {
  if (config.kind === 'local') return new LocalProvisioner(dir, { concurrency: config.concurrency });
  return new CommandProvisioner({
    dir,
    command: config.command,
    timeoutMs: config.timeoutMs,
    settleTimeoutMs: config.settleTimeoutMs,
    maxOutputBytes: config.maxOutputBytes,
    concurrency: config.concurrency,
  });
}

function object(raw: unknown, where: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where} must be an object`, { details: { field: where } });
  }
  return raw as Record<string, unknown>;
}

function unknownFields(o: Record<string, unknown>, known: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(o)) {
    if (!known.has(key)) {
      throw new ConfigError(`${where}.${key} is not a known field (known: ${[...known].join(', ')})`, { details: { field: `${where}.${key}` } });
    }
  }
}

function number(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new ConfigError(`${field} must be a number from ${min} to ${max}, got ${JSON.stringify(v) ?? String(v)}`, { details: { field } });
  }
  return v;
}

function integer(v: unknown, field: string, min: number, max: number): number {
  if (!Number.isSafeInteger(v)) {
    throw new ConfigError(`${field} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v) ?? String(v)}`, { details: { field } });
  }
  return number(v, field, min, max);
}
