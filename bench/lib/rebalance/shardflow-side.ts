/**
 * One shardflow run: a local cluster of 3 storage nodes (real processes, embedded coordinator), the data loaded
 * through the client in batches, the foreground load, then a 4th storage node started and the planner's moves
 * carried out online by `shardflow scale storage=4` in a process of its own, as redis-cli is for Redis (or, with
 * `--driver in-process`, by the same library call, `scaleLocalStorage`, in the benchmark process) — then every key
 * read back.
 */
import { spawn } from 'node:child_process';
import { connect, type ShardflowClient } from '../../../src/client/index.js';
import { ClusterDir } from '../../../src/config/cluster-dir.js';
import { scaleLocalStorage, type RebalanceReport } from '../../../src/cluster/rebalance-local.js';
import { BIN_PATH } from '../../../src/cluster/spawn.js';
import type { MoveResult } from '../../../src/migration/index.js';
import type { RoutingTable } from '../../../src/keyspace/index.js';
import { startShardflowCluster } from '../shardflow-cluster.js';
import { onCleanup, trackPid, untrackPid } from '../cleanup.js';
import { forEachIndex, loadedLine, startForeground, verifyAll, type Values } from './workload.js';
import { cpuOf, cpuSecondsBetween, waitFor } from './proc.js';
import { cpuSnapshot } from '../cpu.js';
import { withProfiledChildren } from '../cpu-profile.js';
import { MoveTimeline, describeTimeline } from './timeline.js';
import { monotonicUs, type RunResult } from './result.js';
import { formatSize, type RebalanceOptions } from './options.js';

const NS = 'default';

type Log = (message: string) => void;

