/**
 * Cluster membership on any {@link Coordinator}: each node keeps a record under `/shardflow/members/<id>` attached
 * to its lease; watchers learn who joined, changed, left cleanly, or died.
 *
 * A clean leave writes `state: 'leaving'` and then deletes the record, so a watcher that sees a delete of a member
 * it last knew as `leaving` reports `leave`; any other delete is the lease expiring (the node stopped keeping it
 * alive) and is reported as `death`.
 *
 * Detection bound: a dead node's record goes when its lease expires, TTL after the last keep-alive the coordinator
 * received. Keep-alives go every TTL/3 and the node died after its last one, so the `death` event comes at most
 * TTL (plus one network hop and the store's timer latency) after the death, and at least 2/3 TTL after it. With
 * the default TTL of 1000 ms on the embedded coordinator: within ~1 s. etcd checks expiry every 500 ms and only
 * grants whole seconds, so there it is up to ~1.5 s (TTL 1 s, `--election-timeout` ≤ 500 ms).
 *
 * @example
 * ```ts
 * const me = await registerNode(coordinator, { id: 'n1', role: 'storage', address: '10.0.0.5:7000', capacity: 1 });
 * const members = await watchMembers(coordinator, (e) => console.log(e.type, e.member.id));
 * await me.update({ state: 'draining' });
 * await me.leave();
 * ```
 */
