/** Command-line options of `npm run bench:compute` (pass them after `--`: `npm run bench:compute -- --seconds 10`). */
import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { COMMON_ARGS, PROCESS_ARGS, docsPath, list, positive, runLengths } from '../options.js';

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

export function parseComputeOptions(argv: string[]): ComputeOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_ARGS,
      ...PROCESS_ARGS,
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      systems: { type: 'string' },
      servers: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const concurrency = [
    ...new Set((values.concurrency ?? '64,1').split(',').map((s) => positive('concurrency', s.trim(), 0))),
  ];
  // In the fixed order, whatever order they are given in.
  const chosen = list('systems', values.systems, COMPUTE_SYSTEMS);
  const systems = COMPUTE_SYSTEMS.filter((s) => chosen.includes(s));
  const servers = positive('servers', values.servers, 2);
  if (servers > 16) throw new Error('--servers must be at most 16');
  return {
    ...runLengths(values),
    concurrency,
    systems,
    servers,
    docs: docsPath(values),
    tmp: values.tmp ?? tmpdir(),
    cpuProfDir: values['cpu-prof-dir'],
  };
}
