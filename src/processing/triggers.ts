/**
 * Batch triggers: when a group of records collected in `batch` mode is processed. Any configured trigger fires the
 * group — whichever comes first — and the end of input always does.
 *
 * - `interval`: time since the group's first record (a schedule; short intervals are micro-batches),
 * - `count`: records in the group,
 * - `bytes`: the records' approximate size (as the source reported it).
 *
 * @example
 * ```ts
 * import { parseTrigger } from 'shardflow';
 * parseTrigger('interval=5s,count=1000,bytes=1mb'); // { intervalMs: 5000, count: 1000, bytes: 1048576 }
 * parseTrigger('count=0');                          // throws ConfigError: trigger count must be more than zero
 * ```
 */
import { ConfigError } from '../errors/index.js';
import { parseBytes, parseCount, parseDuration } from './units.js';

/**
 * A parsed trigger: at least one of the three is set.
 *
 * @example
 * ```ts
 * import { parseTrigger, type TriggerSpec } from 'shardflow';
 * const spec: TriggerSpec = parseTrigger('interval=500ms,count=10k');
 * spec; // { intervalMs: 500, count: 10000 }
 * ```
 */
export interface TriggerSpec {
  intervalMs?: number;
  count?: number;
  bytes?: number;
}

/**
 * What {@link parseTrigger} accepts (and the runner's `trigger` option): a spec string, or the object form with
 * units allowed in each field.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect, type TriggerInput } from 'shardflow';
 * const trigger: TriggerInput = { count: '1k', interval: '2s' }; // same as 'count=1k,interval=2s'
 * await pipeline('t').from(generator({ count: 5_000, make: (i) => i })).to(collect<number>().sink).run({ mode: 'batch', trigger });
 * ```
 */
export type TriggerInput = string | { interval?: number | string; count?: number | string; bytes?: number | string };

/**
 * Parses `interval=5s,count=1000,bytes=1mb` (any non-empty subset, any order) or the object form. Throws
 * {@link ConfigError} naming the bad part: an unknown trigger, a repeated one, a bad value, zero, or an empty spec.
 *
 * @example
 * ```ts
 * import { parseTrigger } from 'shardflow';
 * parseTrigger('count=500');                  // { count: 500 }
 * parseTrigger({ interval: '100ms' });        // { intervalMs: 100 }
 * ```
 */
export function parseTrigger(input: TriggerInput): TriggerSpec {
  const parts: Array<[string, number | string]> = [];
  if (typeof input === 'string') {
    if (input.trim() === '') throw new ConfigError('empty trigger spec: give interval=, count= and/or bytes=');
    for (const part of input.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0)
        throw new ConfigError(`bad trigger "${part.trim()}": expected name=value (e.g. count=1000)`, {
          details: { spec: input, part },
        });
      parts.push([part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim()]);
    }
  } else if (input && typeof input === 'object') {
    for (const [name, value] of Object.entries(input)) if (value !== undefined) parts.push([name, value]);
    if (parts.length === 0) throw new ConfigError('empty trigger: give interval, count and/or bytes');
  } else {
    throw new ConfigError(`bad trigger ${String(input)}: expected a string or an object`);
  }
  const spec: TriggerSpec = {};
  const seen = new Set<string>();
  for (const [name, value] of parts) {
    if (seen.has(name)) throw new ConfigError(`trigger "${name}" given twice`, { details: { trigger: name } });
    seen.add(name);
    let parsed: number;
    if (name === 'interval') parsed = spec.intervalMs = parseDuration(value, 'trigger interval');
    else if (name === 'count') parsed = spec.count = parseCount(value, 'trigger count');
    else if (name === 'bytes') parsed = spec.bytes = parseBytes(value, 'trigger bytes');
    else
      throw new ConfigError(`unknown trigger "${name}": expected interval, count or bytes`, {
        details: { trigger: name },
      });
    if (!(parsed > 0)) throw new ConfigError(`trigger ${name} must be more than zero`, { details: { trigger: name } });
  }
  return spec;
}

/**
 * Tracks one group being collected and says when a trigger fires. The interval runs from the group's first record.
 *
 * @example
 * ```ts
 * import { BatchTrigger, parseTrigger } from 'shardflow';
 * const t = new BatchTrigger(parseTrigger('count=2'));
 * t.add(10); t.add(10);
 * t.fired(); // 'count'
 * ```
 */
export class BatchTrigger {
  private records = 0;
  private size = 0;
  private startedAt: number | undefined;

  constructor(
    readonly spec: TriggerSpec,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one record into the group. */
  add(bytes: number): void {
    if (this.startedAt === undefined) this.startedAt = this.now();
    this.records++;
    this.size += bytes;
  }

  /** Which trigger fired, if any (checked in the order count, bytes, interval). */
  fired(): 'count' | 'bytes' | 'interval' | undefined {
    if (this.spec.count !== undefined && this.records >= this.spec.count) return 'count';
    if (this.spec.bytes !== undefined && this.size >= this.spec.bytes) return 'bytes';
    if (this.spec.intervalMs !== undefined && this.startedAt !== undefined && this.msLeft() <= 0) return 'interval';
    return undefined;
  }

  /** Milliseconds until the interval trigger fires (Infinity without one or before the first record). */
  msLeft(): number {
    if (this.spec.intervalMs === undefined || this.startedAt === undefined) return Infinity;
    return this.startedAt + this.spec.intervalMs - this.now();
  }

  get pending(): number {
    return this.records;
  }

  reset(): void {
    this.records = 0;
    this.size = 0;
    this.startedAt = undefined;
  }
}
