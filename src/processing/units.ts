/**
 * Parsing of the human-written quantities a job takes on its command line or in code: durations (`5s`, `250ms`,
 * `2m`), sizes (`1mb`, `64kb`) and counts (`1000`, `10k`). Plain numbers given in code pass through unchanged, so
 * every option that takes one of these also takes a number (milliseconds, bytes, records).
 *
 * @example
 * ```ts
 * import { parseDuration, parseBytes, parseCount } from 'shardflow';
 * parseDuration('5s');   // 5000
 * parseBytes('1mb');     // 1048576
 * parseCount('10k');     // 10000
 * ```
 */
import { ConfigError } from '../errors/index.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const COUNT_UNITS: Record<string, number> = { '': 1, k: 1000, m: 1_000_000 };

/**
 * A duration in milliseconds: a number, or a string like `250ms`, `5s`, `2m`, `1h`.
 *
 * @example
 * ```ts
 * import { parseDuration, type Duration } from 'shardflow';
 * const timeouts: Duration[] = [1500, '1.5s'];
 * timeouts.map((d) => parseDuration(d)); // [1500, 1500]
 * ```
 */
export type Duration = number | string;

function parseUnit(what: string, input: number | string, units: Record<string, number>, integer: boolean): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0 || (integer && !Number.isInteger(input)))
      throw new ConfigError(`${what} must be a non-negative ${integer ? 'integer' : 'number'}, got ${input}`, {
        details: { what, input },
      });
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(input));
  const unit = m?.[2]?.toLowerCase() ?? '';
  if (!m || !(unit in units))
    throw new ConfigError(
      `bad ${what} "${input}": expected a number with one of the units ${Object.keys(units)
        .filter((u) => u)
        .join(', ')}${'' in units ? ' (or none)' : ''}`,
      { details: { what, input } },
    );
  const value = Number(m[1]) * units[unit]!;
  if (integer && !Number.isInteger(value))
    throw new ConfigError(`bad ${what} "${input}": must come to a whole number`, { details: { what, input } });
  return value;
}

/**
 * Milliseconds from `5s`, `250ms`, `2m`, `1h` or a number of milliseconds. Throws {@link ConfigError}; `what` names
 * the option in its message.
 *
 * @example
 * ```ts
 * import { parseDuration } from 'shardflow';
 * parseDuration('250ms'); // 250
 * parseDuration('2m');    // 120000
 * parseDuration(1500);    // 1500
 * parseDuration('5 weeks', 'timeout'); // throws ConfigError: bad timeout "5 weeks": expected a number with one of the units ms, s, m, h
 * ```
 */
export function parseDuration(input: Duration, what = 'duration'): number {
  return parseUnit(what, input, DURATION_UNITS, false);
}

/**
 * Bytes from `512b`, `64kb`, `1mb`, `2gb` (powers of 1024) or a number of bytes, rounded down. Throws
 * {@link ConfigError}; `what` names the option in its message.
 *
 * @example
 * ```ts
 * import { parseBytes } from 'shardflow';
 * parseBytes('64kb');  // 65536
 * parseBytes('1.5kb'); // 1536
 * parseBytes(4096);    // 4096
 * ```
 */
export function parseBytes(input: number | string, what = 'size'): number {
  return Math.floor(parseUnit(what, input, BYTE_UNITS, false));
}

/**
 * A count from `1000`, `10k`, `1m` or a number; it must be a whole number. Throws {@link ConfigError}; `what` names
 * the option in its message.
 *
 * @example
 * ```ts
 * import { parseCount } from 'shardflow';
 * parseCount('10k');  // 10000
 * parseCount('2.5m'); // 2500000
 * parseCount('1.5');  // throws ConfigError: bad count "1.5": must come to a whole number
 * ```
 */
export function parseCount(input: number | string, what = 'count'): number {
  return parseUnit(what, input, COUNT_UNITS, true);
}
