/**
 * A storage node: serves the partitions it owns from its LMDB files, over the wire protocol, and announces itself
 * through membership as soon as it can serve.
 *
 * Start order matters: open the engine, load the catalog, listen, and only then register as `ready`, so a client
 * never routes to a node that cannot answer yet. Stop order is the reverse: announce leaving, stop listening, close
 * the engine after in-flight writes have committed.
 */
import { mkdir } from 'node:fs/promises';
import { Catalog } from '../keyspace/index.js';
import type { Coordinator } from '../coordination/coordinator.js';
import { registerNode, watchMembers, type MembershipWatch, type NodeRegistration } from '../coordination/index.js';
import { InvalidArgumentError, UnknownMethodError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { RpcServer } from '../wire/index.js';
import { StorageEngine, type Durability } from './engine.js';
import { KvService } from './kv-service.js';
import { RangeMaintainer, RangeTraffic } from './range-maintainer.js';
import { SnapshotRegistry } from './snapshots.js';
import { MigrationService, type ImportCounts } from './migration-service.js';
import { LatencyWindow } from '../util/latency-window.js';
import { RateMeter } from '../util/rate-meter.js';
import { recoverAtStart } from './startup-recovery.js';
import { LeadHandoffService } from './lead-handoff-service.js';
import { Replicator } from './replicator.js';
import { ReplicaApplier } from './replica-apply.js';
import { LeaderStanding } from './leader-standing.js';
import { FailoverRepair } from './failover-repair.js';
import { locationOf } from './location.js';

export interface StorageNodeOptions {
  id: string;
  dataDir: string;
  secret: Uint8Array;
  coordinator: Coordinator;
  /** Interface to listen on (default 127.0.0.1). */
  listenHost?: string;
  /** Port to listen on (0 = any free port). */
  listenPort?: number;
  /** Host other nodes and clients should use (default: the listen host). */
  advertiseHost?: string;
  /** Relative weight in the planner (default 1). */
  capacity?: number;
  /**
   * When a write is acknowledged: `process` (default) once committed — safe from a crash of this process, on the
   * device within a second; `device` once flushed to the device.
   */
  durability?: Durability;
  /** Membership lease TTL (default 1000 ms). */
  leaseTtlMs?: number;
  logger?: Logger;
}

/** What `node.stats` answers and `shardflow status` shows. */
export interface NamespaceStats {
  partitions: number;
  keys: number;
  bytes: number;
  followed?: number;
  followerKeys?: number;
  followerBytes?: number;
  stray?: number;
}

export interface StorageStats {
  id: string;
  partitions: number;
  keys: number;
  bytes: number;
  /**
   * Per namespace: the partitions this node leads, with their keys and bytes; in a replicated namespace also the
   * partitions it follows (`followed`, with `followerKeys`/`followerBytes`) and `stray`: partitions with data here
   * that it neither leads nor follows (a copy that moved away, still being dropped, or one kept for a copy coming
   * back while the partition has fewer copies than configured).
   */
  namespaces: Record<string, NamespaceStats>;
  /** kv requests served per second, over the last 5 whole seconds (`node.stats` only): an autoscaler metric. */
  opsPerSec?: number;
  /** Latency of kv requests over the last whole second (`node.stats` only). */
  latency?: { p99Ms: number; p50Ms: number; count: number };
  /**
   * This node as a follower: per leader it follows, how long ago it last heard from it (ms; -1: never) and whether
   * the stream broke (`node.stats` only).
   */
  following?: Record<string, { heardMsAgo: number; broken: boolean }>;
  /**
   * Copies into this node since it started (`node.stats` only): entries copied or fetched, entries a copy found here
   * already and kept (a follower copy coming back compares rather than copying all), entries it deleted; in all and
   * per namespace.
   */
  imported?: ImportCounts & { namespaces: Record<string, ImportCounts> };
  /**
   * Failover repairs this node ran as a new leader (one per namespace and replaced leader) and the keys it re-sent
   * to its followers so they hold its values of what the old leader wrote last (`node.stats` only).
   */
  repaired?: { repairs: number; keys: number };
}

export class StorageNode {
  private constructor(
    readonly id: string,
    readonly address: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly server: RpcServer,
    private readonly registration: NodeRegistration,
    private readonly maintainer: RangeMaintainer,
    private readonly snapshots: SnapshotRegistry,
    private readonly log: Logger,
    private readonly migrations: MigrationService,
    private readonly replicator: Replicator,
    private readonly members: MembershipWatch,
    private readonly standing: LeaderStanding,
  ) {}

  /**
   * @example
   * ```ts
   * const node = await StorageNode.start({ id: 's1', dataDir: '/tmp/s1', secret, coordinator });
   * console.log(node.address); // 127.0.0.1:41234
   * ```
   */
  static async start(options: StorageNodeOptions): Promise<StorageNode> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.id)) throw new InvalidArgumentError(`invalid node id ${options.id}`);
    const log = options.logger ?? createLogger(`storage:${options.id}`);
    await mkdir(options.dataDir, { recursive: true });
    const engine = StorageEngine.open(options.dataDir, { durability: options.durability });
    const catalog = await Catalog.open(options.coordinator);
    const snapshots = new SnapshotRegistry(engine);
    const traffic = new RangeTraffic();
    const members = await watchMembers(options.coordinator, () => undefined, { logger: log });
    const replicator = new Replicator({
      nodeId: options.id,
      catalog,
      secret: options.secret,
      addressOf: (id) => members.members.get(id)?.address,
      log,
    });
    engine.setReplication(replicator);
    const applier = new ReplicaApplier(options.id, engine, catalog);
    const kv = new KvService(options.id, engine, catalog, snapshots, traffic, applier);
    const stale = await recoverAtStart(options.id, engine, catalog, log);
    if (stale.size > 0) log.info('keeping data of partitions short of copies, for a copy coming back to compare with', { partitions: stale.size });
    const migrations = new MigrationService(options.id, engine, catalog, kv, options.secret, options.coordinator, stale);
    const handoffs = new LeadHandoffService(options.id, engine, catalog, kv, replicator);
    const repair = new FailoverRepair({
      nodeId: options.id,
      engine,
      catalog,
      applier,
      replicator,
      secret: options.secret,
      addressOf: (id) => members.members.get(id)?.address,
      log,
    });
    catalog.onChange((table, name) => repair.onTable(table, name));
    catalog.onChange((table) => table && migrations.onTable(table));
    // Registered after the migration service's listener: a range that moved here is finished there (no longer
    // "receiving") before the maintainer sees it as its own.
    const maintainer = new RangeMaintainer(options.id, engine, catalog, log, {
      traffic,
      receiving: (ns, partition) => migrations.receiving(ns, partition),
      hold: (ns, ranges, followers) => handoffs.hold(ns, ranges, followers),
    });
    for (const name of catalog.names()) maintainer.onTable(catalog.table(name));
    catalog.onChange((table, name) => maintainer.onTable(table, name));

    const latency = new LatencyWindow();
    const served = new RateMeter();
    let sizes: () => Record<string, [number, number, number][]> = () => ({});
    let stats: () => StorageStats = () => ({ id: options.id, partitions: 0, keys: 0, bytes: 0, namespaces: {} });
    const server = new RpcServer({
      secret: options.secret,
      logger: log,
      handler: (method, params, connection) => {
        if (method.startsWith('kv.')) {
          // Foreground latency, which a migration driver follows to slow down when clients suffer.
          const t0 = performance.now();
          const done = () => latency.record(performance.now() - t0);
          const out = kv.handle(method, params, connection);
          // Served: answered, not refused or redirected (what a client sends again elsewhere counts there).
          if (out instanceof Promise) return out.then((v) => (served.mark(), v)).finally(done);
          served.mark();
          done();
          return out;
        }
        if (method.startsWith('repl.')) return applier.handle(method, params);
        if (method.startsWith('mig.')) return migrations.handle(method, params, connection);
        if (method.startsWith('lead.')) return handoffs.handle(method, params);
        if (method.startsWith('range.')) return maintainer.handle(method, params);
        if (method === 'node.ping') return { id: options.id, role: 'storage' };
        if (method === 'node.stats') return stats();
        if (method === 'node.partitions') return sizes();
        throw new UnknownMethodError(`unknown method ${method}`);
      },
    });
    const bound = await server.listen(options.listenPort ?? 0, options.listenHost ?? '127.0.0.1');
    const address = `${options.advertiseHost ?? options.listenHost ?? '127.0.0.1'}:${bound.port}`;
    const registration = await registerNode(
      options.coordinator,
      { id: options.id, role: 'storage', address, capacity: options.capacity ?? 1, pid: process.pid },
      { ttlMs: options.leaseTtlMs ?? 1000 },
    );
    const standing = new LeaderStanding(registration, catalog, log);
    kv.setStanding(standing);
    const node = new StorageNode(options.id, address, engine, catalog, server, registration, maintainer, snapshots, log, migrations, replicator, members, standing);
    stats = () => ({
      ...node.stats(),
      opsPerSec: served.rate(),
      latency: latency.snapshot(),
      following: applier.lagByLeader(),
      imported: structuredClone(migrations.imported),
      repaired: { ...repair.counts },
    });
    sizes = () => node.partitionSizes();
    maintainer.start();
    migrations.start();
    log.info('storage node ready', { address, dataDir: options.dataDir });
    return node;
  }

  /** Partitions, keys and bytes this node holds, per namespace. */
  stats(): StorageStats {
    const out: StorageStats = { id: this.id, partitions: 0, keys: 0, bytes: 0, namespaces: {} };
    for (const name of this.catalog.names()) {
      const table = this.catalog.find(name);
      if (!table) continue;
      const mine = table.partitionsOf(this.id);
      const ns: NamespaceStats = { partitions: mine.length, keys: 0, bytes: 0 };
      for (const p of mine) {
        const c = this.engine.countersFor(
          locationOf(table, p),
        );
        ns.keys += c.keys;
        ns.bytes += c.bytes;
      }
      if (table.copies > 1) {
        const followed = table.partitionsFollowedBy(this.id);
        ns.followed = followed.length;
        ns.followerKeys = 0;
        ns.followerBytes = 0;
        for (const p of followed) {
          const c = this.engine.countersFor(locationOf(table, p));
          ns.followerKeys += c.keys;
          ns.followerBytes += c.bytes;
        }
        if (table.scheme === 'hash') ns.stray = this.engine.hashPartitionsWithKeys(name).filter((p) => !table.holds(p, this.id)).length;
      }
      out.namespaces[name] = ns;
      out.partitions += ns.partitions;
      out.keys += ns.keys;
      out.bytes += ns.bytes;
    }
    return out;
  }

  /** Keys and bytes of every partition this node owns, by namespace: `[partition, keys, bytes][]` (to plan moves). */
  partitionSizes(): Record<string, [number, number, number][]> {
    const out: Record<string, [number, number, number][]> = {};
    for (const name of this.catalog.names()) {
      const table = this.catalog.find(name);
      if (!table) continue;
      out[name] = table.partitionsOf(this.id).map((p) => {
        const c = this.engine.countersFor(locationOf(table, p));
        return [p, c.keys, c.bytes];
      });
    }
    return out;
  }

  /**
   * Says in membership that this node is stopping: it serves on, but controllers and drivers give it no new lead,
   * copy or move (they take `ready` nodes only) while it hands its leads off before {@link stop}.
   */
  async announceStopping(): Promise<void> {
    await this.registration.update({ state: 'stopping' });
  }

  /** Leaves the cluster cleanly: announce, stop serving, close files. */
  async stop(): Promise<void> {
    this.maintainer.stop();
    this.migrations.close();
    this.standing.close();
    await this.registration.leave().catch((err: unknown) => this.log.warn('leave failed', { error: String(err) }));
    await this.server.close();
    this.replicator.close();
    await this.members.close();
    this.snapshots.close();
    await this.catalog.close();
    await this.engine.close();
  }
}