/** Keys per partition, as the client routes them (the placement of a key never changes; only owners do). */
function keysPerPartition(table: RoutingTable, keys: string[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const key of keys) {
    const p = table.place(key).partition;
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  return counts;
}

/** Runs `work` with the profiler preload in the environment of processes started meanwhile (see shardflow-cluster.ts). */
export async function runShardflow(
  options: RebalanceOptions,
  repeat: number,
  keys: string[],
  values: Values,
  log: Log,
): Promise<RunResult> {
  log('starting shardflow: 3 storage nodes + embedded coordinator');
  const cluster = await startShardflowCluster(options.tmp, 3, { cpuProfDir: options.cpuProfDir });
  const closers: (() => Promise<void>)[] = [];
  const dropCleanup = onCleanup('shardflow run', async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await cluster.stop();
  });
  try {
    const client: ShardflowClient = await connect({ dir: cluster.dir, name: 'bench-foreground' });
    closers.push(() => client.close());

    // Initial load: batches of about 1 MB, a few in flight.
    const perBatch = Math.max(1, Math.min(1000, Math.floor(2 ** 20 / values.bytes)));
    const initial = values.make(0);
    const batches = Math.ceil(keys.length / perBatch);
    const t0 = performance.now();
    let lastLog = t0;
    let loaded = 0;
    await forEachIndex(batches, 4, async (b) => {
      const slice = keys.slice(b * perBatch, (b + 1) * perBatch);
      await client.batch(NS, slice.map((key) => ({ op: 'put' as const, key, value: initial })));
      loaded += slice.length;
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`  loaded ${loaded.toLocaleString('en-US')} / ${keys.length.toLocaleString('en-US')} keys`);
      }
    });
    const loadSeconds = (performance.now() - t0) / 1000;
    log(loadedLine(keys.length, values, loadSeconds));

    const timeline = await MoveTimeline.open(cluster.dir);
    closers.push(() => timeline.close());

    const { fg, base } = await startForeground(
      { put: (key, value) => client.put(NS, key, value), get: (key) => client.get<string>(NS, key) },
      { keys, values, concurrency: options.concurrency, rate: options.rate, writeRatio: options.writeRatio },
      options,
      closers,
    );

    // Scale out: `shardflow scale storage=4` — start s4, take the rebalance lock, plan, check the nodes answer, move.
    const before = (await client.catalog.refresh(NS))!;
    const cpuBefore = cpuOf(cluster.pids);
    const hostBefore = cpuSnapshot([]);
    const lines: string[] = [];
    // s4's pid, as soon as its node file names it (so that even an interrupted run stops it).
    const files = new ClusterDir(cluster.dir);
    let s4Pid: number | undefined;
    const adopt = async () => {
      if (s4Pid !== undefined) return;
      const pid = (await files.readNode('s4').catch(() => undefined))?.pid;
      if (pid === undefined) return;
      s4Pid = pid;
      cluster.pids.push(pid);
      trackPid(pid);
    };
    const watcher = setInterval(() => void adopt(), 100);
    fg.setPhase('during');
    timeline.begin();
    const startUs = monotonicUs();
    const tStart = performance.now();
    let report: RebalanceReport | undefined;
    let failure: string | undefined;
    try {
      report = await withProfiledChildren(options.cpuProfDir, () =>
        options.driver === 'cli'
          ? scaleWithCli(cluster.dir, options, lines)
          : scaleLocalStorage(cluster.dir, 4, { concurrency: options.moveConcurrency, maxP99Ratio: options.maxP99Ratio, write: (line) => lines.push(line) }),
      );
    } catch (err) {
      // Recorded, not thrown: what the failed scale-out did to the data is checked all the same.
      failure = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      log(`  the scale-out FAILED: ${failure}`);
      if (err instanceof Error && Array.isArray((err as { completed?: unknown }).completed)) {
        report = { moves: [], totalBytes: 0, estimatedSeconds: 0, results: (err as unknown as { completed: MoveResult[] }).completed };
      }
    } finally {
      clearInterval(watcher);
      await adopt();
    }
    const tEnd = performance.now();
    timeline.end();
    const endUs = monotonicUs();
    const cpuAfter = cpuOf(cluster.pids);
    const hostAfter = cpuSnapshot([]);
    const serverCpuSeconds = cpuSecondsBetween(cpuBefore, cpuAfter);
    const benchCpuSeconds = (hostAfter.clientUs - hostBefore.clientUs) / 1e6;
    const otherCores =
      hostAfter.hostUs === undefined || hostBefore.hostUs === undefined
        ? undefined
        : Math.max(0, ((hostAfter.hostUs - hostBefore.hostUs) / 1e6 - benchCpuSeconds - serverCpuSeconds) / ((tEnd - tStart) / 1000));
    fg.setPhase('after');
    const during = fg.stats('during');
    await fg.stop();
    if (s4Pid === undefined && !failure) throw new Error('the 4th storage node did not start');
    const results: MoveResult[] = report?.results ?? [];
    const steps = timeline.summary('s4');
    // On failure there is no reported move time: count from the first move recorded.
    const moveSeconds =
      report?.ms !== undefined ? report.ms / 1000 : Math.max(0, (tEnd - tStart - (steps.firstMoveMs ?? tEnd - tStart)) / 1000);
    const copied = results.reduce((a, r) => a + r.copied, 0);

    const after = (await client.catalog.refresh(NS))!;
    const perPartition = keysPerPartition(after, keys);
    let movedPartitions = 0;
    let movedKeys = 0;
    for (const p of after.partitions()) {
      if (after.ownerOf(p) !== before.ownerOf(p)) {
        movedPartitions++;
        movedKeys += perPartition.get(p) ?? 0;
      }
    }
    const nodes = ['s1', 's2', 's3', 's4'];
    const keysPerNode = nodes.map((id) => after.partitionsOf(id).reduce((a, p) => a + (perPartition.get(p) ?? 0), 0));
    const fences = results.map((r) => r.fenceMs).sort((a, b) => a - b);
    const perMove = results.map((r) => r.ms).sort((a, b) => a - b);
    const rateLines = lines.filter((l) => l.startsWith('rate:'));
    const notes = [
      report && report.moves.length > 0
        ? `${report.moves.length} partitions planned, moved in ${results.length} moves, ${results.filter((r) => r.to !== 's4').length} not to s4; ` +
          `the plan estimated ${report.estimatedSeconds.toFixed(1)} s for ${formatSize(report.totalBytes)}`
        : `${results.length} moves completed before the failure`,
      `snapshot keys copied ${copied.toLocaleString('en-US')} (keys in moved partitions ${movedKeys.toLocaleString('en-US')})`,
      `per move: median ${perMove[perMove.length >> 1] ?? 0} ms, max ${perMove[perMove.length - 1] ?? 0} ms; ` +
        `requests held: median ${fences[fences.length >> 1] ?? 0} ms, max ${fences[fences.length - 1] ?? 0} ms`,
      `copy rate changes: ${rateLines.length}${rateLines.length ? ` (${rateLines.slice(0, 3).join(' | ')}${rateLines.length > 3 ? ' | …' : ''})` : ''}`,
      ...lines.filter((l) => l.startsWith('moved ')),
      describeTimeline(steps),
    ];
    if (failure) notes.unshift(`FAILED: ${failure}`);
    if (fg.errorLog.length) notes.push(`foreground errors: ${fg.errorLog.join(' | ')}`);

    log(`  verifying all ${keys.length.toLocaleString('en-US')} keys`);
    const check = await verifyAll((key) => client.get<string>(NS, key), keys, fg.acked);
    if (check.examples.length) notes.push(`verify: ${check.examples.join(' | ')}`);

    const result: RunResult = {
      system: 'shardflow',
      repeat,
      keys: keys.length,
      valueBytes: values.bytes,
      loadSeconds,
      scaleSeconds: (tEnd - tStart) / 1000,
      joinSeconds: (tEnd - tStart) / 1000 - moveSeconds,
      moveSeconds,
      movedPartitions,
      partitions: after.partitions().length,
      movedKeys,
      keysPerNode,
      baseline: base,
      during,
      lostWrites: check.lost,
      unreadable: check.unreadable,
      ackedWrites: fg.ackedWrites,
      serverCpuSeconds,
      benchCpuSeconds,
      otherCores,
      notes,
      fenceMs: { p50: fences[fences.length >> 1] ?? 0, max: fences[fences.length - 1] ?? 0 },
      moveWindowUs: { startUs, endUs },
      timeline: steps,
      failure,
    };
    return result;
  } finally {
    dropCleanup();
    for (const close of closers.reverse()) {
      await close().catch((err: unknown) => log(`  closing: ${err instanceof Error ? err.message : String(err)}`));
    }
    await cluster.stop();
  }
}

