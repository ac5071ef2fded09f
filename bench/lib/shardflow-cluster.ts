/** A throw-away local shardflow cluster (embedded coordinator, storage and compute node processes) in a temporary directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startLocalCluster, stopLocalCluster } from '../../src/cluster/local-cluster.js';
import { owned, trackDir, trackPid, untrackDir, untrackPid } from './cleanup.js';
import { withProfiledChildren } from './cpu-profile.js';

export interface ShardflowCluster {
  dir: string;
  pids: number[];
  stop(): Promise<void>;
}

export async function startShardflowCluster(
  parent: string,
  storage: number,
  /**
   * `copies`: of the `default` namespace (default 1 here: the peers bench:kv and bench:rebalance compare with — Redis
   * Cluster masters without replicas — keep one copy too; bench:replication measures copies).
   */
  options: { cpuProfDir?: string; compute?: number; copies?: number } = {},
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
  return owned('shardflow cluster', stop, (release) =>
    withProfiledChildren(options.cpuProfDir, async () => {
      const cluster = await startLocalCluster({ dir, storage, compute: options.compute ?? 0, copies: options.copies ?? 1 });
      for (const pid of [cluster.coordinatorPid, ...cluster.nodes.map((n) => n.pid)]) if (pid) pids.push(pid);
      for (const pid of pids) trackPid(pid);
      return { dir, pids, stop: release };
    }),
  );
}
