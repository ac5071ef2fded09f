/**
 * A {@link Coordinator} that talks to an {@link EmbeddedCoordinatorServer} over the wire protocol.
 *
 * - One connection (a reconnecting {@link Peer}); a call that cannot reach the server fails with a retryable
 *   {@link CoordinatorError}. Errors the server raises on purpose (`InvalidArgumentError`, ...) come through as-is.
 * - Leases keep themselves alive every ttl/3 (see {@link RemoteLease}).
 * - Watches survive reconnects: after a new connection each re-subscribes from its last seen revision + 1, and
 *   events at or below that revision are dropped, so none is lost or repeated. While any watch is open, a lost
 *   connection is re-opened in the background (backing off up to 1 s).
 *
 * @example
 * ```ts
 * const coordinator = new RemoteCoordinator({ host: '127.0.0.1', port: 2380, secret });
 * const lease = await coordinator.grantLease(1000);
 * await coordinator.put('/shardflow/members/n1', '{}', { lease });
 * await coordinator.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import {
  ConnectionError,
  CoordinatorError,
  InvalidArgumentError,
  ProtocolError,
  ShardflowError,
  TimeoutError,
} from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { Peer, type Connection } from '../wire/index.js';
import type { CasResult, Coordinator, Entry, Lease, Leadership, Watch, WatchEvent } from './coordinator.js';
import { campaign, leader } from './election.js';
import { WATCH_TOPIC_PREFIX } from './embedded-server.js';
import { RemoteLease, type LeaseTransport } from './remote-lease.js';
import { checkKey, checkPrefix, checkRevision, checkTtl, checkValue } from './validate.js';

export interface RemoteCoordinatorOptions {
  host: string;
  port: number;
  /** The cluster secret. */
  secret: Uint8Array;
  /** Name shown in the server's logs. */
  name?: string;
  /** Deadline of one call (default 5 s). */
  callTimeoutMs?: number;
  /** Deadline of connect plus handshake (default 2 s). */
  connectTimeoutMs?: number;
  logger?: Logger;
}

interface RemoteWatch {
  readonly id: string;
  readonly prefix: string;
  readonly listener: (event: WatchEvent) => void;
  readonly onError: ((error: Error) => void) | undefined;
  /** Newest revision delivered (or known to have nothing for us); undefined until the first answer or event. */
  lastSeen: number | undefined;
  /** The store the revisions belong to (from the first subscription). */
  storeId: string | undefined;
  /** The connection the server holds this watch on. */
  connection: Connection | undefined;
  stopPush: (() => void) | undefined;
  closed: boolean;
}

export class RemoteCoordinator implements Coordinator, LeaseTransport {
  readonly log: Logger;
  private readonly peer: Peer;
  private readonly address: string;
  private readonly watches = new Map<string, RemoteWatch>();
  private readonly leases = new Set<RemoteLease>();
  private readonly watchIdPrefix = randomBytes(4).toString('hex');
  private nextWatchId = 1;
  private reconnecting = false;
  private closed = false;
  /** The newest connection the peer opened. */
  private connection: Connection | undefined;

  constructor(options: RemoteCoordinatorOptions) {
    this.log = options.logger ?? createLogger('coordinator-client');
    this.address = `${options.host}:${options.port}`;
    this.peer = new Peer({
      host: options.host,
      port: options.port,
      secret: options.secret,
      name: options.name ?? `coordinator-client:${process.pid}`,
      callTimeoutMs: options.callTimeoutMs ?? 5000,
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      logger: this.log,
    });
    this.peer.onConnect((connection) => this.onConnection(connection));
  }

  async get(key: string): Promise<Entry | undefined> {
    checkKey(key);
    return (await this.call<Entry | null>('coord.get', { key })) ?? undefined;
  }

