/**
 * The smart client: routes every key to the node that owns its partition, from a cached routing table, and follows
 * the cluster as it changes — a MOVED answer refreshes the table and the request goes again; a node that is down is
 * waited for until the deadline. Requests to one node share one connection and are pipelined.
 */
import { Catalog, checkKey, checkValue, MAX_BATCH_OPS, type NamespaceOptions, type RoutingTable } from '../keyspace/index.js';
import type { Coordinator } from '../coordination/coordinator.js';
import {
  ConnectionError,
  InvalidArgumentError,
  MovedError,
  NamespaceExistsError,
  NotEnoughReplicasError,
  NotLeaderError,
  UnavailableError,
  UnknownNamespaceError,
} from '../errors/index.js';
import { initialAssignment } from '../partitioning/index.js';
import { PeerPool } from './peer-pool.js';
import { ServiceCaller, type ServiceCallOptions } from './service-caller.js';
import { MemberView } from './member-view.js';
import { scanNamespace, type ScanOptions, type ScanEntry } from './scan.js';

export interface ClientOptions {
  coordinator: Coordinator;
  secret: Uint8Array;
  /** Deadline for one operation, retries included (default 10 s). */
  timeoutMs?: number;
  /** Whether `close()` also closes the coordinator (default true). */
  ownsCoordinator?: boolean;
  name?: string;
}

export interface Entry<V = unknown> {
  value: V;
  version: number;
}

export type BatchOp = { op: 'put'; key: string; value: unknown } | { op: 'del'; key: string };

/** Where a request goes: one node, one routing table. */
/** Where a read may be answered from (see {@link ShardflowClient.get}). */
export interface ReadOptions {
  /** `leader` (default): the partition's leader; `follower`: an in-sync follower if one is fresh enough. */
  from?: 'leader' | 'follower';
  /** Follower reads: the most the copy may lag the leader, in ms (default 1000, at most 60000). */
  maxStalenessMs?: number;
}

const FALLBACK = Symbol('fallback');
/** How long a request waits for its partition's owner to be a member before it looks at the routing table again. */
const OWNER_WAIT_MS = 250;

interface Routed {
  table: RoutingTable;
  owner: string;
}

/**
 * A connection to a shardflow cluster.
 *
 * @example
 * ```ts
 * import { connect } from 'shardflow';
 * const client = await connect({ dir: '.shardflow' });
 * await client.createNamespace('users', { scheme: 'hash' });
 * await client.put('users', 'u1', { name: 'Ada' });
 * console.log(await client.get('users', 'u1')); // { name: 'Ada' }
 * await client.close();
 * ```
 */
/** Copies of each partition a new hash namespace keeps by default, on a cluster with at least that many storage nodes. */
export const DEFAULT_COPIES = 3;

export class ShardflowClient {
  private readonly pool: PeerPool;
  private readonly services: ServiceCaller;
  private readonly timeoutMs: number;

  /** @internal use {@link connect} */
  constructor(
    private readonly options: ClientOptions,
    readonly catalog: Catalog,
    readonly members: MemberView,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.pool = new PeerPool(members, options.secret, options.name ?? 'client');
    this.services = new ServiceCaller(members, this.pool, { timeoutMs: this.timeoutMs });
  }

  /** The coordinator this client reads membership and routing from. */
  get coordinator(): Coordinator {
    return this.options.coordinator;
  }

  /**
   * Calls a service on one of its live compute instances, chosen by `strategy` (default round-robin), or by `key` so
   * the same key reaches the same instance while membership is stable. An idempotent call is retried on another
   * instance when one fails; any call is retried when it could not be sent at all.
   *
   * @example
   * ```ts
   * const sum = await client.call('add', { a: 1, b: 2 }, { strategy: 'power-of-two', idempotent: true });
   * ```
   */
  call<R = unknown>(service: string, payload?: unknown, options: ServiceCallOptions = {}): Promise<R> {
    return this.services.call<R>(service, payload, options);
  }

  /** Every service offered by a ready compute node, with its instances. */
  serviceInstances(): Map<string, string[]> {
    return this.services.instances();
  }

