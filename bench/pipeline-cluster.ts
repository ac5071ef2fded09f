/**
 * Distributed pipeline benchmark: how much one job gains from a second compute node. The keyed windowed count of
 * examples/clicks.ts (unpaced generator, 4 splits, state in the storage tier) runs on the compute tier
 * (`run --on-cluster`) of a fresh local cluster with 1 and with 2 compute nodes; the sustained rate is the records
 * read per second from the first reading past 10% of the input (the job's merged metrics, one per checkpoint) to
 * the job's end (its spec removed once the last checkpoint committed).
 * Medians of the repeats go into the bench:pipeline-cluster section of docs/benchmarks.md.
 * `npm run bench:pipeline-cluster -- --help` lists the options.
 */
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openCoordinator } from '../src/client/connect.js';
import { jobKey, jobSpecKey } from '../src/coordination/index.js';
import { submitJob } from '../src/processing/job-host.js';
import type { RunningJobRecord } from '../src/processing/job-registry.js';
import { cpuSnapshot, type CpuSnapshot } from './lib/cpu.js';
import { median } from './lib/load.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';
import { docsPath, positive, runLengths } from './lib/options.js';
import { machineInfo } from './lib/report.js';
import { writeDocsSection } from './lib/docs.js';
import { startShardflowCluster } from './lib/shardflow-cluster.js';

const log = benchLog('pipeline-cluster');
const START = '<!-- bench:pipeline-cluster start -->';
const END = '<!-- bench:pipeline-cluster end -->';
const TARGET_RATIO = 1.5;

const USAGE = `usage: npm run bench:pipeline-cluster -- [options]

  --compute LIST   compute node counts to compare (default 1,2)
  --count N        clicks per run (default 600000)
  --users N        distinct keys (default 1000)
  --storage N      storage nodes (default 1)
  --repeats N      runs per count; medians are reported (default 3)
  --checkpoint-interval D   how often the job checkpoints (default 1s)
  --cpu-prof DIR   write a V8 CPU profile of every cluster process into DIR
  --docs FILE      where to write the section (default docs/benchmarks.md); --no-docs to skip`;

interface Options {
  compute: number[];
  count: number;
  users: number;
  storage: number;
  repeats: number;
  docs: string | undefined;
  cpuProf: string | undefined;
  checkpointInterval: string;
}

function parse(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      compute: { type: 'string' },
      count: { type: 'string' },
      users: { type: 'string' },
      storage: { type: 'string' },
      repeats: { type: 'string' },
      docs: { type: 'string' },
      'no-docs': { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      'checkpoint-interval': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const compute = (values.compute ?? '1,2').split(',').map((x) => positive('--compute', x, 1));
  return {
    compute,
    count: positive('--count', values.count, 600_000),
    users: positive('--users', values.users, 1000),
    storage: positive('--storage', values.storage, 1),
    repeats: runLengths(values).repeats,
    docs: docsPath(values),
    cpuProf: values['cpu-prof'],
    checkpointInterval: values['checkpoint-interval'] ?? '1s',
  };
}

interface Sample {
  recordsPerSec: number;
  seconds: number;
  /** Cores the cluster's processes kept busy, and the whole host, over the measured part. */
  clusterCores: number | undefined;
  hostCores: number | undefined;
}

/** One run: a fresh cluster with `compute` nodes, the job submitted, its progress read from the job record. */
async function runOnce(o: Options, compute: number): Promise<Sample> {
  const cluster = await startShardflowCluster(tmpdir(), o.storage, { compute, ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}) });
  const { coordinator } = await openCoordinator({ dir: cluster.dir });
  try {
    const id = 'bench-clicks';
    const points: Array<{ t: number; records: number; cpu: CpuSnapshot }> = [];
    let ended!: () => void;
    const gone = new Promise<void>((r) => (ended = r));
    const watch = await coordinator.watch(jobKey(id), (e) => {
      if (e.type !== 'put' || !e.value) return;
      const rec = JSON.parse(e.value) as RunningJobRecord;
      if (rec.metrics) points.push({ t: performance.now(), records: rec.metrics.source.records, cpu: cpuSnapshot(cluster.pids) });
    });
    // The end of the input is the last reading: every record read by then.
    const specWatch = await coordinator.watch(jobSpecKey(id), (e) => {
      if (e.type !== 'delete') return;
      points.push({ t: performance.now(), records: o.count, cpu: cpuSnapshot(cluster.pids) });
      ended();
    });
    const began = performance.now();
    await submitJob(coordinator, {
      id,
      file: resolve('examples/clicks.ts'),
      args: ['--source', 'generator', '--splits', '4', '--rate', '100000000', '--count', String(o.count), '--users', String(o.users), '--out', `ns:${id}`],
      checkpointInterval: o.checkpointInterval,
    });
    await gone;
    await watch.close();
    await specWatch.close();
    const lo = points.find((p) => p.records >= o.count * 0.1);
    const hi = points.at(-1);
    if (!lo || !hi || hi.t <= lo.t) throw new Error(`too few progress readings (${JSON.stringify(points.map((p) => [Math.round(p.t - began), p.records]))}): raise --count`);
    const cores = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : (b - a) / 1000 / (hi.t - lo.t));
    return {
      recordsPerSec: ((hi.records - lo.records) / (hi.t - lo.t)) * 1000,
      seconds: (performance.now() - began) / 1000,
      clusterCores: cores(lo.cpu.serversUs, hi.cpu.serversUs),
      hostCores: cores(lo.cpu.hostUs, hi.cpu.hostUs),
    };
  } finally {
    await coordinator.close();
    await cluster.stop();
  }
}

