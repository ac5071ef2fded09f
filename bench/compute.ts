/**
 * Compute-tier benchmark: shardflow service calls vs Moleculer (TCP transporter) on this host.
 * `npm run bench:compute -- --help` lists the options.
 *
 * Starts a local shardflow cluster with 2 compute nodes hosting an `echo` service (plus the embedded coordinator
 * and one storage node, idle here) and 2 Moleculer service brokers with the same `echo`, each in its own process;
 * the callers of both systems live in this process. After a warm-up it measures calls/s and latency at each number
 * of calls in flight, alternating between the systems, and writes the medians to docs/benchmarks.md. Everything it
 * starts is stopped and every temporary directory removed, also on failure and on Ctrl-C.
 */
import { performance } from 'node:perf_hooks';
import { Session } from 'node:inspector';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseComputeOptions, USAGE, type ComputeOptions, type ComputeSystem } from './lib/compute/args.js';
import { onCleanup } from './lib/cleanup.js';
import { runCalls, type CallLoadSpec, type CallSample } from './lib/compute/load.js';
import { moleculerVersion, startMoleculer, startShardflow, type CallTarget } from './lib/compute/targets.js';
import { formatLatency, machineInfo } from './lib/report.js';
import { isAlive } from '../src/cluster/spawn.js';
import {
  docsSection,
  hostLoadLine,
  resultsTable,
  supportLine,
  verdicts,
  writeComputeDocs,
  type ComputeCell,
} from './lib/compute/report.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';

const log = benchLog('compute');

const PAYLOAD = { n: 1, s: 'hello' };

function describe(sample: CallSample): string {
  return (
    `${Math.round(sample.callsPerSec).toLocaleString('en-US')} calls/s, p50 ${formatLatency(sample.p50Us)}, ` +
    `p99 ${formatLatency(sample.p99Us)}, max ${formatLatency(sample.maxUs)}, CPU/call client ` +
    `${Math.round(sample.clientCpuUsPerCall)} µs + servers ` +
    `${sample.serverCpuUsPerCall === undefined ? '?' : Math.round(sample.serverCpuUsPerCall)} µs` +
    (sample.supportCpuUsPerCall ? ` (+ idle coordinator/storage ${sample.supportCpuUsPerCall.toFixed(1)} µs)` : '') +
    (sample.otherCores !== undefined && sample.otherCores >= 0.1 ? `, other processes busy ${sample.otherCores.toFixed(1)} cores` : '') +
    (sample.errors ? `, ${sample.errors} errors` : '') +
    (sample.wrong ? `, ${sample.wrong} wrong answers` : '')
  );
}

/** Profiles this process (the callers) with the V8 sampling profiler until the returned function is called. */
function profileSelf(dir: string): () => Promise<void> {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= new Promise((done) => {
      session.post('Profiler.stop', (err, result) => {
        session.disconnect();
        if (err) return done();
        void mkdir(dir, { recursive: true })
          .then(() => writeFile(join(dir, `bench-compute-caller.${process.pid}.cpuprofile`), JSON.stringify(result.profile)))
          .then(done, done);
      });
    }));
}