  /**
   * Creates a namespace placed over the storage nodes now ready (idempotent for the same options; an existing
   * namespace with another scheme, or another `copies` or `slotCount` than given, is a {@link NamespaceExistsError}).
   * It keeps {@link DEFAULT_COPIES} copies of each partition (hash slot or key range) when at least that many storage
   * nodes are ready, else one (development); pass `copies` to choose.
   */
  async createNamespace(name: string, options: NamespaceOptions = { scheme: 'hash' }): Promise<RoutingTable> {
    // As the coordinator has it now: a cached table may be out of date, or missing.
    const existing = await this.catalog.refresh(name);
    if (existing) refuseOtherOptions(existing, options);
    const nodes = this.members.ready('storage').map((m) => ({ id: m.id, capacity: m.capacity }));
    if (nodes.length === 0) throw new UnavailableError('no storage node is ready to hold the namespace');
    const copies = options.copies ?? (nodes.length >= DEFAULT_COPIES ? DEFAULT_COPIES : undefined);
    if (copies !== undefined && copies > nodes.length && !this.catalog.find(name)) {
      throw new InvalidArgumentError(`${copies} copies need ${copies} storage nodes; ${nodes.length} are ready`, {
        details: { copies, ready: nodes.length },
      });
    }
    const ids = nodes.map((n) => n.id);
    return this.catalog.create(name, { ...options, copies }, (partitions) => initialAssignment(partitions, nodes).assignment, ids);
  }

  /** Names of every namespace. */
  namespaces(): string[] {
    return this.catalog.names();
  }

  /**
   * The value at `key`, or undefined. Reads go to the partition's leader; with `{ from: 'follower' }` an in-sync
   * follower may answer instead, if it heard from the leader within `maxStalenessMs` (default 1000) — so the value
   * is at most that much older than the newest acknowledged write. Where no follower can, the leader answers.
   *
   * @example
   * ```ts
   * const v = await client.get('users', 'u1', { from: 'follower', maxStalenessMs: 500 });
   * ```
   */
  async get<V = unknown>(namespace: string, key: string, options: ReadOptions = {}): Promise<V | undefined> {
    return (await this.getEntry<V>(namespace, key, options))?.value;
  }

  /** The value and its version (for conditional writes), or undefined. See {@link get} for `options`. */
  async getEntry<V = unknown>(namespace: string, key: string, options: ReadOptions = {}): Promise<Entry<V> | undefined> {
    if (options.from === 'follower') {
      const r = await this.readFollower<Entry<V> | null>(namespace, key, options.maxStalenessMs);
      if (r !== FALLBACK) return r ?? undefined;
    }
    const r = await this.send<Entry<V> | null>(namespace, key, 'kv.get', { key }, true);
    return r ?? undefined;
  }

  /** Asks one in-sync follower of the key's partition (at random); FALLBACK when none is there or fresh enough. */
  private async readFollower<T>(namespace: string, key: string, maxStalenessMs: number | undefined): Promise<T | typeof FALLBACK> {
    const table = await this.tableOf(namespace);
    const followers = table.followersOf(table.place(key).partition);
    if (followers.length === 0) return FALLBACK;
    const follower = followers[Math.floor(Math.random() * followers.length)]!;
    try {
      const peer = await this.pool.get(follower, Date.now() + Math.min(this.timeoutMs, 1000));
      const params: Record<string, unknown> = { ns: namespace, key, epoch: table.epoch, replica: true };
      if (maxStalenessMs !== undefined) params.maxStalenessMs = maxStalenessMs;
      return await peer.call<T>('kv.get', params, { timeoutMs: Math.min(this.timeoutMs, 1000) });
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      return FALLBACK;
    }
  }

  /**
   * Stores `value`; resolves with its new version once it is durable. With `ifVersion`, writes only if the key is at
   * that version (0: only if absent), else rejects with `VersionConflictError`.
   */
  async put(namespace: string, key: string, value: unknown, options: { ifVersion?: number } = {}): Promise<number> {
    const params: Record<string, unknown> =
      options.ifVersion === undefined ? { key, value } : { key, value, ifVersion: options.ifVersion };
    const r = await this.send<{ version: number }>(namespace, key, 'kv.put', params, options.ifVersion === undefined);
    return r.version;
  }

  /** Deletes `key`; resolves with whether it existed. */
  async delete(namespace: string, key: string, options: { ifVersion?: number } = {}): Promise<boolean> {
    const params: Record<string, unknown> = options.ifVersion === undefined ? { key } : { key, ifVersion: options.ifVersion };
    const r = await this.send<{ deleted: boolean }>(namespace, key, 'kv.del', params, options.ifVersion === undefined);
    return r.deleted;
  }

