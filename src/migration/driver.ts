/**
 * The process that drives partition moves. Opening one takes the cluster-wide `rebalance` lock (on a lease, so a
 * driver killed with -9 frees it within the lease's TTL), rolls back any move a dead driver left behind, and checks
 * that every node a plan involves answers before anything changes. Its job records live on the same lease.
 */
import { hostname } from 'node:os';
import type { Coordinator, Lease } from '../coordination/coordinator.js';
import { lockKey } from '../coordination/index.js';
import type { Catalog } from '../keyspace/index.js';
import type { MemberView, PeerPool } from '../client/index.js';
import { BusyError, InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import { JobLedger, readJobs } from './jobs.js';
import type { MoveContext } from './mover.js';
import { planRebalance, runMoves, type PlannedMove, type RunOptions } from './rebalance.js';
import type { MoveResult } from './mover.js';

export interface DriverDeps {
  coordinator: Coordinator;
  catalog: Catalog;
  members: MemberView;
  pool: PeerPool;
}

export interface DriverOptions {
  /** Shown in status and in the refusal another driver gets (default `rebalance`). */
  name?: string;
  /** TTL of the driver's lease: how long a dead driver's moves stay before they are rolled back (default 3000). */
  leaseTtlMs?: number;
}

/** Who holds the rebalance lock: the value of its key. */
export interface LockHolder {
  driver: string;
  pid: number;
  host: string;
  since: string;
}

const REBALANCE_LOCK = 'rebalance';
const log = createLogger('migration');

/**
 * @example
 * ```ts
 * const client = await connect({ dir: '.shardflow' });
 * const pool = new PeerPool(client.members, secret, 'ops');
 * const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
 * try {
 *   const moves = driver.plan();
 *   await driver.preflight(moves);
 *   await driver.run(moves, { concurrency: 8 });
 * } finally {
 *   await driver.close();
 * }
 * ```
 */
export class MigrationDriver {
  private constructor(
    private readonly deps: DriverDeps,
    private readonly lease: Lease,
    readonly context: MoveContext,
  ) {}

  /** @throws BusyError when another driver holds the lock (its holder in `details`). Nothing is changed then. */
  static async open(deps: DriverDeps, options: DriverOptions = {}): Promise<MigrationDriver> {
    const lease = await deps.coordinator.grantLease(options.leaseTtlMs ?? 3000);
    const driver = `${options.name ?? 'rebalance'}@${hostname()}:${process.pid}`;
    const holder: LockHolder = { driver, pid: process.pid, host: hostname(), since: new Date().toISOString() };
    const taken = await deps.coordinator.compareAndSet(lockKey(REBALANCE_LOCK), 0, JSON.stringify(holder), { lease });
    if (!taken.ok) {
      await lease.revoke().catch(() => undefined);
      const other = parseHolder(taken.current?.value);
      throw new BusyError(
        `another rebalance is running (${other ? `${other.driver}, since ${other.since}` : 'holder unknown'}); wait for it to finish or stop it`,
        { details: { holder: other } },
      );
    }
    const self = new MigrationDriver(deps, lease, {
      catalog: deps.catalog,
      members: deps.members,
      pool: deps.pool,
      ledger: new JobLedger(deps.coordinator, lease, driver),
    });
    try {
      await self.rollBackOrphans();
    } catch (err) {
      await self.close();
      throw err;
    }
    return self;
  }

  /** Who holds the rebalance lock now, if anyone. */
  static async holder(coordinator: Coordinator): Promise<LockHolder | undefined> {
    return parseHolder((await coordinator.get(lockKey(REBALANCE_LOCK)))?.value);
  }

  /**
   * Moves whose driver is gone (no job record: its lease expired) are rolled back: one CAS clears each entry; the
   * source and target follow the routing record (release, drop the partial copy). Holding the lock, every such move
   * is a dead driver's.
   */
  private async rollBackOrphans(): Promise<void> {
    const jobs = await readJobs(this.deps.coordinator);
    for (const name of this.deps.catalog.names()) {
      const table = await this.deps.catalog.refresh(name);
      for (const [key, entry] of Object.entries(table?.record.migrations ?? {})) {
        if (jobs.has(entry.job)) continue;
        const partition = Number(key);
        log.warn('rolling back a move its driver left', { namespace: name, partition, job: entry.job });
        await this.deps.catalog.update(name, (t) => t.withoutMoves(entry.job, [partition]));
      }
    }
  }

  /**
   * The fewest moves that balance every namespace over `nodes` (default: the ready storage nodes).
   *
   * @throws InvalidArgumentError when `nodes` are fewer than a namespace's copies (a drain or scale-in that would
   *   leave a replicated partition nowhere to keep its copies apart); nothing is changed then.
   */
  plan(nodes?: { id: string; capacity: number }[]): PlannedMove[] {
    if (nodes) {
      for (const name of this.deps.catalog.names()) {
        const copies = this.deps.catalog.table(name).copies;
        if (nodes.length < copies) {
          throw new InvalidArgumentError(
            `namespace ${name} keeps ${copies} copies on distinct storage nodes, so at least ${copies} must remain (the plan has ${nodes.length})`,
            { details: { namespace: name, copies, nodes: nodes.length } },
          );
        }
      }
    }
    return planRebalance(this.context, nodes);
  }

  /** Checks that every node the moves involve answers a ping. @throws UnavailableError naming the first that does not. */
  async preflight(moves: PlannedMove[], timeoutMs = 2000): Promise<void> {
    const ids = new Set<string>();
    for (const m of moves) {
      if (m.from) ids.add(m.from);
      ids.add(m.to);
    }
    await Promise.all(
      [...ids].map(async (id) => {
        const member = this.deps.members.get(id);
        if (!member || member.state !== 'ready') throw new UnavailableError(`storage node ${id} is not registered as ready`);
        try {
          const peer = await this.deps.pool.get(id, Date.now() + timeoutMs);
          await peer.call('node.ping', null, { timeoutMs });
        } catch (err) {
          throw new UnavailableError(`storage node ${id} at ${member.address} does not answer: ${(err as Error).message}`, {
            cause: err,
            details: { node: id, address: member.address },
          });
        }
      }),
    );
  }

  /** Carries out moves (see {@link runMoves}); backs off on the storage nodes' own p99 unless told otherwise. */
  run(moves: PlannedMove[], options: RunOptions = {}): Promise<MoveResult[]> {
    return runMoves(this.context, moves, { sampleP99: () => this.foregroundP99(), ...options });
  }

  /** The highest kv p99 (ms) over the last second among the ready storage nodes. */
  async foregroundP99(): Promise<number> {
    const p99s = await Promise.all(
      this.deps.members.ready('storage').map(async (m) => {
        const peer = await this.deps.pool.get(m.id, Date.now() + 1000);
        const s = await peer.call<{ latency?: { p99Ms: number } }>('node.stats', null, { timeoutMs: 1000 });
        return s.latency?.p99Ms ?? 0;
      }),
    );
    return Math.max(0, ...p99s);
  }

  /** Releases the lock and the lease (job records go with it). */
  async close(): Promise<void> {
    await this.lease.revoke().catch(() => undefined);
  }
}

function parseHolder(value: string | undefined): LockHolder | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value) as LockHolder;
  } catch {
    return undefined;
  }
}