import { ConfigError, InvalidArgumentError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import type { Coordinator, Lease, Watch, WatchEvent } from './coordinator.js';
import { MEMBERS_PREFIX, memberKey } from './keys.js';

export type MemberRole = 'storage' | 'compute';
/** `leaving` is written only by {@link NodeRegistration.leave}, just before the record is deleted. */
/**
 * `stopping`: a storage node handing the lead of its partitions to their followers before it leaves (SIGTERM); it
 * still serves what it holds, but takes no new lead, copy or move.
 */
export type MemberState = 'starting' | 'ready' | 'draining' | 'stopping' | 'leaving';

/** One member's record (JSON in the coordinator). Extra fields are kept as they are. */
export interface MemberInfo {
  id: string;
  role: MemberRole;
  /** `host:port` where the node serves. */
  address: string;
  /** Relative weight for placing work (1 = an ordinary node). */
  capacity: number;
  state: MemberState;
  pid?: number;
  /** ISO 8601 time the node registered. */
  startedAt: string;
  [extra: string]: unknown;
}

/** What a node registers with; `state` defaults to `ready`, `startedAt` to now. */
export interface NodeInfo {
  id: string;
  role: MemberRole;
  address: string;
  capacity: number;
  state?: MemberState;
  pid?: number;
  startedAt?: string;
  [extra: string]: unknown;
}

/** Fields an update may change (all but the id). */
export interface MemberChanges {
  role?: MemberRole;
  address?: string;
  capacity?: number;
  state?: MemberState;
  pid?: number;
  [extra: string]: unknown;
}

/** A node's live registration. */
export interface NodeRegistration {
  readonly id: string;
  /** The record as last written. */
  readonly info: MemberInfo;
  /** The lease the record is attached to now (a new one after a re-registration). */
  readonly lease: Lease;
  /** Merges `changes` into the record (the id cannot change). */
  update(changes: MemberChanges): Promise<void>;
  /** Announces `leaving`, deletes the record and revokes the lease. */
  leave(): Promise<void>;
  /** Runs when the lease was lost (the record is gone); a re-registration follows unless disabled. */
  onLost(listener: (reason: Error) => void): void;
}

export interface RegisterOptions {
  /** Lease TTL (default 1000 ms): a dead node is noticed within about this long. */
  ttlMs?: number;
  /** Register again with a new lease after the lease is lost (default true). */
  reregister?: boolean;
  /**
   * How long to wait for another instance's record under this id to go (its lease to expire) before refusing
   * (default: 10 s, or 5 TTLs if more). A node restarted after a crash finds its old record still there until the
   * old lease expires (about one TTL); a second live node with the same id keeps it forever and is refused.
   */
  takeoverWaitMs?: number;
  logger?: Logger;
}

/**
 * Registers a node; resolves once its record is written. The record is created only if no other live instance holds
 * the id: a record under another instance's lease is waited out (a crashed predecessor's lease expires within a TTL)
 * and, if it is still there after `takeoverWaitMs`, the registration is refused with a ConfigError (another node is
 * running with this id) and nothing is written.
 *
 * @example
 * ```ts
 * const reg = await registerNode(coordinator, { id: 'n1', role: 'compute', address: 'h:7001', capacity: 2 }, { ttlMs: 1000 });
 * ```
 */
export async function registerNode(
  coordinator: Coordinator,
  info: NodeInfo,
  options: RegisterOptions = {},
): Promise<NodeRegistration> {
  const record = checkInfo({ ...info, state: info.state ?? 'ready', startedAt: info.startedAt ?? new Date().toISOString() });
  const registration = new Registration(coordinator, record, options);
  await registration.register();
  return registration;
}

class Registration implements NodeRegistration {
  private current: MemberInfo;
  private leaseValue: Lease | undefined;
  private left = false;
  /** Every lease this instance has registered under: a record under one of them is its own. */
  private readonly myLeases = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: ((reason: Error) => void)[] = [];
  private readonly ttlMs: number;
  private readonly log: Logger;

  constructor(
    private readonly coordinator: Coordinator,
    info: MemberInfo,
    private readonly options: RegisterOptions,
  ) {
    this.current = info;
    this.ttlMs = options.ttlMs ?? 1000;
    this.log = options.logger ?? createLogger(`membership:${info.id}`);
  }

  get id(): string {
    return this.current.id;
  }

  get info(): MemberInfo {
    return { ...this.current };
  }

  get lease(): Lease {
    return this.leaseValue!;
  }

  async register(): Promise<void> {
    const lease = await this.coordinator.grantLease(this.ttlMs);
    // Before the put: whoever sees the record must find this lease on the registration already.
    this.leaseValue = lease;
    this.myLeases.add(lease.id);
    lease.onLost((reason) => this.lost(lease, reason));
    try {
      await this.claim(lease);
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw err;
    }
  }

  /**
   * Writes the record if the key is free, or held by this instance (one of its own leases) or by no lease at all;
   * a record under another instance's lease is waited out until `takeoverWaitMs`, then refused.
   */
  private async claim(lease: Lease): Promise<void> {
    const key = memberKey(this.id);
    const waitMs = this.options.takeoverWaitMs ?? Math.max(10_000, 5 * this.ttlMs);
    const deadline = Date.now() + waitMs;
    let logged = false;
    for (;;) {
      const existing = await this.coordinator.get(key);
      const free = !existing || existing.leaseId === undefined || this.myLeases.has(existing.leaseId);
      if (free) {
        const r = await this.coordinator.compareAndSet(key, existing?.revision ?? 0, JSON.stringify(this.current), { lease });
        if (r.ok) return;
        // It changed in between: look again (within the same wait: a record that keeps changing is not ours to take).
        if (Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        throw new ConfigError(`node id ${this.id}: its membership record kept changing for ${waitMs} ms; is another node starting with this id?`, {
          details: { id: this.id },
        });
      }
      const holder = describeHolder(existing.value);
      if (Date.now() >= deadline) {
        throw new ConfigError(
          `node id ${this.id} is in use by another live node${holder.text}: its membership record stayed under another lease ` +
            `for ${waitMs} ms; stop that node first, or give this one another --id`,
          { details: { id: this.id, ...holder.details, leaseId: existing.leaseId } },
        );
      }
      if (!logged) {
        logged = true;
        this.log.info('the membership record of this id is held under another lease; waiting for it to expire', {
          ...holder.details,
          waitMs,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
  }

  update(changes: MemberChanges): Promise<void> {
    if (this.left) return Promise.reject(new InvalidArgumentError(`member ${this.id} has left`));
    const next = checkInfo({ ...this.current, ...changes, id: this.id } as MemberInfo);
    // Writes go one at a time so the record ends as the last update says, whatever the network does.
    return this.enqueue(async () => {
      this.current = next;
      await this.coordinator.put(memberKey(this.id), JSON.stringify(next), { lease: this.lease });
    });
  }

  leave(): Promise<void> {
    if (this.left) return Promise.resolve();
    this.left = true;
    return this.enqueue(async () => {
      const key = memberKey(this.id);
      this.current = { ...this.current, state: 'leaving' };
      try {
        await this.coordinator.put(key, JSON.stringify(this.current), { lease: this.lease });
      } catch (err) {
        // The lease may be gone already; the record then is too, and there is nothing to announce.
        if (!(err instanceof InvalidArgumentError)) throw err;
      }
      await this.coordinator.delete(key);
      await this.lease.revoke().catch((err: unknown) => this.log.debug('lease revoke failed', { error: String(err) }));
    });
  }

  onLost(listener: (reason: Error) => void): void {
    this.listeners.push(listener);
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => {});
    return run;
  }

  private lost(lease: Lease, reason: Error): void {
    if (this.left || lease !== this.leaseValue) return;
    this.log.warn('membership lease lost', { error: reason.message });
    for (const l of this.listeners) l(reason);
    if (this.options.reregister === false) return;
    void this.enqueue(async () => {
      for (let delay = 100; !this.left; delay = Math.min(delay * 2, 2000)) {
        try {
          await this.register();
          this.log.info('registered again after losing the lease');
          return;
        } catch (err) {
          // Even an id held by another lease is tried again: that lease may yet expire (a predecessor's, late under
          // load); a node left out of membership for good would be worse than one that keeps asking.
          this.log.warn('re-registration failed; retrying', { error: String(err), inMs: delay });
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    });
  }
}

/** A change in membership. `death`: the record vanished without a `leaving` first (its lease expired). */
export interface MemberEvent {
  type: 'join' | 'update' | 'leave' | 'death';
  member: MemberInfo;
}

/** A live view of the members. */
export interface MembershipWatch {
  /** Every member now, by id; kept current. */
  readonly members: ReadonlyMap<string, MemberInfo>;
  close(): Promise<void>;
}

/**
 * Reads the current members and then reports every change. The members present at the start are in `members`
 * and get no `join` event.
 *
 * @example
 * ```ts
 * const view = await watchMembers(coordinator, ({ type, member }) => {
 *   if (type === 'death') reassign(member.id);
 * });
 * console.log([...view.members.keys()]);
 * ```
 */
export async function watchMembers(
  coordinator: Coordinator,
  listener: (event: MemberEvent) => void,
  options: { logger?: Logger } = {},
): Promise<MembershipWatch> {
  const view = new MemberWatcher(coordinator, listener, options.logger ?? createLogger('membership'));
  await view.sync(true);
  return view;
}

class MemberWatcher implements MembershipWatch {
  readonly members = new Map<string, MemberInfo>();
  private readonly revisions = new Map<string, number>();
  private watch: Watch | undefined;
  private closed = false;

  constructor(
    private readonly coordinator: Coordinator,
    private readonly listener: (event: MemberEvent) => void,
    private readonly log: Logger,
  ) {}

  /**
   * Watches first, then lists, then applies what the watch saw meanwhile: nothing between the two is missed, and
   * an event older than the listed record is skipped. Also the way back after a watch breaks (onError).
   */
  async sync(initial: boolean): Promise<void> {
    let buffer: WatchEvent[] | undefined = [];
    const watch = await this.coordinator.watch(MEMBERS_PREFIX, (e) => (buffer ? buffer.push(e) : this.apply(e)), {
      onError: (err) => this.broken(err),
    });
    try {
      const listed = new Map<string, { info: MemberInfo; revision: number }>();
      for (const entry of await this.coordinator.list(MEMBERS_PREFIX)) {
        const info = this.parse(entry.key, entry.value);
        if (info) listed.set(info.id, { info, revision: entry.revision });
      }
      for (const [id, old] of this.members) {
        if (!listed.has(id)) this.remove(id, old);
      }
      for (const [id, { info, revision }] of listed) {
        if (this.revisions.get(id) === revision) continue;
        const existed = this.members.has(id);
        this.members.set(id, info);
        this.revisions.set(id, revision);
        if (!initial) this.emit(existed ? 'update' : 'join', info);
      }
      for (const e of buffer) this.apply(e);
      buffer = undefined;
    } catch (err) {
      await watch.close();
      throw err;
    }
    this.watch = watch;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
  }

  private apply(e: WatchEvent): void {
    if (this.closed) return;
    const id = e.key.slice(MEMBERS_PREFIX.length);
    const seen = this.revisions.get(id);
    if (seen !== undefined && e.revision <= seen) return;
    if (e.type === 'delete') {
      const old = this.members.get(id);
      if (old) this.remove(id, old);
      return;
    }
    const info = this.parse(e.key, e.value ?? '');
    if (!info) return;
    const existed = this.members.has(id);
    this.members.set(id, info);
    this.revisions.set(id, e.revision);
    this.emit(existed ? 'update' : 'join', info);
  }

  private remove(id: string, last: MemberInfo): void {
    this.members.delete(id);
    this.revisions.delete(id);
    this.emit(last.state === 'leaving' ? 'leave' : 'death', last);
  }

  private broken(err: Error): void {
    if (this.closed) return;
    this.log.warn('membership watch broke; reading the members again', { error: err.message });
    const retry = (delay: number): void => {
      if (this.closed) return;
      this.sync(false).catch((e: unknown) => {
        this.log.warn('membership resync failed; retrying', { error: String(e) });
        setTimeout(() => retry(Math.min(delay * 2, 2000)), delay).unref();
      });
    };
    retry(100);
  }

  private emit(type: MemberEvent['type'], member: MemberInfo): void {
    try {
      this.listener({ type, member });
    } catch (err) {
      this.log.error('membership listener failed', { type, member: member.id, error: err });
    }
  }

  private parse(key: string, value: string): MemberInfo | undefined {
    try {
      return checkInfo(JSON.parse(value) as MemberInfo);
    } catch (err) {
      this.log.warn('ignoring an unreadable member record', { key, error: String(err) });
      return undefined;
    }
  }
}

/** Address and pid of the node a member record names, for a refusal's message. */
function describeHolder(value: string): { text: string; details: Record<string, unknown> } {
  try {
    const m = JSON.parse(value) as { address?: unknown; pid?: unknown; startedAt?: unknown };
    const details: Record<string, unknown> = {};
    if (typeof m.address === 'string') details.address = m.address;
    if (typeof m.pid === 'number') details.pid = m.pid;
    if (typeof m.startedAt === 'string') details.startedAt = m.startedAt;
    const parts = [details.address !== undefined && `at ${String(details.address)}`, details.pid !== undefined && `pid ${String(details.pid)}`].filter(Boolean);
    return { text: parts.length ? ` (${parts.join(', ')})` : '', details };
  } catch {
    return { text: '', details: {} };
  }
}

function checkInfo(info: MemberInfo): MemberInfo {
  const bad = (why: string) => new InvalidArgumentError(`member record: ${why}`, { details: { id: info?.id } });
  if (typeof info !== 'object' || info === null) throw bad('not an object');
  if (typeof info.id !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(info.id)) {
    throw bad('id must be 1-128 characters of A-Z a-z 0-9 . _ -');
  }
  if (info.role !== 'storage' && info.role !== 'compute') throw bad(`role must be storage or compute`);
  if (typeof info.address !== 'string' || !/^.+:\d{1,5}$/.test(info.address)) throw bad('address must be host:port');
  if (typeof info.capacity !== 'number' || !(info.capacity > 0) || !Number.isFinite(info.capacity)) {
    throw bad('capacity must be a positive number');
  }
  if (!['starting', 'ready', 'draining', 'stopping', 'leaving'].includes(info.state)) throw bad(`unknown state ${String(info.state)}`);
  return info;
}