  /**
   * Applies puts and deletes. Operations are grouped by owning node; each group is atomic (all or nothing) on its
   * node. Resolves with the versions, in the order of `ops`.
   */
  async batch(namespace: string, ops: BatchOp[]): Promise<number[]> {
    if (!Array.isArray(ops) || ops.length > MAX_BATCH_OPS) {
      throw new InvalidArgumentError(`ops must be an array of at most ${MAX_BATCH_OPS} operations`);
    }
    // Check every op before sending any: groups go to different nodes, so a bad op found by one node could not
    // stop another group from being applied.
    for (const op of ops) {
      checkKey(op?.key);
      if (op.op === 'put') checkValue(op.value);
      else if (op.op !== 'del') throw new InvalidArgumentError(`batch op must be 'put' or 'del', not ${JSON.stringify((op as { op: unknown }).op)}`);
    }
    if (ops.length === 0) return [];
    const versions = new Array<number>(ops.length);
    let pending = ops.map((op, i) => ({ op, i }));
    const deadline = Date.now() + this.timeoutMs;
    while (pending.length > 0) {
      const table = await this.tableOf(namespace);
      const groups = new Map<string, typeof pending>();
      for (const item of pending) {
        const owner = table.ownerOf(table.place(item.op.key).partition) ?? '';
        let g = groups.get(owner);
        if (!g) groups.set(owner, (g = []));
        g.push(item);
      }
      const retry: typeof pending = [];
      await Promise.all(
        [...groups].map(async ([owner, items]) => {
          try {
            const peer = await this.pool.get(owner, deadline);
            const r = await peer.call<{ versions: number[] }>(
              'kv.batch',
              { ns: namespace, epoch: table.epoch, ops: items.map((x) => x.op) },
              { timeoutMs: Math.max(1, deadline - Date.now()) },
            );
            items.forEach((x, j) => (versions[x.i] = r.versions[j]!));
          } catch (err) {
            if (!this.shouldRetry(err, deadline, true)) throw err;
            await this.afterFailure(namespace, err);
            retry.push(...items);
          }
        }),
      );
      pending = retry;
    }
    return versions;
  }

  /**
   * Every entry of a namespace with `start <= key < end`. Range namespaces come in key order; hash namespaces in
   * slot order, keys ordered within a slot.
   */
  scan<V = unknown>(namespace: string, options: ScanOptions = {}): AsyncIterable<ScanEntry<V>> {
    return scanNamespace<V>(
      {
        table: (ns) => this.tableOf(ns),
        call: async (owner, params) => {
          const deadline = Date.now() + this.timeoutMs;
          const peer = await this.pool.get(owner, deadline);
          return peer.call('kv.scan', params, { timeoutMs: this.timeoutMs });
        },
        refresh: async (ns, err) => {
          if (!this.shouldRetry(err, Number.POSITIVE_INFINITY, true)) throw err;
          await this.afterFailure(ns, err);
        },
        openSnapshot: async (owner) => {
          const peer = await this.pool.get(owner, Date.now() + this.timeoutMs);
          return (await peer.call<{ id: string }>('kv.snapshot.open', {}, { timeoutMs: this.timeoutMs })).id;
        },
        closeSnapshot: async (owner, id) => {
          const peer = await this.pool.get(owner, Date.now() + this.timeoutMs);
          await peer.call('kv.snapshot.close', { id }, { timeoutMs: this.timeoutMs });
        },
      },
      namespace,
      options,
    );
  }

  /** Closes connections and watches (and the coordinator client, unless told otherwise). */
  async close(): Promise<void> {
    this.services.close();
    this.pool.close();
    await this.catalog.close();
    await this.members.close();
    if (this.options.ownsCoordinator !== false) await this.options.coordinator.close();
  }

  private async tableOf(namespace: string): Promise<RoutingTable> {
    const t = this.catalog.find(namespace) ?? (await this.catalog.refresh(namespace));
    if (!t) {
      throw new UnknownNamespaceError(`namespace ${JSON.stringify(namespace)} does not exist`, {
        details: { namespace },
      });
    }
    return t;
  }

