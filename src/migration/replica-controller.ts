/**
 * The replica controller: one per cluster (elected among the storage nodes, like Kafka's controller), it keeps every
 * replicated partition led and at its configured number of copies.
 *
 * ```text
 *  every intervalMs, while leader of election `replicas`:
 *    gone  = storage nodes no longer in membership (lease expired, or left)
 *    failover:  for each partition led by a gone node, the first in-sync follower still a member leads it;
 *               gone nodes leave every follower list           — one CAS per namespace, next epoch
 *    repair:    for each partition with fewer in-sync copies than configured, copy it from its leader to the
 *               next rendezvous choice among the ready storage nodes (a migration job of kind copy: snapshot,
 *               change log, brief hold, the target joins the followers)
 *    leaders:   once a namespace has every copy and nothing moves, if leadership is uneven by more than a tenth of
 *               a node's share (a restarted node leads nothing: failover gave its partitions away), hand leads
 *               to in-sync followers below their share — no data moves (Kafka's preferred leader election).
 *               Taken under the rebalance lock, so it never runs beside a rebalance; at most every
 *               leaderBalanceEveryMs.
 *    merges:    small neighbouring ranges on different nodes are put on one node and merged (range-upkeep.ts), in
 *               the range namespaces that allow it (autoMerge), at most every rangeMergeEveryMs, under the same lock.
 * ```
 *
 * A partition whose only in-sync copy was on the gone node stays with it (there is nothing safe to promote) and
 * `shardflow status` flags it; it comes back with the node. The CAS fences the old leader: its followers refuse it
 * at the new epoch, and its own attempt to drop a follower fails on the changed record.
 *
 * @module
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Coordinator, Lease, Leadership } from '../coordination/coordinator.js';
import { campaign } from '../coordination/index.js';
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import type { MemberView, PeerPool } from '../client/index.js';
import { planLeaderHandoffs, replicaTargets, type LeadHandoff } from '../partitioning/index.js';
import { BusyError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { JobLedger } from './jobs.js';
import { moveBatch, type MoveContext } from './mover.js';
import { replicaSetsOf, type PlannedMove } from './rebalance.js';
import { MigrationDriver } from './driver.js';
import { mergeSmallNeighbours, RANGE_MERGE_EVERY_MS } from './range-upkeep.js';

export const REPLICA_ELECTION = 'replicas';
/** Most partitions one copy job carries (one cutover CAS for all of them). */
const COPY_BATCH = 512;
/** Copy jobs running at once. */
const COPY_CONCURRENCY = 2;

export interface ReplicaControllerOptions {
  coordinator: Coordinator;
  catalog: Catalog;
  members: MemberView;
  pool: PeerPool;
  /** Name in the election (host, pid and a random suffix are added). */
  name?: string;
  /** How often to look (default 200 ms). */
  intervalMs?: number;
  /** TTL of the leadership lease (default 1000 ms): how soon another controller takes over. */
  leaseTtlMs?: number;
  /** Even out leaders among in-sync copies when uneven (default true), at most this often (default 5000 ms). */
  leaderBalance?: boolean;
  leaderBalanceEveryMs?: number;
  /** Look for small neighbouring ranges on different nodes to merge this often (default 10 s; 0: never). */
  rangeMergeEveryMs?: number;
  logger?: Logger;
}

/** What the controller did in one round (for tests and logs). */
export interface ControllerRound {
  failovers: { namespace: string; partitions: number; gone: string[] }[];
  copiesStarted: number;
  /** Lead handoffs started (they finish in the background). */
  handoffsStarted: number;
}

/** Handoffs per job (one hold and one CAS for all of them). */
const HANDOFF_BATCH = 512;

/**
 * @example
 * ```ts
 * const controller = ReplicaController.start({ coordinator, catalog: client.catalog, members: client.members, pool });
 * // ... every storage node runs one; one of them leads
 * await controller.stop();
 * ```
 */
export class ReplicaController {
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private leadership: Leadership | undefined;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private readonly copying = new Set<string>();
  private copyJobs = 0;
  private balancing = false;
  private lastBalance = 0;
  private merging = false;
  private lastMerge = Date.now();
  /** Rounds so far: which namespace's repairs are looked at first turns with it. */
  private rounds = 0;
  private readonly candidate: string;

