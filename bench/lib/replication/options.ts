/** bench:replication: its constants and command-line options. */
import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { COMMON_ARGS, docsPath, positive } from '../options.js';

export const START_MARKER = '<!-- bench:replication start -->';
export const END_MARKER = '<!-- bench:replication end -->';
/** The targets. */
export const THROUGHPUT_TARGET = 0.6;
export const FAILOVER_TARGET_MS = 2000;
export const STORAGE_NODES = 3;
export const NODE_IDS = ['s1', 's2', 's3'];
export const NS = { 1: 'rep1', 3: 'rep3' } as const;

// ---------------------------------------------------------------------------------------------------------------
// Options

export interface ReplicationOptions {
  repeats: number;
  seconds: number;
  warmup: number;
  concurrency: number[];
  keyspace: number;
  valueBytes: number;
  kills: number;
  /** Writes per second of the failover writer. */
  rate: number;
  /** Seconds to wait for writes to a killed node's partitions before counting the failover as failed. */
  failoverTimeout: number;
  /** Seconds to wait for every partition to have its copies again before giving up. */
  healTimeout: number;
  slots: number;
  quick: boolean;
  docs: string | undefined;
  tmp: string;
  /** Where to copy the coordinator's and nodes' logs before the cluster is removed. */
  keepLogs: string | undefined;
}

export const USAGE = `usage: npm run bench:replication -- [options]

On a local cluster of 3 storage node processes: put throughput and latency of a 1-copy namespace against a 3-copy
one (same load), then failover and re-replication times of the 3-copy namespace over repeated kill -9 of a storage
node that leads partitions, while a writer writes continuously to every partition.

  --quick                a short smoke run: --seconds 2 --warmup 0.5 --repeats 1 --kills 3 --keyspace 2000, and no
                         docs unless --docs names a file (options given explicitly still apply)
  --repeats N            throughput runs per namespace; medians are quoted (default 3)
  --seconds S            measured seconds per throughput run (default 5)
  --warmup S             unmeasured seconds before each throughput run (default 1)
  --concurrency LIST     puts in flight, comma-separated (default 64)
  --keyspace N           keys key:0 .. key:N-1 of the throughput runs, written once before (default 10000)
  --value-bytes N        bytes per value (default 1024)
  --kills N              kill -9 / restart cycles (default 20)
  --rate N               writes per second of the writer during the kills (default 2000)
  --failover-timeout S   a failover not done within S seconds counts as failed (default 30)
  --heal-timeout S       give up if the copies are not back within S seconds of a restart (default 180)
  --slots N              slots of both namespaces (default 4096, the default of a hash namespace)
  --docs FILE            markdown file whose bench:replication section is replaced (default docs/benchmarks.md)
  --no-docs              print only
  --tmp DIR              where the temporary cluster directory goes (default the OS temp dir)
  --keep-logs DIR        copy the coordinator's and nodes' logs into DIR before the cluster is removed
  --help`;

export function parseOptions(argv: string[]): ReplicationOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_ARGS,
      tmp: { type: 'string' },
      'keep-logs': { type: 'string' },
      quick: { type: 'boolean' },
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      keyspace: { type: 'string' },
      'value-bytes': { type: 'string' },
      kills: { type: 'string' },
      rate: { type: 'string' },
      'failover-timeout': { type: 'string' },
      'heal-timeout': { type: 'string' },
      slots: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const valueBytes = positive('value-bytes', values['value-bytes'], 1024);
  if (valueBytes < 32) throw new Error('--value-bytes must be at least 32');
  const slots = positive('slots', values.slots, 4096);
  if (slots > 65536) throw new Error('--slots must be at most 65536');
  return {
    repeats: positive('repeats', values.repeats, quick ? 1 : 3),
    seconds: positive('seconds', values.seconds, quick ? 2 : 5, false),
    warmup: values.warmup === '0' ? 0 : positive('warmup', values.warmup, quick ? 0.5 : 1, false),
    concurrency: (values.concurrency ?? '64').split(',').map((s) => positive('concurrency', s.trim(), 0)),
    keyspace: positive('keyspace', values.keyspace, quick ? 2000 : 10_000),
    valueBytes,
    kills: positive('kills', values.kills, quick ? 3 : 20),
    rate: positive('rate', values.rate, 2000),
    failoverTimeout: positive('failover-timeout', values['failover-timeout'], 30, false),
    healTimeout: positive('heal-timeout', values['heal-timeout'], 180, false),
    slots,
    quick,
    // A quick run writes no docs unless a file is named.
    docs: quick && values.docs === undefined ? undefined : docsPath(values),
    tmp: values.tmp ?? tmpdir(),
    keepLogs: values['keep-logs'],
  };
}

