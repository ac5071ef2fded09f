/** Command-line options of `npm run bench:rebalance` (pass them after `--`: `npm run bench:rebalance -- --size 50mb`). */
import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { COMMON_ARGS, PROCESS_ARGS, docsPath } from '../options.js';

export type SystemName = 'shardflow' | 'redis';

export interface RebalanceOptions {
  /** Bytes of values loaded before the scale-out (keys = sizeBytes / valueBytes). */
  sizeBytes: number;
  valueBytes: number;
  repeats: number;
  /** Foreground loops. */
  concurrency: number;
  /** Foreground operations per second in total (0: each loop issues its next operation as soon as one returns). */
  rate: number;
  /** Share of foreground operations that are writes. */
  writeRatio: number;
  /** Unmeasured seconds of foreground load before the baseline. */
  warmup: number;
  /** Seconds of foreground load measured before the scale-out. */
  baseline: number;
  /** shardflow: moves run at once (the `shardflow scale` default is 4). */
  moveConcurrency: number;
  /** shardflow: back off when the storage nodes' p99 passes this multiple of its baseline (0: never; `scale`'s default 3). */
  maxP99Ratio: number;
  /**
   * shardflow: where the rebalance driver runs — `cli`, a \`shardflow scale storage=4\` process of its own (as
   * redis-cli is Redis's), or `in-process`, in the benchmark process beside the foreground client.
   */
  driver: 'cli' | 'in-process';
  /** redis-cli --cluster-pipeline: keys per MIGRATE (redis-cli's default is 10). */
  redisPipeline: number;
  systems: SystemName[];
  docs: string | undefined;
  tmp: string;
  cpuProfDir: string | undefined;
}

export const USAGE = `usage: npm run bench:rebalance -- [options]

Loads the same data into a 3-node shardflow cluster and a 3-master Redis Cluster, runs a fixed foreground load of
reads and writes, adds a 4th node and rebalances onto it, then checks every acknowledged write.

  --size SIZE            data loaded before the scale-out (default 1gb; b, kb, mb, gb, binary: 1kb = 1024 bytes)
  --value-size SIZE      bytes per value (default 1kb)
  --repeat N             runs per system; medians are quoted (default 3)
  --concurrency N        foreground loops, each one operation at a time (default 16)
  --rate N               foreground operations per second in total; 0 = as fast as the loops go (default 4000)
  --write-ratio F        share of foreground operations that are writes (default 0.5)
  --warmup S             unmeasured seconds of foreground load before the baseline (default 2)
  --baseline S           seconds of foreground load measured before the scale-out (default 10)
  --move-concurrency N   shardflow: moves run at once (default 4, as \`shardflow scale\`)
  --max-p99-ratio F      shardflow: halve the copy rate when the nodes' p99 passes F × its baseline (default 3, as
                         \`shardflow scale\`; 0 = never back off)
  --driver WHERE         shardflow: in-process (default: the driver shares the benchmark process with the foreground
                         client) or cli (a \`shardflow scale storage=4\` process of its own, as redis-cli is Redis's;
                         its start-up, about 2 s of TypeScript loading here, counts in the join)
  --redis-pipeline N     redis-cli --cluster-pipeline, keys per MIGRATE (default 10, redis-cli's default)
  --systems LIST         shardflow,redis (default both)
  --docs FILE            markdown file whose bench:rebalance section is replaced (default docs/benchmarks.md)
  --no-docs              print only
  --tmp DIR              where the temporary cluster directories go (default the OS temp dir)
  --cpu-prof-dir DIR     profile shardflow's node processes (V8 .cpuprofile files into DIR, move windows in
                         DIR/windows.json for bench/profile-summary.ts)
  --help`;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 2 ** 20, mb: 2 ** 20, g: 2 ** 30, gb: 2 ** 30 };

