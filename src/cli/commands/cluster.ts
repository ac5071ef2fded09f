/**
 * `shardflow up`, `down`, `attach` and `status`: a local cluster's life, a directory for a cluster elsewhere, and what
 * it looks like now. Implementations load on
 * use, so `--help` and usage errors answer at once.
 */
import type { Command } from 'commander';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { parseCount, parseCoordinatorUrl } from '../options.js';
import { untilSignal } from '../signals.js';

export function registerClusterCommands(program: Command): void {
  program
    .command('up')
    .description('start a local cluster of real node processes (or restart the one in --dir)')
    .option('--storage <n>', 'storage nodes', parseCount('--storage', 1), 3)
    .option('--compute <n>', 'compute nodes', parseCount('--compute', 0), 1)
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--detach', 'return once every node is ready, leaving the cluster running')
    .option('--coordinator <url>', 'use an external etcd (etcd://host:port,...) instead of an embedded coordinator')
    .option('--services <file>', 'the module (.ts or .js) whose exported handlers compute nodes host')
    .option('--copies <n>', 'copies of the default namespace\'s partitions (default: 3 with 3+ storage nodes, else 1)', parseCount('--copies', 1, 7))
    .action(async (opts: { storage: number; compute: number; dir: string; detach?: boolean; coordinator?: string; services?: string; copies?: number }) => {
      const coordinator = opts.coordinator ? parseCoordinatorUrl(opts.coordinator) : undefined;
      const { startLocalCluster, stopLocalCluster } = await import('../../cluster/local-cluster.js');
      const { clusterStatus, formatStatus } = await import('../../cluster/status.js');
      const cluster = await startLocalCluster({
        dir: opts.dir,
        storage: opts.storage,
        compute: opts.compute,
        coordinator,
        services: opts.services,
        copies: opts.copies,
      });
      const status = await clusterStatus(opts.dir);
      process.stdout.write(formatStatus(status) + '\n');
      if (opts.detach) {
        process.stdout.write(`cluster running in ${cluster.dir.root}; stop it with: shardflow down --dir ${opts.dir}\n`);
        return;
      }
      process.stdout.write('cluster running; press Ctrl-C to stop it\n');
      await untilSignal();
      process.stdout.write('stopping...\n');
      await stopLocalCluster(opts.dir);
      process.stdout.write('stopped\n');
    });

  program
    .command('attach')
    .description('make --dir a cluster directory for a cluster that runs elsewhere (etcd across hosts); starts nothing')
    .requiredOption('--coordinator <url>', 'the cluster\'s coordinator: etcd://host:port,...[/prefix] or embedded://host:port')
    .requiredOption('--secret-file <file>', 'the cluster secret (64 hex digits, mode 0600), copied into --dir')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--no-check', 'do not check that the coordinator answers')
    .action(async (opts: { coordinator: string; secretFile: string; dir: string; check: boolean }) => {
      const coordinator = parseCoordinatorUrl(opts.coordinator);
      const { attachClusterDir } = await import('../../cluster/attach.js');
      const { dir, members } = await attachClusterDir({ dir: opts.dir, coordinator, secretFile: opts.secretFile, check: opts.check });
      process.stdout.write(`${dir} now points at ${opts.coordinator}${members === undefined ? '' : ` (${members} node${members === 1 ? '' : 's'} registered)`}; every --dir command works on it\n`);
    });

  program
    .command('down')
    .description('stop the local cluster in --dir (nodes first, cleanly; data is kept)')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .action(async (opts: { dir: string }) => {
      const { stopLocalCluster } = await import('../../cluster/local-cluster.js');
      const outcome = await stopLocalCluster(opts.dir);
      for (const [id, what] of Object.entries(outcome)) process.stdout.write(`${id}: ${what}\n`);
    });

  program
    .command('status')
    .description('every node with its role, state, address, pid and data; namespaces with their copies; migrations; running jobs')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--json', 'print JSON: {"nodes": [...], "namespaces": [...], "jobs": [...], ...} (with every partition\'s copies)')
    .option('--partitions', 'list every partition of replicated namespaces: leader, followers, lag (not only flagged ones)')
    .action(async (opts: { dir: string; json?: boolean; partitions?: boolean }) => {
      const { clusterStatus, formatStatus } = await import('../../cluster/status.js');
      const status = await clusterStatus(opts.dir);
      process.stdout.write((opts.json ? JSON.stringify(status, null, 2) : formatStatus(status, { partitions: opts.partitions })) + '\n');
    });
}
