/**
 * Provisioning: how a tier gets more or fewer node processes. The autoscaler loop (`autoscale-loop.ts`) decides
 * *how many*; a {@link Provisioner} makes it so. Two implementations pass one conformance suite
 * (`test/cluster/provisioner-conformance.ts`):
 *
 * - {@link LocalProvisioner}: processes on this host, started and stopped through the same functions as
 *   `shardflow scale` (storage through `scaleLocalStorage`, so data moves online and a leaving node hands its
 *   partitions over before it stops; compute through `scaleLocalCompute`, which drains).
 * - `CommandProvisioner` (`provisioner-command.ts`): a command the user supplies (`my-scaler.sh {tier} {count}`) for
 *   environments this package cannot start processes in; shardflow moves the data around it.
 *
 * A provisioner sets an absolute count, never "one more", so a request repeated after an unknown outcome does no
 * harm.
 *
 * @module
 */
import { ClusterDir } from '../config/cluster-dir.js';
import { InvalidArgumentError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { MAX_LOCAL_NODES, scaleLocalCompute } from './local-cluster.js';
import { scaleLocalStorage } from './rebalance-local.js';
import { isAlive } from './spawn.js';

/** The two tiers of a cluster. */
export type Tier = 'storage' | 'compute';

/** Both tiers, storage first (the order the autoscaler loop visits them in). */
export const TIERS: readonly Tier[] = Object.freeze(['storage', 'compute'] as const);

/** The most nodes of one tier a provisioner is asked for (the local limit; a command hook shares it). */
export const MAX_TIER_NODES = MAX_LOCAL_NODES;

/** What {@link Provisioner.scaleTo} did. */
export interface ScaleOutcome {
  tier: Tier;
  /** The count before. */
  from: number;
  /** The count after (the one asked for). */
  to: number;
  /** Which nodes started or stopped, or what the command said; for logs. */
  detail: string;
}

/**
 * Starts and stops the nodes of a tier.
 *
 * Contract (checked by the conformance suite):
 * - {@link count} is the number of nodes of the tier that run now;
 * - {@link scaleTo} resolves once the tier has exactly `count` nodes and they serve: new nodes are ready, storage data
 *   is spread over them, leaving storage nodes have handed over every partition and stopped, leaving compute nodes
 *   have drained and stopped. Asking for the current count is a no-op that resolves;
 * - a count outside `[1, MAX_TIER_NODES]` (storage) or `[0, MAX_TIER_NODES]` (compute), or an unknown tier, is
 *   refused with `InvalidArgumentError` before anything happens;
 * - a failure rejects with a named error from `src/errors`; the tier may then be part way (some nodes started), and
 *   {@link count} tells where it is.
 *
 * @example
 * ```ts
 * import { LocalProvisioner } from 'shardflow';
 * const provisioner = new LocalProvisioner('.shardflow');
 * if ((await provisioner.count('compute')) < 2) {
 *   await provisioner.scaleTo('compute', 2, 'calls/s per node above 1.2 × 500');
 * }
 * await provisioner.close();
 * ```
 */
export interface Provisioner {
  /** `local`, `command`, ...: shown in logs and status. */
  readonly kind: string;
  /** How many nodes of `tier` run now. */
  count(tier: Tier): Promise<number>;
  /**
   * Makes `tier` run `count` nodes (see the contract above). `reason` is why, for the provisioner's own logs (a command
   * hook gets it as `SHARDFLOW_REASON`).
   */
  scaleTo(tier: Tier, count: number, reason: string): Promise<ScaleOutcome>;
  /** Releases connections the provisioner opened. */
  close(): Promise<void>;
}

/**
 * Checks a tier and a count against the provisioner contract.
 *
 * @throws InvalidArgumentError naming what is wrong.
 */
export function checkTierCount(tier: unknown, count: unknown): asserts tier is Tier {
  checkTier(tier);
  const min = tier === 'storage' ? 1 : 0;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < min || count > MAX_TIER_NODES) {
    const why = tier === 'storage' ? ' (a cluster needs a storage node)' : '';
    throw new InvalidArgumentError(`${tier} count must be a whole number from ${min} to ${MAX_TIER_NODES}${why}, not ${String(count)}`, {
      details: { tier, count: String(count) },
    });
  }
}

/** @throws InvalidArgumentError unless `tier` is `storage` or `compute`. */
export function checkTier(tier: unknown): asserts tier is Tier {
  if (tier !== 'storage' && tier !== 'compute') {
    throw new InvalidArgumentError(`tier must be storage or compute, not ${JSON.stringify(tier)}`, { details: { tier: String(tier) } });
  }
}

/** Options of {@link LocalProvisioner}. */
export interface LocalProvisionerOptions {
  /** Storage: partitions moved at once (default 4, as `shardflow scale`). */
  concurrency?: number;
  /** Where the plan and progress of storage moves go (default: a logger, at level info). */
  logger?: Logger;
}

/**
 * Node processes on this host, in the cluster directory `dir`: the same path as `shardflow scale storage=N` and
 * `compute=N`. Counts the processes of the tier that are alive.
 *
 * @example
 * ```ts
 * const provisioner = new LocalProvisioner('.shardflow');
 * await provisioner.scaleTo('storage', 4, 'keys/node 1.3M > 1.2 × 1M for 30 s: 3 -> 4'); // s4 starts, data moves
 * ```
 */
export class LocalProvisioner implements Provisioner {
  readonly kind = 'local';
  private readonly dir: ClusterDir;
  private readonly log: Logger;

  constructor(
    dir: string,
    private readonly options: LocalProvisionerOptions = {},
  ) {
    this.dir = new ClusterDir(dir);
    this.log = options.logger ?? createLogger('provisioner:local');
  }

  async count(tier: Tier): Promise<number> {
    checkTier(tier);
    const nodes = await this.dir.listNodes();
    return nodes.filter((n) => n.role === tier && isAlive(n.pid)).length;
  }

  async scaleTo(tier: Tier, count: number, _reason: string): Promise<ScaleOutcome> {
    checkTierCount(tier, count);
    await this.dir.readCluster(); // ClusterNotRunningError before anything else
    const from = await this.count(tier);
    if (from === count) return { tier, from, to: count, detail: 'already there' };
    if (tier === 'storage') {
      // Starts the new nodes and rebalances onto them, or drains the leaving ones and then stops them.
      await scaleLocalStorage(this.dir.root, count, {
        concurrency: this.options.concurrency,
        write: (line) => this.log.info(line),
      });
      return { tier, from, to: count, detail: `storage ${from} -> ${count}, data moved online` };
    }
    const { started, stopped } = await scaleLocalCompute(this.dir.root, count);
    const detail = [started.length ? `started ${started.join(', ')}` : '', stopped.length ? `drained and stopped ${stopped.join(', ')}` : '']
      .filter(Boolean)
      .join('; ');
    return { tier, from, to: count, detail };
  }

  async close(): Promise<void> {
    // Nothing held between calls.
  }
}
