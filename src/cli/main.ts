/**
 * The `shardflow` command. Each subcommand lives in its own file under commands/; this file assembles them and turns
 * failures into one clear line and an exit code: 1 for an operation that failed, 2 for a usage error.
 */
import { Command, CommanderError } from 'commander';
import { ShardflowError } from '../errors/index.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerKvCommands } from './commands/kv.js';
import { registerNodeCommands } from './commands/node.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerComputeCommands } from './commands/compute.js';
import { registerRebalanceCommand } from './commands/rebalance.js';
import { registerAutoscaleCommand } from './commands/autoscale.js';
import { registerRunCommands } from './commands/run.js';

export function buildProgram(): Command {
  const program = new Command('shardflow')
    .description('A distributed computing system: partitioned storage nodes, stateless compute nodes, batch and stream processing.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerClusterCommands(program);
  registerKvCommands(program);
  registerNodeCommands(program);
  registerComputeCommands(program);
  registerRebalanceCommand(program);
  registerAutoscaleCommand(program);
  registerRunCommands(program);
  registerDemoCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message (or the help) already.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ShardflowError) {
      process.stderr.write(`error [${err.code}]: ${err.message}\n`);
      return err.code === 'INVALID_ARGUMENT' || err.code === 'CONFIG_ERROR' ? 2 : 1;
    }
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

/** Resolves once everything written to `stream` has left: a pipe takes 64 KiB at once, and exit drops the rest. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}

const code = await main(process.argv.slice(2));
// Long-running commands (node, coordinator, foreground up) resolve only when they are done.
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);
