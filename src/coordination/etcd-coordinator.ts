/**
 * The {@link Coordinator} on etcd (v3 API, through the `etcd3` package). An etcd cluster of three members has no
 * single point of failure, unlike the embedded coordinator.
 *
 * Every key is stored as `prefix + key` and handed back without the prefix, so many clusters (and many tests) can
 * share one etcd. Revisions are etcd's own (`mod_revision`); leases are etcd leases, kept alive by `etcd3` every
 * ttl/3, with TTLs rounded up to whole seconds (minimum 1). Several keys of one expired lease are deleted in one
 * etcd revision, so their delete events share that revision.
 *
 * @example
 * ```ts
 * const coordinator = new EtcdCoordinator({ endpoints: ['http://10.0.0.1:2379'], prefix: '/prod' });
 * await coordinator.put('/shardflow/namespaces/users', '{"partitions":64}');
 * ```
 */
import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type Lease as EtcdLease, type Watcher } from 'etcd3';
import { CoordinatorError, InvalidArgumentError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import type { CasResult, Coordinator, Entry, Lease, Leadership, Watch, WatchEvent } from './coordinator.js';
import { campaign, leader } from './election.js';
import { checkKey, checkPrefix, checkRevision, checkTtl, checkValue } from './validate.js';

export interface EtcdCoordinatorOptions {
  /** Client URLs, e.g. `['http://127.0.0.1:2379']`. */
  endpoints: string[];
  /** Prepended to every key (and stripped from results); isolates clusters sharing one etcd. Default none. */
  prefix?: string;
  /** Deadline of one call (default 5 s). */
  callTimeoutMs?: number;
  logger?: Logger;
}

export class EtcdCoordinator implements Coordinator {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly leases = new Set<EtcdLeaseHandle>();
  private readonly watchers = new Set<Watcher>();
  private readonly callTimeoutMs: number;
  private closed = false;

  constructor(options: EtcdCoordinatorOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new InvalidArgumentError('etcd endpoints must be a non-empty list');
    }
    this.prefix = options.prefix ?? '';
    this.log = options.logger ?? createLogger('coordinator-etcd');
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
    const timeout = this.callTimeoutMs;
    this.client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: timeout,
      // Streams (watch, keep-alive) live on; single calls get a deadline so an unreachable etcd fails them.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    });
  }

  async get(key: string): Promise<Entry | undefined> {
    checkKey(key);
    const res = await this.run('get', () => this.client.get(this.prefix + key).exec());
    const kv = res.kvs[0];
    return kv && this.toEntry(kv);
  }

  async list(prefix: string): Promise<Entry[]> {
    checkPrefix(prefix);
    const res = await this.run('list', () =>
      this.client.getAll().prefix(this.prefix + prefix).sort('Key', 'Ascend').exec(),
    );
    return res.kvs.map((kv) => this.toEntry(kv));
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<number> {
    checkKey(key);
    checkValue(value);
    const res = await this.run('put', () => this.putBuilder(key, value, options.lease).exec());
    return Number(res.header.revision);
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
    const k = this.prefix + key;
    // A missing key has create_revision 0; an existing one never has mod_revision 0.
    const res = await this.run('compare-and-set', () =>
      this.client
        .if(k, expectedRevision === 0 ? 'Create' : 'Mod', '==', expectedRevision)
        .then(this.putBuilder(key, value, options.lease))
        .else(this.client.get(k))
        .commit(),
    );
    if (res.succeeded) return { ok: true, revision: Number(res.header.revision) };
    const current = res.responses[0]?.response_range?.kvs[0];
    return current ? { ok: false, current: this.toEntry(current) } : { ok: false };
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    const res = await this.run('delete', () => this.client.delete().key(this.prefix + key).exec());
    return Number(res.deleted) > 0;
  }

  async compareAndDelete(key: string, expectedRevision: number): Promise<boolean> {
    checkKey(key);
    if (checkRevision(expectedRevision, 'expectedRevision') === 0) return false;
    const k = this.prefix + key;
    const res = await this.run('compare-and-delete', () =>
      this.client.if(k, 'Mod', '==', expectedRevision).then(this.client.delete().key(k)).commit(),
    );
    return res.succeeded;
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
    const builder = this.client.watch().prefix(this.prefix + prefix);
    if (from !== undefined) builder.startRevision(String(from));
    const watcher = builder.watcher();
    let open = true;
    // Listeners go on before the watch connects: replayed events may follow 'connected' in the same tick.
    // etcd3 re-subscribes after a disconnect from the last revision it saw + 1, so events are neither lost nor
    // repeated across reconnects.
    const emit = (type: 'put' | 'delete', kv: IKeyValue) => {
      if (!open) return;
      const event: WatchEvent = { type, key: this.strip(kv.key.toString()), revision: Number(kv.mod_revision) };
      if (type === 'put') event.value = kv.value.toString();
      try {
        listener(event);
      } catch (err) {
        this.log.error('watch listener failed', { prefix, error: err });
      }
    };
    watcher.on('put', (kv) => emit('put', kv));
    watcher.on('delete', (kv) => emit('delete', kv));
    let failStart: ((err: Error) => void) | undefined;
    watcher.on('error', (err) => {
      if (failStart) return failStart(err);
      if (!open) return;
      open = false;
      this.watchers.delete(watcher);
      this.log.warn('etcd watch ended', { prefix, error: err.message });
      options.onError?.(toCoordinatorError('watch', err));
    });
    const started = new Promise<void>((resolve, reject) => {
      failStart = reject;
      watcher.once('connected', () => resolve());
    });
    try {
      // Without a deadline etcd3 would retry forever while etcd is down; a caller wants an answer.
      await withTimeout(started, this.callTimeoutMs, 'watch');
    } catch (err) {
      open = false;
      await watcher.cancel().catch(() => {});
      throw toCoordinatorError('watch', err);
    } finally {
      failStart = undefined;
    }
    this.watchers.add(watcher);
    return {
      close: async () => {
        if (!open) return;
        open = false;
        this.watchers.delete(watcher);
        await watcher.cancel().catch(() => {});
      },
    };
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    const seconds = Math.max(1, Math.ceil(checkTtl(ttlMs) / 1000));
    this.checkOpen();
    const sentAt = performance.now();
    const inner = this.client.lease(seconds, { autoKeepAlive: true });
    const handle = new EtcdLeaseHandle(inner, seconds * 1000, sentAt, () => this.leases.delete(handle));
    try {
      handle.id = await this.run('lease grant', () => inner.grant());
    } catch (err) {
      handle.stop();
      throw err;
    }
    this.leases.add(handle);
    return handle;
  }

  campaign(election: string, candidate: string, lease: Lease, options?: { signal?: AbortSignal }): Promise<Leadership> {
    return campaign(this, election, candidate, lease, options);
  }

  leader(election: string): Promise<string | undefined> {
    return leader(this, election);
  }

  /** Stops keep-alives (leases then expire in etcd on their own), cancels watches, closes the client. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.leases) lease.stop();
    this.leases.clear();
    await Promise.all([...this.watchers].map((w) => w.cancel().catch(() => {})));
    this.watchers.clear();
    this.client.close();
  }

  private putBuilder(key: string, value: string, lease: Lease | undefined) {
    const builder = this.client.put(this.prefix + key).value(value);
    return lease ? builder.lease(lease.id) : builder;
  }

  private toEntry(kv: IKeyValue): Entry {
    const entry: Entry = {
      key: this.strip(kv.key.toString()),
      value: kv.value.toString(),
      revision: Number(kv.mod_revision),
    };
    if (kv.lease && kv.lease !== '0') entry.leaseId = String(kv.lease);
    return entry;
  }

  private strip(key: string): string {
    return key.startsWith(this.prefix) ? key.slice(this.prefix.length) : key;
  }

  private checkOpen(): void {
    if (this.closed) throw new CoordinatorError('the etcd coordinator is closed');
  }

  private async run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    this.checkOpen();
    try {
      return await call();
    } catch (err) {
      throw toCoordinatorError(operation, err);
    }
  }
}

/**
 * An etcd lease behind the {@link Lease} interface. `etcd3` reports a loss only after 2 × TTL without contact;
 * this handle also counts one TTL from the sending of the last acknowledged keep-alive, so a leader stops in time.
 */
class EtcdLeaseHandle implements Lease {
  id = '';
  private state: 'alive' | 'lost' | 'revoked' | 'stopped' = 'alive';
  private lostReason: Error | undefined;
  private readonly listeners: ((reason: Error) => void)[] = [];
  private deadline: NodeJS.Timeout;
  /** When the newest acknowledged keep-alive (or the grant) was sent. */
  private lastAckSent: number;
  /** When each keep-alive of the current stream still unanswered was sent, oldest first. */
  private fired: number[] = [];

  constructor(
    private readonly inner: EtcdLease,
    readonly ttlMs: number,
    grantSentAt: number,
    private readonly onEnd: () => void,
  ) {
    this.lastAckSent = grantSentAt;
    inner.on('lost', (err) => this.lose(toCoordinatorError('lease keep-alive', err)));
    // etcd3 writes keep-alives on one stream, every TTL/3 whether or not the last was answered; etcd answers them
    // in order, so each answer is for the oldest one unanswered. A new stream starts afresh.
    inner.on('keepaliveEstablished', () => (this.fired = []));
    inner.on('keepaliveFired', () => this.fired.push(performance.now()));
    inner.on('keepaliveSucceeded', () => {
      const sent = this.fired.shift();
      if (sent !== undefined) this.lastAckSent = Math.max(this.lastAckSent, sent);
      clearTimeout(this.deadline);
      this.deadline = this.arm();
    });
    this.deadline = this.arm();
  }

  get heldUntil(): number {
    return this.state === 'alive' ? this.lastAckSent + this.ttlMs : 0;
  }

  async revoke(): Promise<void> {
    if (this.state !== 'alive') return;
    this.end('revoked');
    try {
      await this.inner.revoke();
    } catch (err) {
      throw toCoordinatorError('lease revoke', err);
    }
  }

  onLost(listener: (reason: Error) => void): void {
    if (this.lostReason) {
      const reason = this.lostReason;
      queueMicrotask(() => listener(reason));
    } else if (this.state === 'alive') {
      this.listeners.push(listener);
    }
  }

  stop(): void {
    if (this.state !== 'alive') return;
    this.end('stopped');
    this.inner.release();
  }

  private arm(): NodeJS.Timeout {
    const timer = setTimeout(
      () => this.lose(new CoordinatorError(`lease ${this.id} expired: no keep-alive reached etcd for ${this.ttlMs} ms`)),
      Math.max(0, this.lastAckSent + this.ttlMs - performance.now()),
    );
    timer.unref();
    return timer;
  }

  private lose(reason: Error): void {
    if (this.state !== 'alive') return;
    this.end('lost');
    this.inner.release();
    this.lostReason = reason;
    for (const l of this.listeners.splice(0)) l(reason);
  }

  private end(state: 'lost' | 'revoked' | 'stopped'): void {
    this.state = state;
    clearTimeout(this.deadline);
    this.onEnd();
  }
}

/** Maps an etcd failure to ours: an unknown lease is a bad argument, a compacted revision too, the rest retryable. */
function toCoordinatorError(operation: string, err: unknown): Error {
  if (err instanceof CoordinatorError || err instanceof InvalidArgumentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof EtcdLeaseInvalidError || message.includes('requested lease not found')) {
    return new InvalidArgumentError(`etcd ${operation}: lease not found (expired or revoked)`, { cause: err });
  }
  if (message.includes('compacted')) {
    return new InvalidArgumentError(`etcd ${operation}: the revision has been compacted`, { cause: err });
  }
  return new CoordinatorError(`etcd ${operation} failed: ${message}`, { cause: err });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CoordinatorError(`etcd ${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
