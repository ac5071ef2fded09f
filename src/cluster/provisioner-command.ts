/**
 * A {@link Provisioner} that runs a command the user supplies, for environments where shardflow cannot start
 * processes itself (a cloud instance group, a Kubernetes StatefulSet, systemd units on other hosts).
 *
 * The command only starts or stops processes; shardflow does the rest around it:
 *
 * ```text
 * scale-out  run `hook {tier} {count}` → wait until `count` nodes of the tier are ready in membership
 *            → storage: move data onto the new nodes (online)
 * scale-in   pick the leaving nodes (newest ids) → storage: move every partition off them (online)
 *            → run `hook {tier} {count} {nodes}` → wait until they have left membership
 * ```
 *
 * The hook must stop exactly the nodes named in `{nodes}` (comma-separated ids), with SIGTERM or the platform's
 * equivalent, so a compute node drains its calls before it goes. Nodes count as present when they are registered and
 * ready in the cluster's membership: every node registers itself when it starts, wherever it runs.
 *
 * The hook runs without a shell. It gets the values as placeholders in its arguments (`{tier}`, `{count}`, `{from}`,
 * `{nodes}`, `{dir}`) and in its environment (`SHARDFLOW_TIER`, `SHARDFLOW_COUNT`, `SHARDFLOW_FROM`,
 * `SHARDFLOW_NODES`, `SHARDFLOW_DIR`, and `SHARDFLOW_REASON`, the autoscaler's reason).
 *
 * @module
 */
