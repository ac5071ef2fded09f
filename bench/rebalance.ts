/**
 * Rebalance benchmark: scaling out from 3 to 4 storage nodes under load, shardflow vs Redis Cluster on this host.
 * `npm run bench:rebalance -- --help` lists the options.
 *
 * For each repeat and each system: start a 3-node cluster, load --size bytes of --value-size values, run a fixed
 * foreground load of reads and writes, measure its latency for a baseline, add a 4th node and rebalance onto it
 * (shardflow: a new storage node and the planner's moves; Redis: `redis-cli --cluster add-node` + `rebalance`),
 * then stop the load, check every acknowledged write and count what moved. Writes the medians and every run to
 * docs/benchmarks.md. Everything it starts is stopped and every temporary directory removed, also on failure and on
 * Ctrl-C.
 */
import { performance } from 'node:perf_hooks';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redisVersion } from './lib/redis-cluster.js';
import { formatLatency, machineInfo } from './lib/report.js';
import { formatSize, parseOptions, USAGE, type RebalanceOptions, type SystemName } from './lib/rebalance/options.js';
import { makeKeys, Values } from './lib/rebalance/workload.js';
import { runShardflow } from './lib/rebalance/shardflow-side.js';
import { checkRedisTools, runRedis } from './lib/rebalance/redis-side.js';
import type { RunResult } from './lib/rebalance/result.js';
import { docsSection, moveMBps, movedRatio, runsTable, summaryTable, verdicts, writeDocs } from './lib/rebalance/report.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';

const log = benchLog('rebalance');

function describe(r: RunResult): string {
  return (
    `${r.system} run ${r.repeat}: scale-out ${r.scaleSeconds.toFixed(2)} s (join ${r.joinSeconds.toFixed(2)} s + move ` +
    `${r.moveSeconds.toFixed(2)} s), ${r.movedKeys.toLocaleString('en-US')} keys in ${r.movedPartitions} slots moved ` +
    `(${movedRatio(r).toFixed(3)}× optimal), ${moveMBps(r).toFixed(1)} MB/s; foreground p99 ${formatLatency(r.baseline.p99Us)} → ` +
    `${formatLatency(r.during.p99Us)} (p50 ${formatLatency(r.baseline.p50Us)} → ${formatLatency(r.during.p50Us)}, max during ` +
    `${formatLatency(r.during.maxUs)}), ${Math.round(r.baseline.opsPerSec)} → ${Math.round(r.during.opsPerSec)} ops/s; ` +
    `lost ${r.lostWrites}, unreadable ${r.unreadable}, stale reads ${r.baseline.staleReads + r.during.staleReads}, ` +
    `failed ops ${r.baseline.errors + r.during.errors}; server CPU ${r.serverCpuSeconds?.toFixed(1) ?? '?'} core-s, ` +
    `bench process ${r.benchCpuSeconds.toFixed(1)} core-s (event-loop delay max ${r.baseline.loopDelayMaxMs.toFixed(0)} ms before, ` +
    `${r.during.loopDelayMaxMs.toFixed(0)} ms during), other load ${r.otherCores?.toFixed(2) ?? '?'} cores` +
    r.notes.map((n) => `\n    ${n}`).join('')
  );
}

async function main(options: RebalanceOptions): Promise<void> {
  const began = performance.now();
  if (options.systems.includes('redis')) await checkRedisTools();
  const count = Math.floor(options.sizeBytes / options.valueBytes);
  const keys = makeKeys(count);
  const values = new Values(options.valueBytes);
  log(
    `${formatSize(count * options.valueBytes)} in ${count.toLocaleString('en-US')} values of ${formatSize(options.valueBytes)}; ` +
      `${options.repeats} repeat(s) of ${options.systems.join(' and ')}; foreground ${options.concurrency} loops` +
      (options.rate > 0 ? ` at ${options.rate} ops/s` : ', unpaced') +
      `, ${Math.round(options.writeRatio * 100)}% writes`,
  );

  const runners: Record<SystemName, typeof runShardflow> = { shardflow: runShardflow, redis: runRedis };
  const results: RunResult[] = [];
  for (let repeat = 1; repeat <= options.repeats; repeat++) {
    const order = repeat % 2 === 1 ? options.systems : [...options.systems].reverse();
    for (const system of order) {
      log(`repeat ${repeat}/${options.repeats}: ${system}`);
      const r = await runners[system](options, repeat, keys, values, log);
      results.push(r);
      log(describe(r));
    }
  }

  if (options.cpuProfDir) {
    const windows = results
      .filter((r) => r.system === 'shardflow')
      .map((r) => ({ label: `shardflow move run ${r.repeat}`, startUs: r.moveWindowUs.startUs, endUs: r.moveWindowUs.endUs }));
    await mkdir(options.cpuProfDir, { recursive: true });
    await writeFile(join(options.cpuProfDir, 'windows.json'), JSON.stringify(windows, null, 2) + '\n');
    log(`scale-out windows in ${join(options.cpuProfDir, 'windows.json')}; profiles were written as the nodes stopped`);
  }

  const machine = machineInfo(await redisVersion());
  const command = benchCommand('rebalance');
  process.stdout.write(
    '\n' + summaryTable(results) + '\n\n' + verdicts(results).join('\n') + '\n\n' + runsTable(results) + '\n' +
      `\n${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}; Redis ${machine.redis}\n`,
  );
  if (options.docs) {
    const complete = options.systems.length === 2 && !options.cpuProfDir;
    if (complete) {
      const section = docsSection(results, {
        options,
        machine,
        date: today(),
        command,
        elapsedSeconds: (performance.now() - began) / 1000,
        keys: count,
      });
      await writeDocs(options.docs, section);
      log(`wrote ${options.docs}`);
    } else {
      log(`not writing ${options.docs}: only complete runs (both systems, no profiling) go there`);
    }
  }
}

await runBench({
  name: 'rebalance',
  usage: USAGE,
  parse: parseOptions,
  main,
  stopping: 'stopping clusters and removing temporary directories',
});