async function main(options: ComputeOptions): Promise<void> {
  const began = performance.now();
  const targets = new Map<ComputeSystem, CallTarget>();
  const cpuProfDir = options.cpuProfDir ? resolve(options.cpuProfDir) : undefined;

  for (const system of options.systems) {
    const t0 = performance.now();
    if (system === 'shardflow') {
      log(`starting shardflow: ${options.servers} compute nodes + 1 storage node + embedded coordinator`);
      targets.set(system, await startShardflow(options.tmp, options.servers, cpuProfDir));
    } else {
      log(`starting Moleculer ${moleculerVersion()}: ${options.servers} service brokers (TCP transporter) + a caller broker here`);
      targets.set(system, await startMoleculer(options.tmp, options.servers, cpuProfDir));
    }
    log(`${system} ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  // Runs first on Ctrl-C (cleanup goes newest first): stops the load and lets the calls in flight finish, so the
  // systems are then stopped idle rather than under load.
  let interrupted = false;
  let current: Promise<unknown> | undefined;
  onCleanup('load', async () => {
    interrupted = true;
    await current?.catch(() => undefined);
  });
  const cancelled = () => interrupted;
  const measure = (target: CallTarget, spec: Omit<CallLoadSpec, 'payload' | 'cancelled'>) => {
    const run = runCalls(target, { ...spec, payload: PAYLOAD, cancelled });
    current = run;
    return run;
  };

  const stopProfiling = cpuProfDir ? profileSelf(cpuProfDir) : undefined;
  if (stopProfiling) onCleanup('profiler of this process', stopProfiling);

  // One unmeasured run per system first: connections, JIT and caches warm on both sides before anything counts.
  const top = Math.max(...options.concurrency);
  for (const [system, target] of targets) {
    const s = await measure(target, { concurrency: top, warmupSeconds: 0, seconds: 2 });
    if (interrupted) return;
    log(`warm-up ${system} c=${top}: ${describe(s)}`);
  }

  const cells: ComputeCell[] = [];
  for (const concurrency of options.concurrency) {
    for (const system of targets.keys()) cells.push({ system, concurrency, runs: [] });
  }
  const total = cells.length * options.repeats;
  let done = 0;
  for (let repeat = 1; repeat <= options.repeats; repeat++) {
    // Which system goes first alternates from one repeat to the next.
    const order = [...targets.keys()];
    if (repeat % 2 === 0) order.reverse();
    for (const concurrency of options.concurrency) {
      for (const system of order) {
        const target = targets.get(system)!;
        const gone = target.serverPids.filter((pid) => !isAlive(pid));
        if (gone.length > 0) throw new Error(`${system}: service process ${gone.join(', ')} has died; see the logs above`);
        const cell = cells.find((c) => c.system === system && c.concurrency === concurrency)!;
        const sample = await measure(target, {
          concurrency,
          warmupSeconds: options.warmup,
          seconds: options.seconds,
        });
        if (interrupted) return;
        cell.runs.push(sample);
        done++;
        log(`[${done}/${total}] ${system.padEnd(9)} c=${String(concurrency).padEnd(3)} run ${repeat}: ${describe(sample)}`);
      }
    }
  }

  if (cpuProfDir) {
    await stopProfiling?.();
    // Lets bench/profile-summary.ts keep only the samples taken while a workload was measured.
    const windows = cells.flatMap((c) =>
      c.runs.map((r) => ({ label: `${c.system} echo c=${c.concurrency}`, startUs: r.windowStartUs, endUs: r.windowEndUs })),
    );
    await mkdir(cpuProfDir, { recursive: true });
    await writeFile(join(cpuProfDir, 'windows.json'), JSON.stringify(windows, null, 2) + '\n');
    log(`measurement windows in ${join(cpuProfDir, 'windows.json')}; the service processes write their profiles as they stop`);
  }

  const machine = machineInfo('n/a');
  const moleculer = moleculerVersion();
  const command = benchCommand('compute');
  const support = supportLine(cells);
  process.stdout.write('\n' + resultsTable(cells) + '\n\n' + verdicts(cells).join('\n') + '\n');
  process.stdout.write('\n' + hostLoadLine(cells) + '\n' + (support ? support + '\n' : ''));
  process.stdout.write(
    `\n${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}; ` +
      `Node ${machine.node}; Moleculer ${moleculer}; ${today()}; ${command}\n`,
  );
  if (options.docs) {
    // The docs must show the whole comparison: a partial or profiled run only prints.
    const complete = options.systems.length === 2 && !cpuProfDir;
    if (complete) {
      const section = docsSection(cells, {
        options,
        machine,
        moleculer,
        date: today(),
        command,
        elapsedSeconds: (performance.now() - began) / 1000,
      });
      await writeComputeDocs(options.docs, section);
      log(`wrote ${options.docs}`);
    } else {
      log(`not writing ${options.docs}: only complete runs (both systems, no profiling) go there`);
    }
  }
}

await runBench({
  name: 'compute',
  usage: USAGE,
  parse: parseComputeOptions,
  main,
  stopping: 'stopping both systems and removing temporary directories',
});