/** `1gb` → 1073741824, `1kb` → 1024, `512` → 512 (binary units, case-insensitive, optional `i`: `1GiB`). */
export function parseSize(name: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?(b?)\s*$/i.exec(text);
  const unit = m ? (m[2]! + m[3]!).toLowerCase() : undefined;
  const factor = unit === undefined ? undefined : UNITS[unit];
  if (!m || factor === undefined) throw new Error(`--${name}: ${JSON.stringify(text)} is not a size like 1gb, 50mb, 1kb or 1024`);
  const bytes = Math.round(Number(m[1]) * factor);
  if (!(bytes > 0)) throw new Error(`--${name} must be positive`);
  return bytes;
}

/** 1073741824 → "1 GB", 52428800 → "50 MB", 1024 → "1 KB" (binary units, as --size takes them). */
export function formatSize(bytes: number): string {
  for (const [unit, f] of [['GB', 2 ** 30], ['MB', 2 ** 20], ['KB', 1024]] as const) {
    if (bytes >= f) {
      const x = bytes / f;
      return `${Number.isInteger(x) ? x : x.toFixed(x >= 10 ? 0 : 1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

function number(name: string, text: string | undefined, fallback: number, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  const min = opts.min ?? Number.MIN_VALUE;
  if (!Number.isFinite(n) || n < min || (opts.max !== undefined && n > opts.max) || (opts.integer && !Number.isInteger(n))) {
    throw new Error(
      `--${name} must be ${opts.integer ? 'a whole number' : 'a number'}` +
        `${opts.min === 0 ? ' ≥ 0' : ' > 0'}${opts.max !== undefined ? ` and ≤ ${opts.max}` : ''}, not ${JSON.stringify(text)}`,
    );
  }
  return n;
}

export function parseOptions(argv: string[]): RebalanceOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_ARGS,
      ...PROCESS_ARGS,
      size: { type: 'string' },
      'value-size': { type: 'string' },
      repeat: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      'write-ratio': { type: 'string' },
      baseline: { type: 'string' },
      'move-concurrency': { type: 'string' },
      'max-p99-ratio': { type: 'string' },
      'redis-pipeline': { type: 'string' },
      driver: { type: 'string' },
      systems: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const sizeBytes = parseSize('size', values.size ?? '1gb');
  const valueBytes = parseSize('value-size', values['value-size'] ?? '1kb');
  if (valueBytes < 32) throw new Error('--value-size must be at least 32 bytes (a value carries its write sequence number)');
  if (valueBytes > 512 * 1024) throw new Error('--value-size must be at most 512kb');
  if (sizeBytes / valueBytes < 1000) throw new Error('--size must hold at least 1000 values of --value-size');
  const systems = (values.systems ?? 'shardflow,redis').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of systems) if (s !== 'shardflow' && s !== 'redis') throw new Error(`--systems: ${s} is not shardflow or redis`);
  if (systems.length === 0) throw new Error('--systems is empty');
  return {
    sizeBytes,
    valueBytes,
    repeats: number('repeat', values.repeat ?? values.repeats, 3, { integer: true, min: 1 }),
    concurrency: number('concurrency', values.concurrency, 16, { integer: true, min: 1, max: 4096 }),
    rate: number('rate', values.rate, 4000, { min: 0 }),
    writeRatio: number('write-ratio', values['write-ratio'], 0.5, { min: 0, max: 1 }),
    warmup: number('warmup', values.warmup, 2, { min: 0 }),
    baseline: number('baseline', values.baseline, 10, { min: 1 }),
    moveConcurrency: number('move-concurrency', values['move-concurrency'], 4, { integer: true, min: 1, max: 64 }),
    maxP99Ratio: number('max-p99-ratio', values['max-p99-ratio'], 3, { min: 0 }),
    driver: driverOf(values.driver),
    redisPipeline: number('redis-pipeline', values['redis-pipeline'], 10, { integer: true, min: 1 }),
    systems: [...new Set(systems)] as SystemName[],
    docs: docsPath(values),
    tmp: values.tmp ?? tmpdir(),
    cpuProfDir: values['cpu-prof-dir'],
  };
}

function driverOf(v: string | undefined): 'cli' | 'in-process' {
  if (v === undefined || v === 'cli' || v === 'in-process') return v ?? 'in-process';
  throw new Error(`--driver: ${v} is not cli or in-process`);
}