  private constructor(private readonly options: ReplicaControllerOptions) {
    this.log = options.logger ?? createLogger('replicas');
    this.candidate = `${options.name ?? 'replicas'}@${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  static start(options: ReplicaControllerOptions): ReplicaController {
    const c = new ReplicaController(options);
    void c.elect();
    return c;
  }

  /** Whether this controller leads now. */
  get leading(): boolean {
    return this.leadership !== undefined;
  }

  private async elect(): Promise<void> {
    while (!this.stopped) {
      try {
        this.lease = await this.options.coordinator.grantLease(this.options.leaseTtlMs ?? 1000);
        const lease = this.lease;
        const leadership = await campaign(this.options.coordinator, REPLICA_ELECTION, this.candidate, lease, { signal: this.abort.signal });
        this.leadership = leadership;
        this.log.info('leading the replica controller', { candidate: this.candidate });
        const lost = new Promise<void>((resolve) =>
          leadership.onLost((reason) => {
            this.log.warn('lost the replica controller lead', { reason: reason.message });
            resolve();
          }),
        );
        this.schedule();
        await lost;
        this.leadership = undefined;
      } catch (err) {
        if (this.stopped) return;
        this.log.debug('replica controller election failed; trying again', { error: String(err) });
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    }
  }

  private schedule(): void {
    if (this.stopped || !this.leadership) return;
    this.timer = setTimeout(() => {
      void this.round()
        .catch((err: unknown) => this.log.warn('replica controller round failed', { error: String(err) }))
        .finally(() => this.schedule());
    }, this.options.intervalMs ?? 200);
    this.timer.unref();
  }

  /** One look at every replicated namespace: failover first, then repairs. */
  async round(): Promise<ControllerRound> {
    const out: ControllerRound = { failovers: [], copiesStarted: 0, handoffsStarted: 0 };
    if (this.running) return out;
    this.running = true;
    try {
      const { catalog, members } = this.options;
      const memberIds = new Set(members.all().filter((m) => m.role === 'storage' && m.state !== 'leaving').map((m) => m.id));
      const ready = members.ready('storage').map((m) => m.id);
      // Copy jobs are few at a time: starting with a different namespace each round keeps a big namespace's repairs
      // from holding every job while a small one waits.
      const names = catalog.names();
      const first = names.length > 0 ? this.rounds++ % names.length : 0;
      for (const name of [...names.slice(first), ...names.slice(0, first)]) {
        const table = catalog.find(name);
        if (!table || table.copies <= 1) continue;
        const gone = goneHolders(table, memberIds);
        if (gone.size > 0) {
          const after = await catalog.update(name, (t) => failover(t, goneHolders(t, memberIds)));
          const moved = after.epoch !== table.epoch;
          if (moved) {
            out.failovers.push({ namespace: name, partitions: after.partitions().filter((p) => after.ownerOf(p) !== table.ownerOf(p)).length, gone: [...gone] });
            this.log.warn('failover', { namespace: name, gone: [...gone].join(','), epoch: after.epoch });
          }
        }
        out.copiesStarted += this.repair(catalog.find(name)!, ready, memberIds);
      }
      if (out.copiesStarted === 0 && out.failovers.length === 0) {
        out.handoffsStarted = this.balanceLeaders();
        this.mergeRanges();
      }
      return out;
    } finally {
      this.running = false;
    }
  }

  /** Starts copy jobs for partitions below their configured copies. Returns how many partitions it started on. */
  private repair(table: RoutingTable, ready: string[], memberIds: Set<string>): number {
    if (this.copyJobs >= COPY_CONCURRENCY || !this.lease || !this.leadership) return 0;
    const batches = new Map<string, { from: string; to: string; partitions: number[] }>();
    for (const p of table.partitions()) {
      const leader = table.ownerOf(p)!;
      const key = `${table.name}\u0000${p}`;
      if (this.copying.has(key) || table.migrationOf(p) || !memberIds.has(leader) || !ready.includes(leader)) continue;
      const holders = [leader, ...table.followersOf(p)];
      if (holders.length >= table.copies) continue;
      const [to] = replicaTargets(p, ready, holders, 1);
      if (!to) continue;
      const id = `${leader}>${to}`;
      let b = batches.get(id);
      if (!b) batches.set(id, (b = { from: leader, to, partitions: [] }));
      if (b.partitions.length < COPY_BATCH) b.partitions.push(p);
    }
    let started = 0;
    for (const b of batches.values()) {
      if (this.copyJobs >= COPY_CONCURRENCY) break;
      started += b.partitions.length;
      this.copyJobs += 1;
      const keys = b.partitions.map((p) => `${table.name}\u0000${p}`);
      for (const k of keys) this.copying.add(k);
      const ctx: MoveContext = {
        catalog: this.options.catalog,
        members: this.options.members,
        pool: this.options.pool,
        ledger: new JobLedger(this.options.coordinator, this.lease, this.candidate),
      };
      void moveBatch(ctx, { namespace: table.name, from: b.from, to: b.to, partitions: b.partitions, copy: true })
        .then(
          (r) => this.log.info('copied partitions', { namespace: table.name, from: b.from, to: b.to, partitions: b.partitions.length, ms: r.ms }),
          (err: unknown) => this.log.warn('copy failed; will try again', { namespace: table.name, from: b.from, to: b.to, error: String(err) }),
        )
        .finally(() => {
          this.copyJobs -= 1;
          for (const k of keys) this.copying.delete(k);
        });
    }
    return started;
  }

  /**
   * Starts lead handoffs in the namespaces that need them (in the background, one run at a time). Returns how many
   * it started.
   */
  private balanceLeaders(): number {
    const every = this.options.leaderBalanceEveryMs ?? 5000;
    if (this.options.leaderBalance === false || this.balancing || this.copyJobs > 0 || Date.now() - this.lastBalance < every) return 0;
    const { catalog, members } = this.options;
    const nodes = members.ready('storage').map((m) => ({ id: m.id, capacity: m.capacity }));
    if (nodes.length < 2) return 0;
    const work: { namespace: string; handoffs: LeadHandoff[] }[] = [];
    for (const name of catalog.names()) {
      const table = catalog.find(name);
      if (!table || table.copies <= 1 || Object.keys(table.record.migrations ?? {}).length > 0) continue;
      const partitions = table.partitions();
      // Only once every copy is there: a partition still being re-replicated has no follower to hand to yet.
      if (partitions.some((p) => 1 + table.followersOf(p).length < Math.min(table.copies, nodes.length))) continue;
      const handoffs = planLeaderHandoffs(replicaSetsOf(table), nodes);
      // A little unevenness is left alone (hysteresis): a tenth of a node's share, at least one partition.
      if (handoffs.length > Math.max(0, (0.1 * partitions.length) / nodes.length)) work.push({ namespace: name, handoffs });
    }
    this.lastBalance = Date.now();
    if (work.length === 0) return 0;
    this.balancing = true;
    void this.handOff(work)
      .catch((err: unknown) => {
        if (!(err instanceof BusyError)) this.log.warn('leader balancing failed; will try again', { error: String(err) });
      })
      .finally(() => {
        this.balancing = false;
        this.lastBalance = Date.now();
      });
    return work.reduce((n, w) => n + w.handoffs.length, 0);
  }

  /** Starts a look for ranges to merge across nodes (in the background, one at a time, every rangeMergeEveryMs). */
  private mergeRanges(): void {
    const every = this.options.rangeMergeEveryMs ?? RANGE_MERGE_EVERY_MS;
    if (every <= 0 || this.merging || this.balancing || this.copyJobs > 0 || Date.now() - this.lastMerge < every) return;
    this.merging = true;
    const { coordinator, catalog, members, pool } = this.options;
    void mergeSmallNeighbours({ coordinator, catalog, members, pool }, this.log, () => !this.stopped && this.leadership !== undefined)
      .catch((err: unknown) => this.log.warn('merging ranges across nodes failed; will try again', { error: String(err) }))
      .finally(() => {
        this.merging = false;
        this.lastMerge = Date.now();
      });
  }

  /** Runs handoffs under the rebalance lock (a rebalance in progress: skipped, tried again later). */
  private async handOff(work: { namespace: string; handoffs: LeadHandoff[] }[]): Promise<void> {
    const { coordinator, catalog, members, pool } = this.options;
    const driver = await MigrationDriver.open({ coordinator, catalog, members, pool }, { name: 'leader-balance' });
    try {
      const moves = work.flatMap(({ namespace, handoffs }) => handoffs.map((h): PlannedMove => ({ ...h, namespace, role: 'lead', bytes: 0 })));
      await driver.run(moves, {
        concurrency: 1,
        batchPartitions: HANDOFF_BATCH,
        maxP99Ratio: 0, // nothing is copied: no rate to hold back
        onMoved: (r) => this.log.info('handed off leads', { namespace: r.namespace, from: r.from, to: r.to, partitions: r.partitions.length, heldMs: r.fenceMs }),
      });
    } finally {
      await driver.close();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort(new Error('stopping'));
    if (this.timer) clearTimeout(this.timer);
    await this.leadership?.resign().catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }
}

/** Nodes that hold a copy in the table (lead or follow) but are no longer storage members. */
function goneHolders(table: RoutingTable, members: Set<string>): Set<string> {
  const gone = new Set<string>();
  for (const p of table.partitions()) {
    const leader = table.ownerOf(p)!;
    if (!members.has(leader)) gone.add(leader);
    for (const f of table.followersOf(p)) if (!members.has(f)) gone.add(f);
  }
  return gone;
}

/**
 * The failover table: partitions led by a gone node go to an in-sync follower still a member (the one leading fewest);
 * gone nodes leave every follower list. Undefined when nothing changes.
 */
export function failover(table: RoutingTable, gone: ReadonlySet<string>): RoutingTable | undefined {
  if (gone.size === 0) return undefined;
  const changes = new Map<number, string>();
  let touched = false;
  // Heirs are chosen to even out leadership: of a partition's in-sync followers, the one leading fewest so far.
  const leads = new Map<string, number>();
  for (const p of table.partitions()) leads.set(table.ownerOf(p)!, (leads.get(table.ownerOf(p)!) ?? 0) + 1);
  for (const p of table.partitions()) {
    const followers = table.followersOf(p);
    if (followers.some((f) => gone.has(f))) touched = true;
    if (!gone.has(table.ownerOf(p)!)) continue;
    let heir: string | undefined;
    for (const f of followers) if (!gone.has(f) && (heir === undefined || (leads.get(f) ?? 0) < (leads.get(heir) ?? 0))) heir = f;
    if (heir) {
      changes.set(p, heir);
      leads.set(heir, (leads.get(heir) ?? 0) + 1);
    }
  }
  return changes.size > 0 || touched ? table.withFailover(gone, changes) : undefined;
}