  /**
   * Sends one keyed request to the key's owner, following redirects until the deadline. `params` is a fresh object
   * from the caller; `ns` and `epoch` are added to it. When the table and a live connection to the owner are at hand
   * (nearly always) the request goes out at once, with no awaits before it.
   */
  private send<T>(namespace: string, key: string, method: string, params: Record<string, unknown>, idempotent: boolean): Promise<T> {
    if (typeof key !== 'string') return Promise.reject(new InvalidArgumentError('key must be a string'));
    const deadline = Date.now() + this.timeoutMs;
    const table = this.catalog.find(namespace);
    const owner = table?.ownerOf(table.place(key).partition);
    const connection = owner === undefined ? undefined : this.pool.live(owner);
    if (!table || !connection) return this.sendSlowly(namespace, key, method, params, idempotent, deadline);
    params.ns = namespace;
    params.epoch = table.epoch;
    return connection.call<T>(method, params, { timeoutMs: this.timeoutMs }).catch(async (err: unknown) => {
      if (!this.shouldRetry(err, deadline, idempotent)) throw err;
      await this.afterFailure(namespace, err);
      return this.sendSlowly<T>(namespace, key, method, params, idempotent, deadline);
    });
  }

  private async sendSlowly<T>(
    namespace: string,
    key: string,
    method: string,
    params: Record<string, unknown>,
    idempotent: boolean,
    deadline: number,
  ): Promise<T> {
    for (;;) {
      const { table, owner } = await this.route(namespace, key);
      let peer;
      try {
        // Not long: while the owner is down its partitions may get a new leader (failover), seen on the next route.
        peer = await this.pool.get(owner, Math.min(deadline, Date.now() + OWNER_WAIT_MS));
        await peer.get(); // connect here, where a failure means nothing was sent
      } catch (err) {
        if (Date.now() >= deadline) throw err;
        await this.catalog.refresh(namespace).catch(() => undefined); // nothing was sent: any request may go again
        continue;
      }
      try {
        params.ns = namespace;
        params.epoch = table.epoch;
        return await peer.call<T>(method, params, { timeoutMs: Math.max(1, deadline - Date.now()) });
      } catch (err) {
        if (!this.shouldRetry(err, deadline, idempotent)) throw err;
        await this.afterFailure(namespace, err);
      }
    }
  }

  private async route(namespace: string, key: string): Promise<Routed> {
    const table = await this.tableOf(namespace);
    const owner = table.ownerOf(table.place(key).partition);
    if (owner === undefined) throw new UnavailableError(`${namespace}: no owner for ${key}`);
    return { table, owner };
  }

  /** A MOVED always goes again; a lost connection or a down node only for idempotent requests, before the deadline. */
  private shouldRetry(err: unknown, deadline: number, idempotent: boolean): boolean {
    if (Date.now() >= deadline) return false;
    // Neither was acted on: any request may go again.
    if (err instanceof MovedError || err instanceof NotLeaderError) return true;
    if (!idempotent) return false;
    return err instanceof ConnectionError || err instanceof UnavailableError || err instanceof NotEnoughReplicasError;
  }

  private async afterFailure(namespace: string, err: unknown): Promise<void> {
    if (err instanceof MovedError) {
      const epoch = typeof err.details.epoch === 'number' ? err.details.epoch : 0;
      const t = await this.catalog.refresh(namespace);
      if (t && t.epoch >= epoch) return;
    }
    // A leader whose lease lapsed may have been replaced: look the leader up again (and give the change a moment).
    if (err instanceof NotLeaderError) await this.catalog.refresh(namespace).catch(() => undefined);
    // A node restarting or a table change in flight: back off briefly, then look again.
    await new Promise((r) => setTimeout(r, 50));
  }

}

/**
 * An existing namespace asked for again with explicit `copies` or `slotCount` it does not have: refused, since saying
 * nothing would leave the caller believing in copies it lacks. (The scheme is checked by the catalog.)
 */
function refuseOtherOptions(existing: RoutingTable, options: NamespaceOptions): void {
  const slotCount = existing.record.slotCount;
  let differs: string | undefined;
  if (options.copies !== undefined && existing.copies !== options.copies) differs = `${existing.copies} copies`;
  else if (options.slotCount !== undefined && slotCount !== options.slotCount) differs = `${slotCount ?? 'no'} slots`;
  else if (options.autoMerge !== undefined && (existing.record.autoMerge !== false) !== options.autoMerge) differs = `autoMerge ${!options.autoMerge}`;
  if (!differs) return;
  throw new NamespaceExistsError(`namespace ${existing.name} exists with ${differs}; its copies, slots and merging are fixed when it is created`, {
    details: { namespace: existing.name, copies: existing.copies, slotCount: slotCount ?? null },
  });
}
