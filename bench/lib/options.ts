/** Pieces of argument parsing the benchmark scripts share (each script's own options are in its args module). */

/** A positive number (a whole one unless `integer` is false); `fallback` when the option is absent. */
export function positive(name: string, text: string | undefined, fallback: number, integer = true): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not ${JSON.stringify(text)}`);
  }
  return n;
}

/** A comma-separated list of some of `allowed`, in the order given, each once; all of them when absent. */
export function list<T extends string>(name: string, text: string | undefined, allowed: readonly T[]): T[] {
  if (text === undefined) return [...allowed];
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`--${name}: ${item} is not one of ${allowed.join(', ')}`);
  }
  if (items.length === 0) throw new Error(`--${name} is empty`);
  return [...new Set(items)] as T[];
}

/** The markdown file a complete run updates: `--docs FILE`, docs/benchmarks.md by default, none with `--no-docs`. */
export function docsPath(values: { docs?: string; 'no-docs'?: boolean }): string | undefined {
  return values['no-docs'] ? undefined : (values.docs ?? 'docs/benchmarks.md');
}

/** The options every benchmark script takes (parseArgs specs): runs per measurement, the docs file, help. */
export const COMMON_ARGS = {
  repeats: { type: 'string' },
  warmup: { type: 'string' },
  docs: { type: 'string' },
  'no-docs': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The options of the scripts that start processes: where their temporary directories go, and profiling them. */
export const PROCESS_ARGS = {
  tmp: { type: 'string' },
  'cpu-prof-dir': { type: 'string' },
} as const;

/** `--repeats N` (default 3), `--seconds S` measured per run (default 5), `--warmup S` before each (default 1, 0 allowed). */
export function runLengths(values: { repeats?: string; seconds?: string; warmup?: string }): { repeats: number; seconds: number; warmup: number } {
  return {
    repeats: positive('repeats', values.repeats, 3),
    seconds: positive('seconds', values.seconds, 5, false),
    warmup: values.warmup === '0' ? 0 : positive('warmup', values.warmup, 1, false),
  };
}
