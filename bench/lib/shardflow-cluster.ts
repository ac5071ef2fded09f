/** A throw-away local shardflow cluster (embedded coordinator + N storage node processes) in a temporary directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalCluster, stopLocalCluster } from '../../src/cluster/local-cluster.js';
import { onCleanup, trackDir, trackPid, untrackDir, untrackPid } from './cleanup.js';

export interface ShardflowCluster {
  dir: string;
  pids: number[];
  stop(): Promise<void>;
}

export async function startShardflowCluster(
  parent: string,
  storage: number,
  options: { cpuProfDir?: string } = {},
): Promise<ShardflowCluster> {
  const dir = await mkdtemp(join(parent, 'shardflow-bench-sf-'));
  trackDir(dir);
  const pids: number[] = [];
  const stop = async () => {
    try {
      await stopLocalCluster(dir);
    } catch (err) {
      // A cluster that failed half-way may lack its cluster file; the tracked pids are killed below regardless.
      process.stderr.write(`stopping the shardflow cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    for (const pid of pids) untrackPid(pid);
    await rm(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  const dropCleanup = onCleanup('shardflow cluster', stop);
  // Node processes inherit this process's environment: that is how they get profiled when asked (Node 20 refuses
  // --cpu-prof in NODE_OPTIONS, so a preloaded module runs the profiler instead; see cpu-profile-preload.mjs).
  const savedNodeOptions = process.env.NODE_OPTIONS;
  if (options.cpuProfDir) {
    const preload = fileURLToPath(new URL('./cpu-profile-preload.mjs', import.meta.url));
    process.env.SHARDFLOW_BENCH_CPU_PROF_DIR = resolve(options.cpuProfDir);
    process.env.NODE_OPTIONS = `${savedNodeOptions ?? ''} --import "${preload}"`.trim();
  }
  try {
    const cluster = await startLocalCluster({ dir, storage, compute: 0 });
    for (const pid of [cluster.coordinatorPid, ...cluster.nodes.map((n) => n.pid)]) if (pid) pids.push(pid);
    for (const pid of pids) trackPid(pid);
    return {
      dir,
      pids,
      stop: async () => {
        dropCleanup();
        await stop();
      },
    };
  } catch (err) {
    dropCleanup();
    await stop();
    throw err;
  } finally {
    if (savedNodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = savedNodeOptions;
    delete process.env.SHARDFLOW_BENCH_CPU_PROF_DIR;
  }
}
