/**
 * Number formatting for the reasons the autoscaler gives. Reasons are read by people (`shardflow status`, logs), so
 * `1.9 GiB` beats `2040109465.6` and `30 s` beats `30000`.
 *
 * @module
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/**
 * A metric value with a unit that suits the metric's name: binary units when the name mentions bytes, otherwise a
 * plain number shortened with `k` / `M` / `G`.
 *
 * @example
 * ```ts
 * formatValue('bytes', 2_040_109_465); // '1.9 GiB'
 * formatValue('callsPerSec', 12_345);  // '12.3k'
 * formatValue('inFlight', 3.25);       // '3.25'
 * ```
 */
export function formatValue(metric: string, value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (/bytes/i.test(metric)) return formatBytes(value);
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${short(value / 1e9)}G`;
  if (abs >= 1e6) return `${short(value / 1e6)}M`;
  if (abs >= 1e3) return `${short(value / 1e3)}k`;
  return short(value);
}

/**
 * A byte count in binary units, one decimal below 10 of a unit.
 *
 * @example
 * ```ts
 * formatBytes(1536 * 2 ** 20); // '1.5 GiB'
 * ```
 */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${Math.abs(value) < 10 ? trimZero(value.toFixed(1)) : Math.round(value)} ${BYTE_UNITS[unit]}`;
}

/**
 * A duration in the coarsest unit that still reads exactly enough: ms, s, min or h.
 *
 * @example
 * ```ts
 * formatDuration(30_000);  // '30 s'
 * formatDuration(300_000); // '5 min'
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 120_000) return `${short(ms / 1000)} s`;
  if (Math.abs(ms) < 2 * 3_600_000) return `${short(ms / 60_000)} min`;
  return `${short(ms / 3_600_000)} h`;
}

/** Three significant digits at most, without trailing zeros: `1.2`, `12.3`, `123`, `0.05`. */
export function short(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(3)));
}

function trimZero(fixed: string): string {
  return fixed.endsWith('.0') ? fixed.slice(0, -2) : fixed;
}
