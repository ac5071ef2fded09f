/** bench:compute's results table (markdown, also printed) and its section of docs/benchmarks.md. */
import { availableParallelism } from 'node:os';
import { median } from '../load.js';
import { END_MARKER as KV_END_MARKER, formatLatency, type Machine } from '../report.js';
import type { ComputeOptions, ComputeSystem } from './args.js';
import type { CallSample } from './load.js';
import { writeDocsSection } from '../docs.js';

export const START_MARKER = '<!-- bench:compute start -->';
export const END_MARKER = '<!-- bench:compute end -->';

/** The target at the highest concurrency: shardflow's calls/s at least this many times Moleculer's. */
export const TARGET_RATIO = 2;

export interface ComputeCell {
  system: ComputeSystem;
  concurrency: number;
  runs: CallSample[];
}

interface Summary {
  callsPerSec: number;
  p50Us: number;
  p99Us: number;
  clientCpuUsPerCall: number;
  serverCpuUsPerCall: number | undefined;
  supportCpuUsPerCall: number | undefined;
  errors: number;
  wrong: number;
}

function medianOf(values: (number | undefined)[]): number | undefined {
  return values.every((v) => v !== undefined) && values.length > 0 ? median(values as number[]) : undefined;
}

export function summarize(cell: ComputeCell): Summary {
  return {
    callsPerSec: median(cell.runs.map((r) => r.callsPerSec)),
    p50Us: median(cell.runs.map((r) => r.p50Us)),
    p99Us: median(cell.runs.map((r) => r.p99Us)),
    clientCpuUsPerCall: median(cell.runs.map((r) => r.clientCpuUsPerCall)),
    serverCpuUsPerCall: medianOf(cell.runs.map((r) => r.serverCpuUsPerCall)),
    supportCpuUsPerCall: medianOf(cell.runs.map((r) => r.supportCpuUsPerCall)),
    errors: cell.runs.reduce((a, r) => a + r.errors, 0),
    wrong: cell.runs.reduce((a, r) => a + r.wrong, 0),
  };
}

const NAMES: Record<ComputeSystem, string> = { shardflow: 'shardflow', moleculer: 'Moleculer (TCP)' };

function find(cells: ComputeCell[], system: ComputeSystem, concurrency: number): ComputeCell | undefined {
  return cells.find((c) => c.system === system && c.concurrency === concurrency && c.runs.length > 0);
}

/** shardflow's calls/s over Moleculer's at one concurrency, when both were measured. */
export function ratio(cells: ComputeCell[], concurrency: number): number | undefined {
  const s = find(cells, 'shardflow', concurrency);
  const m = find(cells, 'moleculer', concurrency);
  return s && m ? summarize(s).callsPerSec / summarize(m).callsPerSec : undefined;
}

