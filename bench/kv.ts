/**
 * Key-value benchmark: shardflow vs Redis Cluster on this host. `npm run bench:kv -- --help` lists the options.
 *
 * Starts a local shardflow cluster (embedded coordinator + storage node processes) and a Redis Cluster of as many
 * masters (AOF, appendfsync everysec), prefills both with the same keys, then measures put and get at each
 * concurrency level, alternating between the systems, and writes the medians to docs/benchmarks.md. Everything it
 * starts is stopped and every temporary directory removed, also on failure and on Ctrl-C.
 */
import { performance } from 'node:perf_hooks';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseOptions, USAGE, type BenchOptions, type SystemName } from './lib/args.js';
import { onCleanup } from './lib/cleanup.js';
import { runLoad, type Sample } from './lib/load.js';
import { startRedisCluster, redisVersion } from './lib/redis-cluster.js';
import { startShardflowCluster } from './lib/shardflow-cluster.js';
import { measureEngineFloor, type FloorResult } from './lib/engine-floor.js';
import { redisTarget, shardflowTarget, type KvTarget } from './lib/targets.js';
import {
  docsSection,
  floorLine,
  formatLatency,
  hostLoadLine,
  machineInfo,
  resultsTable,
  verdicts,
  writeDocs,
  type Cell,
} from './lib/report.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';

const log = benchLog('kv');

/** A string of exactly `bytes` ASCII bytes that is a JSON object, the same for both systems. */
function makeValue(bytes: number): string {
  const base = { id: 'key:0', name: 'Ada Lovelace', active: true, score: 1234.5, tags: ['a', 'b'], pad: '' };
  const pad = bytes - JSON.stringify(base).length;
  return JSON.stringify({ ...base, pad: 'x'.repeat(Math.max(0, pad)) });
}

async function main(options: BenchOptions): Promise<void> {
  const began = performance.now();
  const keys = Array.from({ length: options.keyspace }, (_, i) => `key:${i}`);
  const value = makeValue(options.valueBytes);
  const targets = new Map<SystemName, KvTarget>();

  let floor: FloorResult[] = [];
  if (options.engineFloor && options.systems.includes('shardflow') && options.ops.includes('put')) {
    // Per-node depth: the in-flight operations one storage node sees at the highest concurrency.
    const levels = [...new Set([1, Math.ceil(Math.max(...options.concurrency) / options.nodes)])];
    floor = await measureEngineFloor(options.tmp, ['process', 'device'], levels, 1.5, keys, value);
    for (const f of floor) {
      log(
        `storage engine alone, durability ${f.durability}, put c=${f.concurrency}: ` +
          `${Math.round(f.sample.opsPerSec).toLocaleString('en-US')} ops/s, ` +
          `p50 ${formatLatency(f.sample.p50Us)}, p99 ${formatLatency(f.sample.p99Us)}, ` +
          `CPU/op ${Math.round(f.sample.clientCpuUsPerOp)} µs (+ kernel threads ${((f.sample.otherCores ?? 0) * 1e6 / Math.max(1, f.sample.opsPerSec)).toFixed(0)} µs)`,
      );
    }
  }

  if (options.systems.includes('shardflow')) {
    log(`starting shardflow: ${options.nodes} storage nodes + embedded coordinator`);
    const cluster = await startShardflowCluster(options.tmp, options.nodes, { cpuProfDir: options.cpuProfDir });
    const target = await shardflowTarget(cluster.dir, cluster.pids);
    onCleanup('shardflow client', () => target.close());
    targets.set('shardflow', target);
  }
  if (options.systems.includes('redis')) {
    log(`starting Redis Cluster: ${options.nodes} masters`);
    const cluster = await startRedisCluster(options.tmp, options.nodes);
    const target = await redisTarget(cluster.ports, cluster.pids);
    onCleanup('ioredis client', () => target.close());
    targets.set('redis', target);
  }

  for (const [name, target] of targets) {
    const t0 = performance.now();
    await target.prefill(keys, value);
    log(`prefilled ${name} with ${keys.length} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  const cells: Cell[] = [];
  for (const op of options.ops) {
    for (const concurrency of options.concurrency) {
      for (const system of targets.keys()) cells.push({ system, op, concurrency, runs: [] });
    }
  }
  const total = cells.length * options.repeats;
  let done = 0;
  for (let repeat = 1; repeat <= options.repeats; repeat++) {
    for (const cell of cells) {
      const target = targets.get(cell.system)!;
      const sample: Sample = await runLoad(target, {
        op: cell.op,
        concurrency: cell.concurrency,
        warmupSeconds: options.warmup,
        seconds: options.seconds,
        keys,
        value,
      });
      cell.runs.push(sample);
      done++;
      log(
        `[${done}/${total}] ${cell.system.padEnd(9)} ${cell.op} c=${String(cell.concurrency).padEnd(3)} run ${repeat}: ` +
          `${Math.round(sample.opsPerSec).toLocaleString('en-US')} ops/s, p50 ${formatLatency(sample.p50Us)}, ` +
          `p99 ${formatLatency(sample.p99Us)}, max ${formatLatency(sample.maxUs)}, CPU/op client ` +
          `${Math.round(sample.clientCpuUsPerOp)} µs + servers ${sample.serverCpuUsPerOp === undefined ? '?' : Math.round(sample.serverCpuUsPerOp)} µs` +
          (sample.otherCores !== undefined && sample.otherCores >= 0.1 ? `, other processes busy ${sample.otherCores.toFixed(1)} cores` : '') +
          (sample.errors ? `, ${sample.errors} errors` : '') +
          (sample.misses ? `, ${sample.misses} wrong gets` : ''),
      );
    }
  }

  if (options.cpuProfDir) {
    // Lets bench/profile-summary.ts keep only the samples taken while a workload was measured.
    const windows = cells.flatMap((c) =>
      c.runs.map((r) => ({
        label: `${c.system} ${c.op} c=${c.concurrency}`,
        startUs: r.windowStartUs,
        endUs: r.windowEndUs,
      })),
    );
    await mkdir(options.cpuProfDir, { recursive: true });
    await writeFile(join(options.cpuProfDir, 'windows.json'), JSON.stringify(windows, null, 2) + '\n');
    log(`measurement windows in ${join(options.cpuProfDir, 'windows.json')}; profiles are written as the nodes stop`);
  }

  const machine = machineInfo(await redisVersion());
  const command = benchCommand('kv');
  process.stdout.write('\n' + resultsTable(cells) + '\n\n' + verdicts(cells).join('\n') + '\n');
  if (floor.length > 0) process.stdout.write('\n' + floorLine(floor) + '\n');
  process.stdout.write('\n' + hostLoadLine(cells) + '\n');
  process.stdout.write(
    `\n${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}; Redis ${machine.redis}\n`,
  );
  if (options.docs) {
    // The docs must show the whole comparison: a partial run (one system, one op) only prints.
    const complete = options.systems.length === 2 && options.ops.length === 2 && !options.cpuProfDir;
    if (complete) {
      const section = docsSection(cells, {
        options,
        machine,
        date: today(),
        command,
        floor,
        elapsedSeconds: (performance.now() - began) / 1000,
      });
      await writeDocs(options.docs, section);
      log(`wrote ${options.docs}`);
    } else {
      log(`not writing ${options.docs}: only complete runs (both systems, both ops, no profiling) go there`);
    }
  }
}

await runBench({
  name: 'kv',
  usage: USAGE,
  parse: parseOptions,
  main,
  stopping: 'stopping clusters and removing temporary directories',
});
