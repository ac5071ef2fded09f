/** `shardflow call` and `shardflow scale`: use and size the compute tier. */
import type { Command } from 'commander';
import { addMoveOptions, moveOutput, type MoveFlags } from './rebalance.js';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { parseCount, parseValue } from '../options.js';

const STRATEGIES = ['round-robin', 'random', 'least-outstanding', 'power-of-two'] as const;

/** `compute=N` or `storage=N`. */
export function parseScaleTarget(text: string): { tier: 'compute' | 'storage'; count: number } {
  const m = /^(compute|storage)=(\d{1,3})$/.exec(text);
  if (!m) throw new InvalidArgumentError(`expected compute=N or storage=N, not ${JSON.stringify(text)}`);
  return { tier: m[1] as 'compute' | 'storage', count: Number(m[2]) };
}

export function registerComputeCommands(program: Command): void {
  program
    .command('call')
    .description('call SERVICE on a compute node with a JSON payload, print the result as JSON')
    .argument('<service>')
    .argument('[payload]', 'JSON (or else a string)', 'null')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--strategy <name>', `instance choice: ${STRATEGIES.join(', ')}`, 'round-robin')
    .option('--key <key>', 'route by key: the same key reaches the same instance')
    .option('--idempotent', 'safe to retry on another instance if one fails')
    .option('--timeout <ms>', 'deadline in ms', parseCount('--timeout', 1, 3_600_000), 30_000)
    .action(
      async (
        service: string,
        payload: string,
        opts: { dir: string; strategy: string; key?: string; idempotent?: boolean; timeout: number },
      ) => {
        if (!(STRATEGIES as readonly string[]).includes(opts.strategy)) {
          throw new InvalidArgumentError(`--strategy must be one of ${STRATEGIES.join(', ')}, not ${JSON.stringify(opts.strategy)}`);
        }
        const { connect } = await import('../../client/index.js');
        const client = await connect({ dir: opts.dir, name: 'cli', timeoutMs: opts.timeout });
        try {
          const result = await client.call(service, parseValue(payload, false), {
            strategy: opts.strategy as (typeof STRATEGIES)[number],
            key: opts.key,
            idempotent: opts.idempotent === true,
            timeoutMs: opts.timeout,
          });
          process.stdout.write(JSON.stringify(result ?? null) + '\n');
        } finally {
          await client.close();
        }
      },
    );

  addMoveOptions(
    program
      .command('scale')
      .description('set the number of compute or storage nodes of the local cluster (scale-in drains first; storage moves data online)')
      .argument('<target>', 'compute=N or storage=N')
      .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR),
  ).action(async (target: string, opts: MoveFlags & { dir: string }, command: Command) => {
    const { tier, count } = parseScaleTarget(target);
    if (tier === 'storage') {
      const { scaleLocalStorage } = await import('../../cluster/rebalance-local.js');
      await scaleLocalStorage(opts.dir, count, moveOutput(opts));
      if (!opts.dryRun && !opts.json) process.stdout.write(`storage nodes: ${count}\n`);
      return;
    }
    // Compute nodes hold no data: the flags that shape a data move mean nothing here, and are refused, not ignored.
    const dataOnly = (['concurrency', 'maxRate', 'maxP99Ratio'] as const).filter((k) => command.getOptionValueSource(k) === 'cli');
    if (dataOnly.length > 0) {
      const flags = dataOnly.map((k) => `--${k.replace(/[A-Z0-9]+/g, (m) => `-${m.toLowerCase()}`)}`).join(', ');
      throw new InvalidArgumentError(`${flags} shape${dataOnly.length === 1 ? 's' : ''} how storage data moves; compute nodes hold no data (scale compute=N takes --dry-run and --json)`);
    }
    const { scaleLocalCompute } = await import('../../cluster/local-cluster.js');
    const outcome = await scaleLocalCompute(opts.dir, count, { dryRun: opts.dryRun === true });
    if (opts.json) {
      process.stdout.write(JSON.stringify({ tier: 'compute', ...outcome }, null, 2) + '\n');
      return;
    }
    const { started, stopped } = outcome;
    if (opts.dryRun) {
      process.stdout.write(`plan: compute nodes ${outcome.from} -> ${count}\n`);
      if (started.length) process.stdout.write(`  would start ${started.join(', ')}\n`);
      if (stopped.length) process.stdout.write(`  would drain and stop ${stopped.join(', ')}\n`);
      if (!started.length && !stopped.length) process.stdout.write('  nothing to do\n');
      process.stdout.write('dry run: nothing changed\n');
      return;
    }
    if (started.length) process.stdout.write(`started ${started.join(', ')}\n`);
    if (stopped.length) process.stdout.write(`drained and stopped ${stopped.join(', ')}\n`);
    process.stdout.write(`compute nodes: ${count}\n`);
  });
}