function formatRate(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function formatCpu(x: number | undefined): string {
  return x === undefined ? '?' : String(Math.round(x));
}

/** The results as a markdown table, shardflow and Moleculer side by side per concurrency. */
export function resultsTable(cells: ComputeCell[]): string {
  const rows = [
    '| system | calls in flight | calls/s (median) | calls/s per run | p50 | p99 | CPU µs/call: client + servers | shardflow / Moleculer (calls/s) |',
    '|---|--:|--:|---|--:|--:|--:|--:|',
  ];
  const levels = [...new Set(cells.map((c) => c.concurrency))];
  for (const concurrency of levels) {
    for (const system of ['shardflow', 'moleculer'] as const) {
      const cell = find(cells, system, concurrency);
      if (!cell) continue;
      const s = summarize(cell);
      const r = system === 'shardflow' ? ratio(cells, concurrency) : undefined;
      const flags = [s.errors ? `${s.errors} errors` : '', s.wrong ? `${s.wrong} wrong answers` : ''].filter(Boolean);
      rows.push(
        [
          '',
          NAMES[system],
          String(concurrency),
          formatRate(s.callsPerSec) + (flags.length ? ` (${flags.join(', ')})` : ''),
          cell.runs.map((x) => formatRate(x.callsPerSec)).join(' / '),
          formatLatency(s.p50Us),
          formatLatency(s.p99Us),
          `${formatCpu(s.clientCpuUsPerCall)} + ${formatCpu(s.serverCpuUsPerCall)}`,
          r === undefined ? '' : `**${r.toFixed(2)}×**`,
          '',
        ]
          .join(' | ')
          .trim(),
      );
    }
  }
  return rows.join('\n');
}

/** The target at the highest concurrency measured, and how the lower levels compare. */
export function verdicts(cells: ComputeCell[]): string[] {
  const lines: string[] = [];
  const levels = [...new Set(cells.map((c) => c.concurrency))].sort((a, b) => b - a);
  levels.forEach((concurrency, i) => {
    const r = ratio(cells, concurrency);
    if (r === undefined) return;
    const s = summarize(find(cells, 'shardflow', concurrency)!);
    const m = summarize(find(cells, 'moleculer', concurrency)!);
    const p99 = `p99 ${formatLatency(s.p99Us)} vs ${formatLatency(m.p99Us)}`;
    if (i === 0) {
      const throughputMet = r >= TARGET_RATIO;
      const p99Met = s.p99Us <= m.p99Us;
      lines.push(
        `${concurrency} calls in flight: shardflow makes ${r.toFixed(2)}× Moleculer's calls/s (target ≥ ${TARGET_RATIO}×): ` +
          `${throughputMet ? 'met' : 'NOT met'}; ${p99} (target: equal or better): ${p99Met ? 'met' : 'NOT met'}`,
      );
    } else {
      lines.push(`${concurrency} call${concurrency === 1 ? '' : 's'} in flight: shardflow makes ${r.toFixed(2)}× Moleculer's calls/s; ${p99}`);
    }
  });
  return lines;
}

/** How busy the host was with other work while the benchmark measured (a noisy neighbour skews everything). */
export function hostLoadLine(cells: ComputeCell[]): string {
  const other = cells.flatMap((c) => c.runs.map((r) => r.otherCores)).filter((x): x is number => x !== undefined);
  if (other.length === 0) return 'CPU used by other processes during the runs: unknown (no /proc).';
  return (
    `CPU used by other processes on the host during the measured windows: median ${median(other).toFixed(2)} cores, ` +
    `max ${Math.max(...other).toFixed(2)} (of ${availableParallelism()}; this includes the kernel's own threads, and ` +
    "the other system's processes, idle meanwhile)."
  );
}

/** What shardflow's coordinator and storage node, idle during the benchmark, used while its calls were measured. */
export function supportLine(cells: ComputeCell[]): string | undefined {
  const support = cells
    .filter((c) => c.system === 'shardflow')
    .flatMap((c) => c.runs.map((r) => (r.supportCpuUsPerCall === undefined ? undefined : r.supportCpuUsPerCall * r.calls / r.seconds)))
    .filter((x): x is number => x !== undefined);
  if (support.length === 0) return undefined;
  return (
    `shardflow's embedded coordinator and storage node take no part in a call; while shardflow was measured they ` +
    `used a median ${(median(support) / 1e4).toFixed(2)}% of a core together (max ${(Math.max(...support) / 1e4).toFixed(2)}%: ` +
    'membership lease renewals), not counted in the servers column.'
  );
}

export interface ComputeReportMeta {
  options: ComputeOptions;
  machine: Machine;
  moleculer: string;
  date: string;
  command: string;
  elapsedSeconds: number;
}

export function docsSection(cells: ComputeCell[], meta: ComputeReportMeta): string {
  const { options: o, machine: m } = meta;
  const top = Math.max(...o.concurrency);
  const support = supportLine(cells);
  const lines = [
    START_MARKER,
    '',
    '## Compute: shardflow vs Moleculer (service calls)',
    '',
    `Run on ${meta.date} with \`${meta.command}\` (${Math.round(meta.elapsedSeconds)} s in all).`,
    '',
    resultsTable(cells),
    '',
    ...verdicts(cells).map((v) => `- ${v}`),
    '',
    `Each row is the median of ${o.repeats} run${o.repeats === 1 ? '' : 's'} of ${o.seconds} s measured after ${o.warmup} s ` +
      'of warm-up (the calls/s of each run are listed; before the first run each system also had one unmeasured ' +
      `warm-up run at ${top} calls in flight); p50 and p99 are medians of the runs' percentiles, from per-call HDR ` +
      'histograms (µs resolution) of the time from issuing a call to its answer, as the caller sees it. CPU µs/call ' +
      'is the CPU time (user + system, all threads) the benchmark process (the caller) and the service-hosting ' +
      'processes spent in the measured window, divided by the calls completed (servers: /proc, 10 ms ticks).',
    '',
    '### Setup',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores available, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}.`,
    `- Node ${m.node}; Moleculer ${meta.moleculer}.`,
    `- ${hostLoadLine(cells)}`,
    '- Workload: the service `echo` answers with its payload, `{ n: 1, s: \'hello\' }`, on both sides (every answer ' +
      'is checked). N calls in flight means N async loops in the benchmark process, each awaiting one call at a time; ' +
      'both callers pipeline what the loops issue together over one connection per service process.',
    `- shardflow: \`startLocalCluster({ storage: 1, compute: ${o.servers}, services })\` — ${o.servers} compute node ` +
      'processes hosting `echo` (bench/lib/compute/services.ts), plus the embedded coordinator and one storage node, ' +
      `the minimum a cluster runs; the caller is \`connect()\` in the benchmark process, \`client.call('echo', payload, ` +
      "{ strategy: 'round-robin' })` (default deadline 10 s). Measuring starts once the client sees both instances.",
    ...(support ? [`- ${support}`] : []),
    `- Moleculer: ${o.servers} processes each running a \`ServiceBroker\` with an \`echo\` service whose action returns ` +
      "`ctx.params`, and a caller broker without services in the benchmark process, `broker.call('echo.echo', payload)`. " +
      "Transporter `TCP` with `udpDiscovery: false` and static `urls` (127.0.0.1 only; each broker advertises 127.0.0.1 " +
      'as its only address), `registry: { strategy: \'RoundRobin\', preferLocal: false }`, `metrics: false`, ' +
      '`tracing: false`, logger at `warn`; otherwise its defaults: JSON serializer, no request timeout, no retries, ' +
      'circuit breaker or bulkhead. Measuring starts once `waitForServices(\'echo\')` resolved and the caller lists ' +
      '`echo` on both service nodes. (Moleculer 0.14\'s TCP transporter listens on every interface, with no option ' +
      'to bind one; every connection here is to 127.0.0.1.)',
    `- Everything shares the same ${m.cores} cores: the caller, the ${o.servers} service processes of the system measured ` +
      "and the other system's processes, idle meanwhile. Runs alternate between the systems, and which goes first " +
      'alternates from one repeat to the next, so drift on the host affects both alike.',
    '',
    '### Reading the numbers',
    '',
    `- The issue's target is about ${top} calls in flight: shardflow at least ${TARGET_RATIO}× Moleculer's calls/s, ` +
      'with an equal or better p99. One call in flight shows the latency of a call with nothing queued in front of it.',
    `- With ${m.cores} cores for the caller and the servers together, throughput here largely measures the CPU spent ` +
      'per call (the CPU µs/call column), caller and servers alike; the CPU per call carries over to other machines ' +
      'better than the ratios do. With one call in flight most of that CPU, on both sides, is the kernel sending on ' +
      'loopback TCP (in profiles made with `--cpu-prof-dir`, write syscalls take 60–80% of the busy time), so the two ' +
      'cannot be far apart there; with many in flight, the work per call in JavaScript and the number of writes per ' +
      'call decide.',
    `- The p99 at ${top} in flight is set less by either system than by the host: ${o.servers} busy service processes ` +
      `and the caller share ${m.cores} cores, so a process waits for the CPU now and then, and a garbage collection ` +
      "pause stretched that way stalls every call in flight at once (the slow calls come in bursts of all of them). " +
      "Both systems meet the same stalls; their p99s stay close even where their p50s are not.",
    '- The two do not give exactly the same guarantees per call: shardflow sends every call with a deadline (swept by ' +
      'one timer per connection), bounds its size and holds the handler to the service timeout on the node; ' +
      'Moleculer, as configured by default, waits for an answer indefinitely. shardflow frames are msgpack, ' +
      "Moleculer's JSON.",
    '- Numbers on a shared or virtual machine move from run to run (the per-run column shows by how much); the line ' +
      'on other processes above says how busy the host was with other work meanwhile.',
    '',
    END_MARKER,
  ];
  return lines.join('\n');
}

/**
 * Replaces the bench:compute section of the docs file; where there is none yet, it goes right after the bench:kv
 * section (or at the end). Everything outside the markers is kept as it is.
 */
export async function writeComputeDocs(path: string, section: string): Promise<void> {
  await writeDocsSection(path, section, { start: START_MARKER, end: END_MARKER, after: KV_END_MARKER }, '# Benchmarks\n');
}
