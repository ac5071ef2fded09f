/** The results table (markdown, also printed), the machine it ran on, and the docs/benchmarks.md section. */
import { readFileSync } from 'node:fs';
import { cpus, totalmem, availableParallelism, release } from 'node:os';
import { median, type Sample } from './load.js';
import type { BenchOptions, OpName, SystemName } from './args.js';
import type { FloorResult } from './engine-floor.js';
import { writeDocsSection } from './docs.js';

export const START_MARKER = '<!-- bench:kv start -->';
export const END_MARKER = '<!-- bench:kv end -->';

export interface Cell {
  system: SystemName;
  op: OpName;
  concurrency: number;
  runs: Sample[];
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  redis: string;
  ioredis: string;
  lmdb: string;
}

function packageVersion(name: string): string {
  try {
    const path = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(redis: string): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // Not Linux: keep os.cpus()'s model.
  }
  return {
    cpu,
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    redis,
    ioredis: packageVersion('ioredis'),
    lmdb: packageVersion('lmdb'),
  };
}

export function formatLatency(us: number): string {
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)} ms`;
  return `${(us / 1000).toFixed(1)} ms`;
}

function formatRate(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

interface Summary {
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  clientCpuUsPerOp: number;
  serverCpuUsPerOp: number | undefined;
  errors: number;
  misses: number;
}

export function summarize(cell: Cell): Summary {
  const server = cell.runs.map((r) => r.serverCpuUsPerOp);
  return {
    opsPerSec: median(cell.runs.map((r) => r.opsPerSec)),
    p50Us: median(cell.runs.map((r) => r.p50Us)),
    p99Us: median(cell.runs.map((r) => r.p99Us)),
    clientCpuUsPerOp: median(cell.runs.map((r) => r.clientCpuUsPerOp)),
    serverCpuUsPerOp: server.every((x) => x !== undefined) ? median(server as number[]) : undefined,
    errors: cell.runs.reduce((a, r) => a + r.errors, 0),
    misses: cell.runs.reduce((a, r) => a + r.misses, 0),
  };
}

const TARGETS: Record<OpName, number> = { put: 0.5, get: 0.7 };

function find(cells: Cell[], system: SystemName, op: OpName, concurrency: number): Cell | undefined {
  return cells.find((c) => c.system === system && c.op === op && c.concurrency === concurrency);
}

/** Throughput ratio shardflow / Redis for one workload, when both were measured. */
export function ratio(cells: Cell[], op: OpName, concurrency: number): number | undefined {
  const s = find(cells, 'shardflow', op, concurrency);
  const r = find(cells, 'redis', op, concurrency);
  if (!s || !r || s.runs.length === 0 || r.runs.length === 0) return undefined;
  return summarize(s).opsPerSec / summarize(r).opsPerSec;
}

/** The results as a markdown table, shardflow and Redis side by side per workload. */
export function resultsTable(cells: Cell[]): string {
  const rows = [
    '| system | op | concurrency | ops/s (median) | ops/s per run | p50 | p99 | CPU µs/op: client + servers | shardflow / Redis (ops/s) |',
    '|---|---|--:|--:|---|--:|--:|--:|--:|',
  ];
  const workloads: { op: OpName; concurrency: number }[] = [];
  for (const c of cells) {
    if (!workloads.some((w) => w.op === c.op && w.concurrency === c.concurrency)) {
      workloads.push({ op: c.op, concurrency: c.concurrency });
    }
  }
  for (const w of workloads) {
    for (const system of ['shardflow', 'redis'] as const) {
      const cell = find(cells, system, w.op, w.concurrency);
      if (!cell || cell.runs.length === 0) continue;
      const s = summarize(cell);
      const r = system === 'shardflow' ? ratio(cells, w.op, w.concurrency) : undefined;
      const flags = [s.errors ? `${s.errors} errors` : '', s.misses ? `${s.misses} wrong gets` : ''].filter(Boolean);
      rows.push(
        [
          '',
          system === 'redis' ? 'Redis Cluster' : 'shardflow',
          w.op,
          String(w.concurrency),
          formatRate(s.opsPerSec) + (flags.length ? ` (${flags.join(', ')})` : ''),
          cell.runs.map((x) => formatRate(x.opsPerSec)).join(' / '),
          formatLatency(s.p50Us),
          formatLatency(s.p99Us),
          `${Math.round(s.clientCpuUsPerOp)} + ${s.serverCpuUsPerOp === undefined ? '?' : Math.round(s.serverCpuUsPerOp)}`,
          r === undefined ? '' : `**${(r * 100).toFixed(0)}%**`,
          '',
        ]
          .join(' | ')
          .trim(),
      );
    }
  }
  return rows.join('\n');
}

/** One line per target of the issue: the throughput ratio at the highest concurrency measured (the pipelined case). */
export function verdicts(cells: Cell[]): string[] {
  const lines: string[] = [];
  for (const op of ['put', 'get'] as const) {
    const levels = [...new Set(cells.filter((c) => c.op === op).map((c) => c.concurrency))].sort((a, b) => b - a);
    for (const concurrency of levels.slice(0, 1)) {
      const r = ratio(cells, op, concurrency);
      if (r === undefined) continue;
      const target = TARGETS[op];
      const met = r >= target;
      lines.push(
        `${op} at concurrency ${concurrency}: shardflow reaches ${(r * 100).toFixed(0)}% of Redis Cluster's throughput ` +
          `(target ≥ ${target * 100}%): ${met ? 'met' : 'NOT met'}`,
      );
    }
  }
  return lines;
}

