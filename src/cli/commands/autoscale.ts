/**
 * `shardflow autoscale`: run the autoscaler loop in the foreground (or one pass with `--once`), printing its
 * decisions. Policies come from the `autoscale` section of cluster.json, or from flags, which win.
 */
import type { Command } from 'commander';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { ConfigError } from '../../errors/index.js';
import { parseCount } from '../options.js';
import { untilSignal } from '../signals.js';

interface AutoscaleFlags {
  dir: string;
  once?: boolean;
  dryRun?: boolean;
  interval?: number;
  storagePolicy?: string;
  computePolicy?: string;
  hook?: string;
  json?: boolean;
  verbose?: boolean;
}

export function registerAutoscaleCommand(program: Command): void {
  program
    .command('autoscale')
    .description('scale storage and compute by policy (cluster.json "autoscale", or flags): decide, act, show why')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--once', 'one pass: decide (and act) once, then exit')
    .option('--dry-run', 'decide and print, but change nothing')
    .option('--interval <ms>', 'sampling interval in ms (default 5000)', parseCount('--interval', 50, 3_600_000))
    .option('--storage-policy <json>', 'storage scale policy as JSON, e.g. {"metric":"keys","target":1000000,...}')
    .option('--compute-policy <json>', 'compute scale policy as JSON, e.g. {"metric":"inFlight","target":8,...}')
    .option('--hook <command>', 'provision with this command instead of local processes, e.g. "./scale.sh {tier} {count} {nodes}"')
    .option('--json', 'print each decision as one JSON line')
    .option('--verbose', 'print every decision, not only actions and changes')
    .action(async (flags: AutoscaleFlags) => {
      const { ClusterDir } = await import('../../config/cluster-dir.js');
      const { parseAutoscaleConfig, tierPolicy } = await import('../../cluster/autoscale-config.js');
      const { AutoscaleLoop } = await import('../../cluster/autoscale-loop.js');
      const { formatDecision } = await import('../../cluster/autoscale-state.js');

      const file = await new ClusterDir(flags.dir).readCluster();
      const raw: Record<string, unknown> = { ...(file.autoscale ?? {}) };
      if (flags.interval !== undefined) raw.intervalMs = flags.interval;
      for (const [tier, text, flag] of [
        ['storage', flags.storagePolicy, '--storage-policy'],
        ['compute', flags.computePolicy, '--compute-policy'],
      ] as const) {
        if (text !== undefined) raw[tier] = tierPolicy(tier, parseJson(text, flag), flag);
      }
      if (flags.hook !== undefined) raw.provisioner = { kind: 'command', command: flags.hook };
      const config = parseAutoscaleConfig(raw);
      if (!config.policies.storage && !config.policies.compute) {
        throw new ConfigError(
          `no autoscale policy: add "autoscale": { "storage": {...}, "compute": {...} } to ${new ClusterDir(flags.dir).clusterFile}, or pass --storage-policy / --compute-policy`,
        );
      }

      const loop = await AutoscaleLoop.open({ dir: flags.dir, config, dryRun: flags.dryRun });
      const shapes = new Map<string, string>();
      let failed = false;
      loop.on('decision', (d: import('../../cluster/autoscale-state.js').AutoscaleDecision) => {
        failed ||= d.outcome === 'failed';
        // Without --verbose, a "none" decision is printed only when it says something new (numbers aside).
        const shape = d.reason.replace(/[\d.,]+/g, '#');
        if (!flags.verbose && !flags.once && d.outcome === 'none' && shapes.get(d.tier) === shape) return;
        shapes.set(d.tier, shape);
        process.stdout.write((flags.json ? JSON.stringify(d) : `${d.tier.padEnd(7)}  ${formatDecision(d)}`) + '\n');
      });
      loop.on('elected', () => {
        if (!flags.json) process.stdout.write(`autoscaler leading (${loop.candidate}${flags.dryRun ? ', dry run' : ''})\n`);
      });
      if (flags.once) {
        try {
          await loop.runOnce();
        } finally {
          await loop.stop();
        }
        if (failed) process.exitCode = 1;
        return;
      }
      if (!flags.json) {
        const tiers = Object.keys(config.policies).join(' and ');
        process.stdout.write(`autoscaling ${tiers} every ${config.intervalMs} ms${flags.dryRun ? ' (dry run: nothing changes)' : ''}; Ctrl-C to stop\n`);
      }
      loop.start();
      await untilSignal();
      if (!flags.json) process.stdout.write('stopping (an action under way finishes first)...\n');
      await loop.stop();
    });
}

function parseJson(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${flag} must be JSON: ${(cause as Error).message}`, { cause, details: { field: flag } });
  }
}
