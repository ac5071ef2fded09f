/** Command-line options of `npm run bench:kv` (pass them after `--`: `npm run bench:kv -- --seconds 10`). */
import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { COMMON_ARGS, PROCESS_ARGS, docsPath, list, positive, runLengths } from './options.js';

export type SystemName = 'shardflow' | 'redis';
export type OpName = 'put' | 'get';

export interface BenchOptions {
  repeats: number;
  /** Measured seconds per run. */
  seconds: number;
  /** Unmeasured warm-up seconds before each run. */
  warmup: number;
  /** Operations in flight; each level is measured separately. */
  concurrency: number[];
  keyspace: number;
  valueBytes: number;
  systems: SystemName[];
  ops: OpName[];
  /** Storage nodes for shardflow, masters for Redis Cluster. */
  nodes: number;
  /** Markdown file to update, or undefined with --no-docs. */
  docs: string | undefined;
  /** Parent directory of the temporary cluster directories. */
  tmp: string;
  /** Also measure shardflow's storage engine alone, in process (puts at concurrency 1 and per-node depth). */
  engineFloor: boolean;
  /** When set, shardflow's node processes run with --cpu-prof and write their profiles here. */
  cpuProfDir: string | undefined;
}

export const USAGE = `usage: npm run bench:kv -- [options]

  --repeats N          runs per measurement; medians are quoted (default 3)
  --seconds S          measured seconds per run (default 5)
  --warmup S           unmeasured seconds before each run (default 1)
  --concurrency LIST   operations in flight, comma-separated (default 64,1)
  --keyspace N         keys key:0 .. key:N-1 (default 100000)
  --value-bytes N      size of the stored string (default 100)
  --systems LIST       shardflow,redis (default both)
  --ops LIST           put,get (default both)
  --nodes N            shardflow storage nodes and Redis masters (default 3)
  --docs FILE          markdown file whose bench:kv section is replaced (default docs/benchmarks.md)
  --no-docs            print only
  --no-engine-floor    skip the in-process measurement of shardflow's storage engine alone
  --tmp DIR            where the temporary cluster directories go (default the OS temp dir)
  --cpu-prof-dir DIR   profile shardflow's node processes (V8 .cpuprofile files into DIR)
  --help`;

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_ARGS,
      ...PROCESS_ARGS,
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      keyspace: { type: 'string' },
      'value-bytes': { type: 'string' },
      systems: { type: 'string' },
      ops: { type: 'string' },
      nodes: { type: 'string' },
      'no-engine-floor': { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const concurrency = (values.concurrency ?? '64,1').split(',').map((s) => positive('concurrency', s.trim(), 0));
  const valueBytes = positive('value-bytes', values['value-bytes'], 100);
  if (valueBytes < 40) throw new Error('--value-bytes must be at least 40');
  return {
    ...runLengths(values),
    concurrency,
    keyspace: positive('keyspace', values.keyspace, 100_000),
    valueBytes,
    systems: list('systems', values.systems, ['shardflow', 'redis'] as const),
    ops: list('ops', values.ops, ['put', 'get'] as const),
    nodes: positive('nodes', values.nodes, 3),
    docs: docsPath(values),
    engineFloor: !values['no-engine-floor'],
    tmp: values.tmp ?? tmpdir(),
    cpuProfDir: values['cpu-prof-dir'],
  };
}
