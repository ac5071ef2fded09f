/** Command-line options of `npm run bench:compute` (pass them after `--`: `npm run bench:compute -- --seconds 10`). */
import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';

export type ComputeSystem = 'shardflow' | 'moleculer';
export const COMPUTE_SYSTEMS: readonly ComputeSystem[] = ['shardflow', 'moleculer'];

export interface ComputeOptions {
  repeats: number;
  /** Measured seconds per run. */
  seconds: number;
  /** Unmeasured warm-up seconds before each run. */
  warmup: number;
  /** Calls in flight; each level is measured separately. */
  concurrency: number[];
  systems: ComputeSystem[];
  /** Service-hosting processes per system (shardflow compute nodes, Moleculer brokers with the echo service). */
  servers: number;
  /** Markdown file to update, or undefined with --no-docs. */
  docs: string | undefined;
  /** Parent directory of the temporary directories. */
  tmp: string;
  /** When set, every process of both systems (and the benchmark process) is profiled into this directory. */
  cpuProfDir: string | undefined;
}

export const USAGE = `usage: npm run bench:compute -- [options]

  --repeats N          runs per measurement; medians are quoted (default 3)
  --seconds S          measured seconds per run (default 5)
  --warmup S           unmeasured seconds before each run (default 1)
  --concurrency LIST   calls in flight, comma-separated (default 64,1)
  --systems LIST       shardflow,moleculer (default both)
  --servers N          service-hosting processes per system (default 2)
  --docs FILE          markdown file whose bench:compute section is replaced (default docs/benchmarks.md)
  --no-docs            print only
  --tmp DIR            where the temporary directories go (default the OS temp dir)
  --cpu-prof-dir DIR   profile the service processes and the benchmark process (V8 .cpuprofile files into DIR)
  --help`;

function positive(name: string, text: string | undefined, fallback: number, integer = true): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not ${JSON.stringify(text)}`);
  }
  return n;
}

export function parseComputeOptions(argv: string[]): ComputeOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      repeats: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      systems: { type: 'string' },
      servers: { type: 'string' },
      docs: { type: 'string' },
      'no-docs': { type: 'boolean' },
      tmp: { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const concurrency = [
    ...new Set((values.concurrency ?? '64,1').split(',').map((s) => positive('concurrency', s.trim(), 0))),
  ];
  let systems = [...COMPUTE_SYSTEMS];
  if (values.systems !== undefined) {
    const items = values.systems.split(',').map((s) => s.trim()).filter(Boolean);
    for (const item of items) {
      if (!COMPUTE_SYSTEMS.includes(item as ComputeSystem)) {
        throw new Error(`--systems: ${item} is not one of ${COMPUTE_SYSTEMS.join(', ')}`);
      }
    }
    if (items.length === 0) throw new Error('--systems is empty');
    systems = COMPUTE_SYSTEMS.filter((s) => items.includes(s));
  }
  const servers = positive('servers', values.servers, 2);
  if (servers > 16) throw new Error('--servers must be at most 16');
  return {
    repeats: positive('repeats', values.repeats, 3),
    seconds: positive('seconds', values.seconds, 5, false),
    warmup: values.warmup === '0' ? 0 : positive('warmup', values.warmup, 1, false),
    concurrency,
    systems,
    servers,
    docs: values['no-docs'] ? undefined : (values.docs ?? 'docs/benchmarks.md'),
    tmp: values.tmp ?? tmpdir(),
    cpuProfDir: values['cpu-prof-dir'],
  };
}
