/** `shardflow rebalance`: move the fewest partitions that balance the storage nodes, online. */
import type { Command } from 'commander';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { parseCount } from '../options.js';

export function registerRebalanceCommand(program: Command): void {
  program
    .command('rebalance')
    .description('move the fewest partitions that balance data over the ready storage nodes, while clients keep working')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--dry-run', 'show the plan only')
    .option('--json', 'print the plan (and results) as JSON')
    .option('--concurrency <n>', 'partitions moved at once', parseCount('--concurrency', 1, 64), 4)
    .action(async (opts: { dir: string; dryRun?: boolean; json?: boolean; concurrency: number }) => {
      const { rebalanceLocal } = await import('../../cluster/rebalance-local.js');
      await rebalanceLocal(opts.dir, opts);
    });
}
