/**
 * The embedded coordinator as a network service: a {@link MemoryStore} served over shardflow's wire protocol.
 * One process on one host, not fault tolerant (run etcd for that); clients are {@link RemoteCoordinator}s.
 *
 * Methods (params are objects; every field is validated, a bad one fails with `InvalidArgumentError` and only that
 * call fails):
 *
 * | method                | params                                        | result                         |
 * | --------------------- | --------------------------------------------- | ------------------------------ |
 * | `coord.get`           | `{ key }`                                     | `Entry` or `null`              |
 * | `coord.list`          | `{ prefix }`                                  | `Entry[]` in key order         |
 * | `coord.put`           | `{ key, value, leaseId? }`                    | `{ revision }`                 |
 * | `coord.cas`           | `{ key, expectedRevision, value, leaseId? }`  | `CasResult`                    |
 * | `coord.delete`        | `{ key }`                                     | `{ deleted }`                  |
 * | `coord.cad`           | `{ key, expectedRevision }`                   | `{ deleted }`                  |
 * | `coord.watch`         | `{ watchId, prefix, fromRevision?, storeId? }`| `{ revision, storeId }`        |
 * | `coord.unwatch`       | `{ watchId }`                                 | `{ closed }`                   |
 * | `coord.lease.grant`   | `{ ttlMs }`                                   | `{ id, ttlMs }`                |
 * | `coord.lease.keepalive` | `{ id }`                                    | `{ found }`                    |
 * | `coord.lease.revoke`  | `{ id }`                                      | `{ found }`                    |
 *
 * A watch's events are pushed to the connection that made it, one `WatchEvent` per push on topic
 * `coord.watch.<watchId>` (the client picks the id, so it can listen before asking). The `coord.watch` answer's
 * `revision` is the one the watch is complete up to; replayed events arrive before it. A client resuming a watch
 * passes the `storeId` it got before: if the store is another one now (a memory-only server restarted), revisions
 * do not compare and the call fails with `InvalidArgumentError`. Watches end with their
 * connection; leases do not (they expire unless a reconnected client keeps them alive).
 *
 * @example
 * ```ts
 * const server = new EmbeddedCoordinatorServer({ secret, dataFile: '/var/lib/shardflow/coordinator.json' });
 * const { port } = await server.listen(2380, '0.0.0.0');
 * // ... later
 * await server.close();
 * ```
 */