import { ClusterDir, compareIds } from '../config/cluster-dir.js';
import { openCoordinator } from '../client/index.js';
import { watchMembers, type Coordinator, type MembershipWatch } from '../coordination/index.js';
import { TimeoutError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { checkTier, checkTierCount, type Provisioner, type ScaleOutcome, type Tier } from './provisioner.js';
import { expandHookCommand, parseHookCommand, runHook, type HookRunOptions } from './provisioner-hook.js';
import { clusterStorageData, type StorageData } from './provisioner-data.js';

/** Options of {@link CommandProvisioner}. */
export interface CommandProvisionerOptions {
  /** The cluster directory: where the coordinator and secret are found. */
  dir: string;
  /**
   * The hook: `"./my-scaler.sh {tier} {count} {nodes}"`, or an array of words (see `parseHookCommand`). Runs without
   * a shell.
   */
  command: string | readonly string[];
  /** Deadline of one hook run (default 10 min). */
  timeoutMs?: number;
  /** How long joins and leaves may take to show in membership after the hook returned (default 2 min). */
  settleTimeoutMs?: number;
  /** Bytes of hook output kept for logs and errors (default 64 KiB). */
  maxOutputBytes?: number;
  /** Working directory of the hook (default this process's). */
  cwd?: string;
  /** Extra environment for the hook. */
  env?: Record<string, string>;
  /** Storage: partitions moved at once (default 4). */
  concurrency?: number;
  /** Moves storage data around the hook (default: the migration driver on this cluster). */
  data?: StorageData;
  logger?: Logger;
}

/**
 * Scales tiers by running a user's command; see the module comment for the protocol.
 *
 * @example
 * ```ts
 * import { CommandProvisioner } from 'shardflow';
 * const provisioner = new CommandProvisioner({ dir: '.shardflow', command: './my-scaler.sh {tier} {count} {nodes}' });
 * await provisioner.scaleTo('compute', 4, 'calls/s per node 1.4k > 1.2 × 1k for 30 s: 3 -> 4');
 * await provisioner.close();
 * ```
 */
export class CommandProvisioner implements Provisioner {
  readonly kind = 'command';
  private readonly words: string[];
  private readonly dir: ClusterDir;
  private readonly data: StorageData;
  private readonly log: Logger;
  private membership: Promise<{ coordinator: Coordinator; watch: MembershipWatch }> | undefined;
  private readonly waiters = new Set<() => void>();

  /** @throws ConfigError if the command is not usable (see `parseHookCommand`). */
  constructor(private readonly options: CommandProvisionerOptions) {
    this.words = parseHookCommand(options.command, 'command');
    this.dir = new ClusterDir(options.dir);
    this.data = options.data ?? clusterStorageData(this.dir.root, { concurrency: options.concurrency });
    this.log = options.logger ?? createLogger('provisioner:command');
  }

  async count(tier: Tier): Promise<number> {
    checkTier(tier);
    return this.ready(await this.members(), tier).length;
  }

  async scaleTo(tier: Tier, count: number, reason: string): Promise<ScaleOutcome> {
    checkTierCount(tier, count);
    const members = await this.members();
    const ready = this.ready(members, tier);
    const from = ready.length;
    if (from === count) return { tier, from, to: count, detail: 'already there' };
    const settleBy = () => Date.now() + (this.options.settleTimeoutMs ?? 120_000);

    if (count > from) {
      const hook = await this.hook(tier, count, from, [], reason);
      await this.until(() => this.ready(members, tier).length >= count, settleBy(), `${count} ready ${tier} nodes`);
      const moved = tier === 'storage' ? await this.data.rebalance() : 0;
      const joined = this.ready(members, tier).filter((id) => !ready.includes(id));
      return { tier, from, to: count, detail: `${hook}; joined ${joined.join(', ')}${tier === 'storage' ? `; ${moved} partitions moved` : ''}` };
    }

    // Newest first, as a StatefulSet scales down: the hook is told which ones to stop.
    const leaving = [...ready].sort(compareIds).slice(count);
    const moved = tier === 'storage' ? await this.data.drain(leaving) : 0;
    const hook = await this.hook(tier, count, from, leaving, reason);
    await this.until(() => leaving.every((id) => !members.watch.members.has(id)), settleBy(), `${leaving.join(', ')} to leave`);
    return { tier, from, to: count, detail: `${tier === 'storage' ? `${moved} partitions moved off; ` : ''}${hook}; left ${leaving.join(', ')}` };
  }

  async close(): Promise<void> {
    const m = this.membership;
    this.membership = undefined;
    if (!m) return;
    const { coordinator, watch } = await m.catch(() => ({ coordinator: undefined, watch: undefined }));
    await watch?.close().catch(() => undefined);
    await coordinator?.close().catch(() => undefined);
  }

  private async hook(tier: Tier, count: number, from: number, nodes: string[], reason: string): Promise<string> {
    const values = { tier, count: String(count), from: String(from), nodes: nodes.join(','), dir: this.dir.root };
    const argv = expandHookCommand(this.words, values);
    const run: HookRunOptions = {
      timeoutMs: this.options.timeoutMs,
      maxOutputBytes: this.options.maxOutputBytes,
      cwd: this.options.cwd,
      env: {
        ...this.options.env,
        SHARDFLOW_TIER: tier,
        SHARDFLOW_COUNT: values.count,
        SHARDFLOW_FROM: values.from,
        SHARDFLOW_NODES: values.nodes,
        SHARDFLOW_DIR: values.dir,
        SHARDFLOW_REASON: reason,
      },
    };
    this.log.info('running scale hook', { argv, reason });
    const result = await runHook(argv, run);
    const said = result.stdout.trim().split('\n').slice(-1)[0] ?? '';
    return `hook ${argv[0]} ran in ${result.ms} ms${said ? ` (${said.slice(0, 200)})` : ''}`;
  }

  private ready(m: { watch: MembershipWatch }, tier: Tier): string[] {
    return [...m.watch.members.values()].filter((n) => n.role === tier && n.state === 'ready').map((n) => n.id);
  }

  private members(): Promise<{ coordinator: Coordinator; watch: MembershipWatch }> {
    this.membership ??= (async () => {
      const { coordinator } = await openCoordinator({ dir: this.dir.root });
      try {
        const watch = await watchMembers(coordinator, () => {
          for (const w of [...this.waiters]) w();
        });
        return { coordinator, watch };
      } catch (err) {
        await coordinator.close().catch(() => undefined);
        throw err;
      }
    })();
    const pending = this.membership;
    pending.catch(() => {
      if (this.membership === pending) this.membership = undefined; // try again next time
    });
    return pending;
  }

  /** Resolves once `done()` holds, re-checked on every membership change; TimeoutError at `deadline`. */
  private async until(done: () => boolean, deadline: number, what: string): Promise<void> {
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`the scale hook returned, but waiting for ${what} timed out`, { details: { waitingFor: what } });
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }
}