export interface ReportMeta {
  options: BenchOptions;
  machine: Machine;
  date: string;
  command: string;
  floor: FloorResult[];
  elapsedSeconds: number;
}

/** How busy the host was with other work while the benchmark measured (a noisy neighbour skews everything). */
export function hostLoadLine(cells: Cell[]): string {
  const other = cells.flatMap((c) => c.runs.map((r) => r.otherCores)).filter((x): x is number => x !== undefined);
  if (other.length === 0) return 'CPU used by other processes during the runs: unknown (no /proc).';
  return (
    `CPU used by other processes on the host during the measured windows: median ${median(other).toFixed(2)} cores, ` +
    `max ${Math.max(...other).toFixed(2)} (of ${availableParallelism()}; this includes the kernel's own threads, ` +
    'e.g. for disk I/O).'
  );
}

/** One sentence on the storage engine measured alone, per durability mode. */
export function floorLine(floor: FloorResult[]): string {
  const modes = [...new Set(floor.map((f) => f.durability))];
  const perMode = modes.map((mode) => {
    const parts = floor
      .filter((f) => f.durability === mode)
      .map(
        (f) =>
          `${Math.round(f.sample.opsPerSec).toLocaleString('en-US')} puts/s at concurrency ${f.concurrency} ` +
          `(p50 ${formatLatency(f.sample.p50Us)}, ${Math.round(f.sample.clientCpuUsPerOp)} µs CPU per put)`,
      );
    return `durability \`${mode}\`: ${parts.join(', ')}`;
  });
  return (
    'Storage engine alone (one StorageEngine in the benchmark process, no network, same disk), ' +
    `${perMode.join('; ')}.`
  );
}