function fmtCores(x: number | undefined): string {
  return x === undefined ? '?' : x.toFixed(2);
}

function medianOf(xs: Array<number | undefined>): number | undefined {
  return xs.some((x) => x === undefined) ? undefined : median(xs as number[]);
}

async function main(o: Options): Promise<void> {
  const began = performance.now();
  const runs = new Map<number, Sample[]>(o.compute.map((n) => [n, []]));
  for (let repeat = 1; repeat <= o.repeats; repeat++)
    for (const n of o.compute) {
      const s = await runOnce(o, n);
      runs.get(n)!.push(s);
      log(
        `${n} compute node${n === 1 ? '' : 's'}, run ${repeat}: ${Math.round(s.recordsPerSec).toLocaleString('en-US')} records/s ` +
          `(${s.seconds.toFixed(1)} s in all; cluster busy ${fmtCores(s.clusterCores)} cores, host ${fmtCores(s.hostCores)})`,
      );
    }
  const base = median(runs.get(o.compute[0]!)!.map((s) => s.recordsPerSec));
  const lines = [
    '| compute nodes | records/s (median) | per run | vs ' + o.compute[0] + ' | cluster busy (cores) | host busy (cores) | cluster µs CPU / record |',
    '|---:|---:|---|---:|---:|---:|---:|',
    ...o.compute.map((n) => {
      const rs = runs.get(n)!.map((s) => s.recordsPerSec);
      const busy = medianOf(runs.get(n)!.map((s) => s.clusterCores));
      const host = medianOf(runs.get(n)!.map((s) => s.hostCores));
      const perRecord = busy === undefined ? '?' : ((busy * 1e6) / median(rs)).toFixed(1);
      return (
        `| ${n} | ${Math.round(median(rs)).toLocaleString('en-US')} | ${rs.map((r) => Math.round(r).toLocaleString('en-US')).join(', ')} | ` +
        `${(median(rs) / base).toFixed(2)}× | ${fmtCores(busy)} | ${fmtCores(host)} | ${perRecord} |`
      );
    }),
  ];
  const two = runs.get(2);
  const ratio = two && runs.has(1) ? median(two.map((s) => s.recordsPerSec)) / median(runs.get(1)!.map((s) => s.recordsPerSec)) : undefined;
  const verdict =
    ratio === undefined ? '' : `Target: 2 compute nodes sustain ≥ ${TARGET_RATIO}× one node — ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'} (${ratio.toFixed(2)}×).`;
  const m = machineInfo('n/a');
  process.stdout.write(`\n${lines.join('\n')}\n\n${verdict}\n`);
  if (!o.docs) return;
  const section = [
    START,
    '## bench:pipeline-cluster — one job on 1 vs 2 compute nodes',
    '',
    `${today()} · \`${benchCommand('pipeline-cluster')}\` · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB · Node ${m.node} · ` +
      `${((performance.now() - began) / 1000).toFixed(0)} s`,
    '',
    `examples/clicks.ts on the compute tier (\`run --on-cluster\`): unpaced generator in 4 splits, ${o.count.toLocaleString('en-US')} clicks, ` +
      `${o.users} users, clicks per user per 10 s event-time window, state and results in the storage tier (${o.storage} storage node${o.storage === 1 ? '' : 's'}), ` +
      `checkpoints every ${o.checkpointInterval}. With 2 nodes the job runs as 2 workers: each reads 2 splits and sends each record to the worker owning its ` +
      "key's slot. Sustained rate: records read per second from the first reading past 10% of the input (the job's merged metrics) to the job's end. A fresh " +
      `cluster per run; ${o.repeats} runs per row, medians.`,
    '',
    ...lines,
    '',
    verdict,
    '',
    `Every process of the cluster (coordinator, storage, compute nodes) and this script share the ${m.cores} cores of this host: a second compute ` +
      'node can only add what the first leaves idle, and half of the records cross between the workers over TCP (encoded, sent, decoded).',
    END,
  ].join('\n');
  await writeDocsSection(o.docs, section, { start: START, end: END });
  log(`wrote ${o.docs}`);
}

await runBench({ name: 'pipeline-cluster', usage: USAGE, parse, main, stopping: 'stopping the clusters' });
