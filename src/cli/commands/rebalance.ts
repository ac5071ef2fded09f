/** `shardflow rebalance`: move the fewest partitions that balance the storage nodes, online. */
import type { Command } from 'commander';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { parseBytes, parseCount, parsePositive } from '../options.js';

/** The flags that shape a data move, shared by `rebalance` and `scale storage=N`. */
export interface MoveFlags {
  dryRun?: boolean;
  json?: boolean;
  concurrency: number;
  maxRate?: number;
  maxP99Ratio: number;
}

export function addMoveOptions(command: Command): Command {
  return command
    .option('--dry-run', 'show the plan only; change nothing')
    .option('--json', 'print the plan (and results) as JSON')
    .option('--concurrency <n>', 'partitions moved at once', parseCount('--concurrency', 1, 64), 4)
    .option('--max-rate <size>', 'total copy bandwidth per second, e.g. 50mb (default: no limit of our own)', parseBytes('--max-rate'))
    .option(
      '--max-p99-ratio <x>',
      'halve the copy rate while the storage nodes\' p99 is above x times its value before the move (0: never)',
      (v: string) => (v === '0' ? 0 : parsePositive('--max-p99-ratio')(v)),
      3,
    );
}

export function moveOutput(opts: MoveFlags) {
  return { dryRun: opts.dryRun, json: opts.json, concurrency: opts.concurrency, maxBytesPerSec: opts.maxRate, maxP99Ratio: opts.maxP99Ratio };
}

export function registerRebalanceCommand(program: Command): void {
  addMoveOptions(
    program
      .command('rebalance')
      .description('move the fewest partitions that balance data over the ready storage nodes, while clients keep working')
      .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR),
  ).action(async (opts: MoveFlags & { dir: string }) => {
    const { rebalanceLocal } = await import('../../cluster/rebalance-local.js');
    await rebalanceLocal(opts.dir, moveOutput(opts));
  });
}