export function docsSection(cells: Cell[], meta: ReportMeta): string {
  const { options: o, machine: m } = meta;
  const lines = [
    START_MARKER,
    '',
    '## Key-value: shardflow vs Redis Cluster',
    '',
    `Run on ${meta.date} with \`${meta.command}\` (${Math.round(meta.elapsedSeconds)} s in all).`,
    '',
    resultsTable(cells),
    '',
    ...verdicts(cells).map((v) => `- ${v}`),
    '',
    ...(meta.floor.length > 0
      ? [
          floorLine(meta.floor) +
            ` That is one node's ceiling: at concurrency ${Math.max(...o.concurrency)} each of the ${o.nodes} nodes ` +
            `sees about ${Math.ceil(Math.max(...o.concurrency) / o.nodes)} puts in flight. The cluster above runs ` +
            'the default, `process`.',
          '',
        ]
      : []),
    `Each row is the median of ${o.repeats} run${o.repeats === 1 ? '' : 's'} of ${o.seconds} s measured after ${o.warmup} s of warm-up ` +
      `(the ops/s of each run are listed); p50 and p99 are medians of the runs' percentiles, from per-operation ` +
      `HDR histograms (µs resolution) of the time from issuing an operation to its answer, as the client sees it. ` +
      'CPU µs/op is the CPU time (user + system, all threads) the benchmark process and the server processes spent ' +
      'in the measured window, divided by the operations completed (servers: /proc, 10 ms ticks).',
    '',
    '### Setup',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores available, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}.`,
    `- Node ${m.node}; Redis ${m.redis}; ioredis ${m.ioredis}; lmdb ${m.lmdb}.`,
    `- ${hostLoadLine(cells)}`,
    `- shardflow: local cluster of ${o.nodes} storage node processes plus the embedded coordinator ` +
      '(`startLocalCluster`), hash namespace `default` (4096 slots); client `connect()` from the benchmark process.',
    `- Redis Cluster: ${o.nodes} \`redis-server\` masters on loopback, no replicas, ` +
      "`--appendonly yes --appendfsync everysec --save ''`; client ioredis `Cluster` with `enableAutoPipelining: true`.",
    `- Workload: keys \`key:0\` … \`key:${o.keyspace - 1}\` drawn uniformly at random; the value is the same ` +
      `${o.valueBytes}-byte JSON string on both sides; every key is written once before the measurements, so puts ` +
      'overwrite and every get finds its key (and is checked to return the stored value). Concurrency N means N async ' +
      'loops each awaiting one operation at a time; the clients pipeline what the loops issue together.',
    '- The load generator is this benchmark process, separate from the server processes on both sides. Everything ' +
      `shares the same ${m.cores} cores: the client, ${o.nodes} storage nodes and the coordinator, or the client ` +
      `and ${o.nodes} Redis masters. Runs alternate between the systems (repeat 1 of every workload on both, then ` +
      'repeat 2, …) so drift on the host affects both alike.',
    '',
    '### Durability parity',
    '',
    '- shardflow, in its default durability mode `process` (the one measured: the local cluster starts its nodes ' +
      'without `--durability`), answers a put once its LMDB transaction has committed; LMDB is opened with ' +
      '`noSync` and a timer flushes the environment to the device once a second. An acknowledged write survives a ' +
      'crash (kill -9) of the node process; an OS crash or power loss can lose about the last second.',
    '- Redis with `appendfsync everysec` writes the AOF before answering and fsyncs it once a second: an ' +
      'acknowledged write survives a crash of `redis-server`; an OS crash or power loss can lose up to about a ' +
      'second (two, if the fsync lags).',
    '- So the two are at parity for what is acknowledged and what a crash can take. One difference remains on ' +
      "power loss: LMDB's documentation of `MDB_NOSYNC` warns that, unless the filesystem preserves write order, a " +
      'system crash between flushes can also corrupt the environment, where Redis at worst truncates the tail of ' +
      'its AOF. Neither side replicates here (no replicas, one copy).',
    '- shardflow\'s other mode, `device`, flushes (fdatasync) every transaction before answering; lmdb-js commits ' +
      'one transaction per flush, so puts are then paced by the disk — the storage engine line above shows what ' +
      "that costs on this machine (Redis's counterpart, `appendfsync always`, is not measured here).",
    '',
    '### Reading the numbers',
    '',
    '- Throughput at concurrency 64 is what the targets of the issue are about: shardflow put ≥ 50% and get ≥ 70% ' +
      "of Redis Cluster's. Concurrency 1 shows the latency of one request with nothing queued in front of it.",
    `- With ${m.cores} cores for the client and all the servers together, throughput here is mostly a measure of ` +
      'CPU spent per operation (the CPU µs/op column), client and servers alike. A bigger machine, or servers on ' +
      'other hosts, would change the absolute numbers; the CPU per operation carries over better than the ratios.',
    '- Numbers on a shared or virtual machine move from run to run (the per-run columns show by how much); the ' +
      'line on other processes above says how busy the host was with other work meanwhile.',
    '',
    END_MARKER,
  ];
  return lines.join('\n');
}

/** Replaces the bench:kv section of the docs file (creating the file, or appending the section, if needed). */
export async function writeDocs(path: string, section: string): Promise<void> {
  await writeDocsSection(path, section, { start: START_MARKER, end: END_MARKER });
}