/**
 * Runs `shardflow scale storage=4 --json` as its own process and returns its report; the copy rate's changes become
 * `rate:` lines in `lines` (as the progress display prints them), and its summary a `moved ...` line.
 */
async function scaleWithCli(dir: string, options: RebalanceOptions, lines: string[]): Promise<RebalanceReport> {
  const args = [BIN_PATH, 'scale', 'storage=4', '--dir', dir, '--json', '--concurrency', String(options.moveConcurrency), '--max-p99-ratio', String(options.maxP99Ratio)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) trackPid(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  untrackPid(child.pid);
  if (code !== 0) throw new Error(`shardflow scale storage=4 exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' / ')}`);
  const at = stdout.startsWith('{') ? 0 : stdout.indexOf('\n{') + 1;
  if (at < 0 || (at === 0 && !stdout.startsWith('{'))) throw new Error(`shardflow scale printed no report: ${stdout.slice(0, 200)}`);
  const report = JSON.parse(stdout.slice(at)) as RebalanceReport;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MiB`;
  for (const r of report.rateChanges ?? []) lines.push(`rate: ${r.bytesPerSec === undefined ? 'unlimited' : `${mib(r.bytesPerSec)}/s`} — ${r.reason}`);
  const results = report.results ?? [];
  const fences = results.map((r) => r.fenceMs).sort((a, b) => a - b);
  lines.push(
    `moved ${results.reduce((a, r) => a + r.partitions.length, 0)} partitions (${results.reduce((a, r) => a + r.copied, 0)} keys) in ${results.length} jobs, ${report.ms ?? 0} ms; ` +
      `requests held per job: median ${fences[fences.length >> 1] ?? 0} ms, max ${fences[fences.length - 1] ?? 0} ms`,
  );
  return report;
}