import { InvalidArgumentError, UnknownMethodError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { RpcServer, type Connection } from '../wire/index.js';
import { MemoryStore, type MemoryStoreOptions } from './memory-store.js';

export interface EmbeddedCoordinatorServerOptions {
  /** The cluster secret clients must prove they know. */
  secret: Uint8Array;
  /** File keeping keys and revision across restarts (leases are not kept); none: memory only. */
  dataFile?: string;
  /** Events kept for watches that resume from an older revision (default 10 000). */
  historyLimit?: number;
  logger?: Logger;
}

/** Most watches one connection may hold: a bound on what one client can make the server keep. */
const MAX_WATCHES_PER_CONNECTION = 10_000;
const MAX_ID_LENGTH = 128;

/** Prefix of the push topics that carry a watch's events. */
export const WATCH_TOPIC_PREFIX = 'coord.watch.';

export class EmbeddedCoordinatorServer {
  private readonly log: Logger;
  private readonly rpc: RpcServer;
  private storeValue: MemoryStore | undefined;
  private readonly watches = new Map<Connection, Map<string, () => void>>();

  constructor(private readonly options: EmbeddedCoordinatorServerOptions) {
    this.log = options.logger ?? createLogger('coordinator');
    this.rpc = new RpcServer({
      secret: options.secret,
      logger: this.log,
      handler: (method, params, connection) => this.handle(method, params, connection),
    });
  }

  /** The state machine being served (for in-process use and tests). Only after {@link listen}. */
  get store(): MemoryStore {
    if (!this.storeValue) throw new Error('EmbeddedCoordinatorServer: listen() first');
    return this.storeValue;
  }

  /**
   * Loads the data file (if any), then listens; port 0 picks a free port. Resolves with the bound address. May be
   * called again after it failed (say the port was taken); the store is loaded once.
   */
  async listen(port = 0, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    if (!this.storeValue) {
      const storeOptions: MemoryStoreOptions = { logger: this.log };
      if (this.options.dataFile !== undefined) storeOptions.path = this.options.dataFile;
      if (this.options.historyLimit !== undefined) storeOptions.historyLimit = this.options.historyLimit;
      this.storeValue = await MemoryStore.open(storeOptions);
    }
    const address = await this.rpc.listen(port, host);
    this.log.info('coordinator listening', { ...address, dataFile: this.options.dataFile, revision: this.store.revision });
    return address;
  }

  /** Closes every connection, stops accepting, and waits for the last save. */
  async close(): Promise<void> {
    await this.rpc.close();
    for (const conn of this.watches.values()) for (const stop of conn.values()) stop();
    this.watches.clear();
    await this.storeValue?.close();
  }

  private async handle(method: string, raw: unknown, connection: Connection): Promise<unknown> {
    const p = params(raw);
    const store = this.store;
    switch (method) {
      case 'coord.get':
        return store.get(str(p, 'key')) ?? null;
      case 'coord.list':
        return store.list(str(p, 'prefix'));
      case 'coord.put':
        return { revision: await store.put(str(p, 'key'), str(p, 'value'), leaseOf(p)) };
      case 'coord.cas':
        return store.compareAndSet(str(p, 'key'), num(p, 'expectedRevision'), str(p, 'value'), leaseOf(p));
      case 'coord.delete':
        return { deleted: await store.delete(str(p, 'key')) };
      case 'coord.cad':
        return { deleted: await store.compareAndDelete(str(p, 'key'), num(p, 'expectedRevision')) };
      case 'coord.watch':
        return this.watch(connection, id(p, 'watchId'), str(p, 'prefix'), optNum(p, 'fromRevision'), optId(p, 'storeId'));
      case 'coord.unwatch': {
        const watchId = id(p, 'watchId');
        const stop = this.watches.get(connection)?.get(watchId);
        stop?.();
        return { closed: stop !== undefined };
      }
      case 'coord.lease.grant':
        return store.grantLease(num(p, 'ttlMs'));
      case 'coord.lease.keepalive':
        return { found: store.keepAlive(id(p, 'id')) };
      case 'coord.lease.revoke':
        return { found: await store.revokeLease(id(p, 'id')) };
      default:
        throw new UnknownMethodError(`the coordinator has no method ${method}`);
    }
  }

  private watch(
    connection: Connection,
    watchId: string,
    prefix: string,
    fromRevision: number | undefined,
    storeId: string | undefined,
  ): { revision: number; storeId: string } {
    if (storeId !== undefined && storeId !== this.store.id) {
      throw new InvalidArgumentError('the coordinator store was replaced: revisions from before do not apply', {
        details: { storeId, current: this.store.id },
      });
    }
    let mine = this.watches.get(connection);
    if (!mine) {
      mine = new Map();
      this.watches.set(connection, mine);
      const owned = mine;
      // A client that goes away takes its watches with it; it re-subscribes from its last revision on reconnect.
      connection.once('close', () => {
        for (const stop of owned.values()) stop();
        this.watches.delete(connection);
      });
    }
    if (mine.has(watchId)) throw new InvalidArgumentError(`watch ${watchId} already exists on this connection`);
    if (mine.size >= MAX_WATCHES_PER_CONNECTION) {
      throw new InvalidArgumentError(`a connection may hold at most ${MAX_WATCHES_PER_CONNECTION} watches`);
    }
    const topic = WATCH_TOPIC_PREFIX + watchId;
    const { revision, close } = this.store.watch(prefix, (event) => connection.push(topic, event), fromRevision);
    const owned = mine;
    owned.set(watchId, () => {
      close();
      owned.delete(watchId);
    });
    return { revision, storeId: this.store.id };
  }
}

type Params = Record<string, unknown>;

function params(raw: unknown): Params {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError('params must be an object');
  }
  return raw as Params;
}

function str(p: Params, name: string): string {
  const v = p[name];
  if (typeof v !== 'string') throw new InvalidArgumentError(`${name} must be a string`);
  return v;
}

function num(p: Params, name: string): number {
  const v = p[name];
  if (typeof v !== 'number') throw new InvalidArgumentError(`${name} must be a number`);
  return v;
}

function optNum(p: Params, name: string): number | undefined {
  return p[name] === undefined || p[name] === null ? undefined : num(p, name);
}

function id(p: Params, name: string): string {
  const v = str(p, name);
  if (v.length === 0 || v.length > MAX_ID_LENGTH) {
    throw new InvalidArgumentError(`${name} must be 1 to ${MAX_ID_LENGTH} characters`);
  }
  return v;
}

function optId(p: Params, name: string): string | undefined {
  return p[name] === undefined || p[name] === null ? undefined : id(p, name);
}

function leaseOf(p: Params): string | undefined {
  return optId(p, 'leaseId');
}