  async list(prefix: string): Promise<Entry[]> {
    checkPrefix(prefix);
    return this.call<Entry[]>('coord.list', { prefix });
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<number> {
    checkKey(key);
    checkValue(value);
    return (await this.call<{ revision: number }>('coord.put', withLease({ key, value }, options.lease))).revision;
  }

  async compareAndSet(
    key: string,
    expectedRevision: number,
    value: string,
    options: { lease?: Lease } = {},
  ): Promise<CasResult> {
    checkKey(key);
    checkRevision(expectedRevision, 'expectedRevision');
    checkValue(value);
    return this.call<CasResult>('coord.cas', withLease({ key, expectedRevision, value }, options.lease));
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return (await this.call<{ deleted: boolean }>('coord.delete', { key })).deleted;
  }

  async compareAndDelete(key: string, expectedRevision: number): Promise<boolean> {
    checkKey(key);
    checkRevision(expectedRevision, 'expectedRevision');
    return (await this.call<{ deleted: boolean }>('coord.cad', { key, expectedRevision })).deleted;
  }

  async watch(
    prefix: string,
    listener: (event: WatchEvent) => void,
    options: { fromRevision?: number; onError?: (error: Error) => void } = {},
  ): Promise<Watch> {
    checkPrefix(prefix);
    const from = options.fromRevision;
    if (from !== undefined && checkRevision(from, 'fromRevision') === 0) {
      throw new InvalidArgumentError('fromRevision must be at least 1');
    }
    this.checkOpen();
    const w: RemoteWatch = {
      id: `${this.watchIdPrefix}-${this.nextWatchId++}`,
      prefix,
      listener,
      onError: options.onError,
      lastSeen: from === undefined ? undefined : from - 1,
      storeId: undefined,
      connection: undefined,
      stopPush: undefined,
      closed: false,
    };
    const connection = await this.wrap(this.peer.get());
    try {
      await this.wrap(this.subscribe(w, connection, from));
    } catch (err) {
      w.stopPush?.();
      throw err;
    }
    this.watches.set(w.id, w);
    return { close: () => this.closeWatch(w) };
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    checkTtl(ttlMs);
    const sentAt = Date.now();
    const granted = await this.call<{ id: string; ttlMs: number }>('coord.lease.grant', { ttlMs });
    const lease = new RemoteLease(this, granted.id, granted.ttlMs, sentAt, () => this.leases.delete(lease));
    this.leases.add(lease);
    return lease;
  }

  campaign(election: string, candidate: string, lease: Lease, options?: { signal?: AbortSignal }): Promise<Leadership> {
    return campaign(this, election, candidate, lease, options);
  }

  leader(election: string): Promise<string | undefined> {
    return leader(this, election);
  }

  /** Stops keep-alives (the leases expire on the server in their own time), ends watches, closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.leases) lease.stop();
    this.leases.clear();
    for (const w of this.watches.values()) {
      w.closed = true;
      w.stopPush?.();
    }
    this.watches.clear();
    this.peer.close();
  }

  /** @internal One call with network failures turned into {@link CoordinatorError}. */
  async call<T>(method: string, params: unknown, timeoutMs?: number): Promise<T> {
    this.checkOpen();
    return this.wrap(this.peer.call<T>(method, params, timeoutMs === undefined ? undefined : { timeoutMs }));
  }

  /** @internal */
  resetConnection(reason: string): void {
    if (this.connection && !this.connection.isClosed) this.connection.close(reason);
  }

  private checkOpen(): void {
    if (this.closed) throw new CoordinatorError('the coordinator client is closed');
  }

  private async wrap<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (err) {
      if (isNetworkFailure(err)) {
        throw new CoordinatorError(`coordinator ${this.address} unreachable: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }

  private onConnection(connection: Connection): void {
    this.connection = connection;
    connection.once('close', () => {
      if (!this.closed && this.watches.size > 0) void this.reconnect();
    });
    for (const w of this.watches.values()) {
      this.subscribe(w, connection, (w.lastSeen ?? 0) + 1).catch((err: unknown) => this.resubscribeFailed(w, err));
    }
  }

  /** Registers `w` on `connection`; replayed events arrive (and are delivered) before this resolves. */
  private async subscribe(w: RemoteWatch, connection: Connection, fromRevision: number | undefined): Promise<void> {
    if (w.connection === connection) return;
    w.connection = connection;
    w.stopPush?.();
    w.stopPush = connection.onPush(WATCH_TOPIC_PREFIX + w.id, (payload) => this.deliver(w, payload));
    const params: Record<string, unknown> = { watchId: w.id, prefix: w.prefix };
    if (fromRevision !== undefined) params.fromRevision = fromRevision;
    if (w.storeId !== undefined) params.storeId = w.storeId;
    const answer = await connection.call<{ revision: number; storeId: string }>('coord.watch', params);
    // Nothing under the prefix changed up to `revision`, so a re-subscription may start after it.
    w.lastSeen = Math.max(w.lastSeen ?? 0, answer.revision);
    w.storeId = answer.storeId;
  }

  private resubscribeFailed(w: RemoteWatch, err: unknown): void {
    if (w.closed || w.connection?.isClosed) return; // The next connection tries again.
    if (err instanceof InvalidArgumentError) {
      // The server no longer has the events since our last one (compacted, or it is a new store): this watch
      // cannot go on faithfully.
      this.log.warn('watch cannot resume', { prefix: w.prefix, lastSeen: w.lastSeen, error: err.message });
      this.watches.delete(w.id);
      w.closed = true;
      w.stopPush?.();
      w.onError?.(err);
      return;
    }
    // The connection is up but the re-subscription failed (timed out?): start over on a fresh connection.
    this.log.warn('watch re-subscription failed; reconnecting', { prefix: w.prefix, error: String(err) });
    w.connection?.close('watch re-subscription failed');
  }

  private deliver(w: RemoteWatch, payload: unknown): void {
    if (w.closed || !isWatchEvent(payload)) return;
    if (w.lastSeen !== undefined && payload.revision <= w.lastSeen) return; // Already delivered before a reconnect.
    w.lastSeen = payload.revision;
    try {
      w.listener(payload);
    } catch (err) {
      this.log.error('watch listener failed', { prefix: w.prefix, error: err });
    }
  }

  private async closeWatch(w: RemoteWatch): Promise<void> {
    if (w.closed) return;
    w.closed = true;
    w.stopPush?.();
    this.watches.delete(w.id);
    const connection = w.connection;
    if (connection && !connection.isClosed) {
      await connection.call('coord.unwatch', { watchId: w.id }).catch(() => {}); // Gone with the connection anyway.
    }
  }

  /** Re-opens the connection while watches wait for it; the new connection re-subscribes them (onConnection). */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let delay = 50;
    try {
      while (!this.closed && this.watches.size > 0) {
        try {
          await this.peer.get();
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, delay).unref());
          delay = Math.min(delay * 2, 1000);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }
}

function withLease<T extends object>(params: T, lease: Lease | undefined): T & { leaseId?: string } {
  return lease ? { ...params, leaseId: lease.id } : params;
}

function isNetworkFailure(err: unknown): boolean {
  if (!(err instanceof ShardflowError)) return true;
  return err instanceof ConnectionError || err instanceof TimeoutError || err instanceof ProtocolError;
}

function isWatchEvent(value: unknown): value is WatchEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<WatchEvent>;
  return (v.type === 'put' || v.type === 'delete') && typeof v.key === 'string' && typeof v.revision === 'number';
}
