/**
 * The leader's side of replication (Kafka's model: the leader and in-sync followers of each partition are in the
 * routing record; see docs/ARCHITECTURE.md, "Replication").
 *
 * Every group of writes that touches a partition this node leads is shipped, after it commits here, to each of the
 * partition's in-sync followers as one `repl.apply` call on a stream — one connection per follower, numbered calls,
 * applied there in order. The group's writes are answered only once every in-sync follower holds them, so any
 * in-sync copy can take over the lead without losing an acknowledged write. A follower that fails a call, falls
 * silent (heartbeats every {@link HEARTBEAT_MS}) or closes its connection is dropped from the in-sync followers of
 * every partition this node leads — one compare-and-set per namespace — and the waiting writes are answered if a
 * majority of copies still holds them; it comes back only through a fresh copy (the migration machinery).
 *
 * Fencing: the CAS that drops a follower fails once the controller has given the lead to another copy (the record
 * changed), and the followers refuse calls from a node that no longer leads at their epoch — so a replaced leader
 * cannot acknowledge a write.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { NotEnoughReplicasError, UnavailableError } from '../errors/index.js';
import { connect, splitAddress, type Connection } from '../wire/index.js';
import type { Logger } from '../util/logger.js';
import type { Location, ReplicatedChange, ReplicationHook } from './engine.js';

/** Idle streams send an empty call this often: followers measure their staleness by it, the leader their liveness. */
export const HEARTBEAT_MS = 250;
/** A follower that has not answered a call within this long is dropped from the in-sync followers. */
export const FOLLOWER_TIMEOUT_MS = 2000;

/**
 * Calls a stream may have unanswered. Groups shipped meanwhile wait and leave together as the next call: under load
 * a follower gets few large calls (one message, one transaction) rather than one small call per leader group.
 */
export const MAX_IN_FLIGHT = 1;
/**
 * Waiting groups are merged into one call up to about this many value bytes and changes (one group alone may exceed
 * them; a follower refuses calls of more than 100 000 changes).
 */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const MAX_BATCH_CHANGES = 10_000;

/** One change as it crosses the wire: `[namespace, partition, key, deleted ? 1 : 0, value, version]`. */
export type WireChange = [string, number, string, 0 | 1, unknown, number];

interface CallBody {
  epochs: Record<string, number>;
  entries: WireChange[];
}

/** Groups waiting for a free call on a stream; they are sent, answered and fail together. */
interface Batch extends CallBody {
  bytes: number;
  done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

interface FollowerStream {
  id: string;
  follower: string;
  seq: number;
  connection: Promise<Connection>;
  lastSent: number;
  closed: boolean;
  inFlight: number;
  waiting: Batch[];
}

export interface ReplicatorOptions {
  nodeId: string;
  catalog: Catalog;
  secret: Uint8Array;
  /** The address of a storage node by id (membership), or undefined if it is not a member. */
  addressOf(nodeId: string): string | undefined;
  log: Logger;
}

export class Replicator implements ReplicationHook {
  private readonly streams = new Map<string, FollowerStream>();
  /** Followers that failed and must leave the in-sync lists before anything is sent to them again. */
  private readonly failed = new Set<string>();
  private readonly dropping = new Map<string, Promise<void>>();
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: ReplicatorOptions) {
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  wants(location: Location): boolean {
    const table = this.options.catalog.find(location.namespace);
    return table !== undefined && table.copies > 1 && table.ownerOf(location.partition) === this.options.nodeId;
  }

  /** Ships one committed group; resolves once every in-sync follower of each partition in it holds its changes. */
  async ship(changes: ReplicatedChange[]): Promise<void> {
    const { catalog, nodeId } = this.options;
    const perFollower = new Map<string, { entries: WireChange[]; sizes: number[]; bytes: number }>();
    const epochs: Record<string, number> = {};
    // Each namespace's table and each partition's followers are looked up once per group, not once per change.
    const tables = new Map<string, { table: RoutingTable; partitions: Map<number, readonly string[]> }>();
    const partitions: { ns: string; partition: number; followers: readonly string[] }[] = [];
    for (const c of changes) {
      const ns = c.location.namespace;
      let t = tables.get(ns);
      if (!t) {
        const table = catalog.find(ns);
        if (!table) throw new UnavailableError(`namespace ${ns} vanished while a write to it was replicated`);
        epochs[ns] = table.epoch;
        tables.set(ns, (t = { table, partitions: new Map() }));
      }
      const partition = c.location.partition;
      let followers = t.partitions.get(partition);
      if (!followers) {
        t.partitions.set(partition, (followers = t.table.followersOf(partition)));
        partitions.push({ ns, partition, followers });
      }
      const wire: WireChange = [ns, partition, c.key, c.deleted ? 1 : 0, c.deleted ? null : c.value, c.version];
      for (const f of followers) {
        let list = perFollower.get(f);
        if (!list) perFollower.set(f, (list = { entries: [], sizes: [], bytes: 0 }));
        list.entries.push(wire);
        list.sizes.push(c.bytes ?? 0);
        list.bytes += c.bytes ?? 0;
      }
    }
    const sends = [...perFollower].map(([f, list]) =>
      Promise.all(chunks(list).map((c) => this.send(f, { epochs, entries: c.entries }, c.bytes))).then(() => undefined, () => f),
    );
    const failures = (await Promise.all(sends)).filter((f): f is string => f !== undefined);
    if (failures.length === 0) {
      for (const { ns, partition, followers } of partitions) {
        const needed = catalog.find(ns)?.minInSync ?? 1;
        if (1 + followers.length < needed) throw notEnough(ns, partition, 1 + followers.length, needed, failures);
      }
      return;
    }
    // A follower failed. Acknowledge only once its removal from the in-sync copies is written, judged by the record
    // as the coordinator has it now (this node's cache may be stale: it may have been replaced while cut off). If the
    // removal cannot be written, the outcome is unknown and the write is not acknowledged.
    try {
      await Promise.all(failures.map((f) => this.dropFollower(f)));
    } catch (err) {
      throw new UnavailableError(`could not record that follower ${failures.join(',')} fell behind; the write is not acknowledged`, { cause: err });
    }
    const fresh = new Map<string, RoutingTable | undefined>();
    for (const ns of tables.keys()) fresh.set(ns, await catalog.refresh(ns));
    for (const { ns, partition, followers } of partitions) {
      const table = fresh.get(ns);
      if (!table || table.ownerOf(partition) !== nodeId) {
        throw new UnavailableError(`${ns}/${partition} is led by another node now; the write may not have been kept`);
      }
      const acked = followers.filter((f) => !failures.includes(f));
      const current = table.followersOf(partition);
      if (current.some((f) => !acked.includes(f))) {
        throw new UnavailableError(`${ns}/${partition}: an in-sync copy does not hold the write; it is not acknowledged`);
      }
      if (1 + current.length < table.minInSync) throw notEnough(ns, partition, 1 + current.length, table.minInSync, failures);
    }
  }

  /**
   * Resolves once each of `followers` has answered every call sent to it before this one (an empty call queued
   * behind them on its stream); rejects if any of them fails meanwhile. A lead handoff waits for this, after
   * holding the partitions' requests, so the new leader holds every write the old one committed.
   */
  barrier(followers: readonly string[]): Promise<void> {
    return Promise.all(followers.map((f) => this.send(f, { epochs: {}, entries: [] }, 0))).then(() => undefined);
  }

  /**
   * Sends changes on the follower's stream, in the order of the calls to send: at once if a call is free, else with
   * the next call. Resolves once the follower holds them; a failure closes the stream.
   */
  private send(follower: string, body: CallBody, bytes: number): Promise<void> {
    if (this.failed.has(follower)) return Promise.reject(new UnavailableError(`${follower} is being dropped from the in-sync copies`));
    const stream = this.stream(follower);
    if (stream.inFlight < MAX_IN_FLIGHT && stream.waiting.length === 0) return this.call(stream, body);
    let batch = stream.waiting.at(-1);
    const full = (b: Batch) => b.bytes + bytes > MAX_BATCH_BYTES || b.entries.length + body.entries.length > MAX_BATCH_CHANGES;
    if (!batch || (batch.entries.length > 0 && full(batch))) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      done.catch(() => undefined);
      stream.waiting.push((batch = { epochs: {}, entries: [], bytes: 0, done, resolve, reject }));
    }
    // The newest epoch seen for a namespace: the follower checks each change against a table at least that new.
    for (const ns in body.epochs) batch.epochs[ns] = Math.max(batch.epochs[ns] ?? 0, body.epochs[ns]!);
    for (const e of body.entries) batch.entries.push(e);
    batch.bytes += bytes;
    return batch.done;
  }

  /** One numbered call on the stream; when it is answered the next waiting batch goes. */
  private async call(stream: FollowerStream, body: CallBody): Promise<void> {
    stream.inFlight += 1;
    stream.lastSent = Date.now();
    const seq = ++stream.seq;
    try {
      const connection = await stream.connection;
      await connection.call('repl.apply', { leader: this.options.nodeId, epochs: body.epochs, entries: body.entries, stream: stream.id, seq }, { timeoutMs: FOLLOWER_TIMEOUT_MS });
    } catch (err) {
      this.fail(stream.follower, stream, err);
      throw err;
    } finally {
      stream.inFlight -= 1;
      this.next(stream);
    }
  }

  private next(stream: FollowerStream): void {
    if (stream.inFlight >= MAX_IN_FLIGHT) return;
    const next = stream.closed ? undefined : stream.waiting.shift();
    if (next) this.call(stream, next).then(next.resolve, next.reject);
  }

  private stream(follower: string): FollowerStream {
    const existing = this.streams.get(follower);
    if (existing && !existing.closed) return existing;
    const address = this.options.addressOf(follower);
    const stream: FollowerStream = {
      id: randomUUID(),
      follower,
      seq: 0,
      lastSent: Date.now(),
      closed: false,
      inFlight: 0,
      waiting: [],
      connection: address
        ? (() => {
            const [host, port] = splitAddress(address);
            return connect({ host, port, secret: this.options.secret, name: `${this.options.nodeId}:replicate`, connectTimeoutMs: FOLLOWER_TIMEOUT_MS });
          })()
        : Promise.reject(new UnavailableError(`follower ${follower} is not a member`)),
    };
    stream.connection.catch(() => undefined);
    void stream.connection.then(
      (c) => c.once('close', () => this.fail(follower, stream, new UnavailableError('replication connection closed'))),
      () => undefined,
    );
    this.streams.set(follower, stream);
    return stream;
  }

  /** Closes a failed stream and drops the follower from the in-sync copies (once, however many calls fail). */
  private fail(follower: string, stream: FollowerStream, err: unknown): void {
    if (stream.closed || this.closed) return;
    closeStream(stream, 'replication stream failed', err);
    if (this.streams.get(follower) === stream) this.streams.delete(follower);
    this.options.log.warn('follower failed: dropping it from the in-sync copies', { follower, error: String(err) });
    void this.dropFollower(follower).catch(() => undefined);
  }

  /**
   * Removes `follower` from the in-sync followers of every partition this node leads (one CAS per namespace). Until
   * that has been written nothing more is sent to it: a stream with a gap must not go on.
   *
   * With `only`, from those partitions of one namespace alone (a failover repair that could not learn what the
   * follower holds of them); its stream is sound and goes on for the others.
   */
  dropFollower(follower: string, only?: { namespace: string; partitions: readonly number[] }): Promise<void> {
    if (only) {
      const { catalog, nodeId } = this.options;
      return catalog.update(only.namespace, (t) => withoutFollower(t, nodeId, follower, only.partitions)).then(() => undefined);
    }
    const running = this.dropping.get(follower);
    if (running) return running;
    this.failed.add(follower);
    const { catalog, nodeId } = this.options;
    const work = (async () => {
      for (const name of catalog.names()) {
        const cached = catalog.find(name);
        if (!cached || cached.copies <= 1 || !ledWith(cached, nodeId, follower).length) continue;
        await catalog.update(name, (t) => withoutFollower(t, nodeId, follower, ledWith(t, nodeId, follower)));
      }
      this.failed.delete(follower);
    })().finally(() => this.dropping.delete(follower));
    this.dropping.set(follower, work);
    return work;
  }

  /** Heartbeats on idle streams, and streams opened to followers that have none yet (so silence is noticed). */
  private beat(): void {
    if (this.closed) return;
    const { catalog, nodeId } = this.options;
    // A drop that could not be written (coordinator unreachable) is tried again until it is.
    for (const f of this.failed) if (!this.dropping.has(f)) void this.dropFollower(f).catch(() => undefined);
    const followers = new Set<string>();
    for (const name of catalog.names()) {
      const t = catalog.find(name);
      if (!t || t.copies <= 1) continue;
      for (const p of t.partitionsOf(nodeId)) for (const f of t.followersOf(p)) followers.add(f);
    }
    const now = Date.now();
    for (const f of followers) {
      if (this.failed.has(f)) continue;
      const s = this.streams.get(f);
      if (s && now - s.lastSent < HEARTBEAT_MS) continue;
      void this.send(f, { epochs: {}, entries: [] }, 0).catch(() => undefined);
    }
    for (const [f, s] of this.streams) {
      if (followers.has(f)) continue;
      // No longer a follower of anything here: let the stream go.
      closeStream(s, 'no longer a follower');
      this.streams.delete(f);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const s of this.streams.values()) closeStream(s, 'leader closing');
    this.streams.clear();
  }
}

/** Closes a stream; groups still waiting to be sent on it fail (a later stream must not skip them). */
function closeStream(stream: FollowerStream, reason: string, cause?: unknown): void {
  stream.closed = true;
  const err = cause ?? new UnavailableError(`replication stream closed: ${reason}`);
  for (const b of stream.waiting.splice(0)) b.reject(err);
  void stream.connection.then((c) => c.close(reason), () => undefined);
}

/**
 * A follower's changes of one group cut into calls of at most {@link MAX_BATCH_BYTES} (a change larger than that goes
 * alone): a group of many large values would otherwise exceed the wire's frame limit and cost the follower its place.
 * The calls go in order on the stream; the group's writes wait for all of them.
 */
function chunks(list: { entries: WireChange[]; sizes: number[]; bytes: number }): { entries: WireChange[]; bytes: number }[] {
  if (list.bytes <= MAX_BATCH_BYTES) return [list];
  const out: { entries: WireChange[]; bytes: number }[] = [];
  let cur: { entries: WireChange[]; bytes: number } = { entries: [], bytes: 0 };
  for (let i = 0; i < list.entries.length; i++) {
    const size = list.sizes[i]!;
    if (cur.entries.length > 0 && cur.bytes + size > MAX_BATCH_BYTES) {
      out.push(cur);
      cur = { entries: [], bytes: 0 };
    }
    cur.entries.push(list.entries[i]!);
    cur.bytes += size;
  }
  out.push(cur);
  return out;
}

function notEnough(ns: string, partition: number, inSync: number, needed: number, failed: string[]): NotEnoughReplicasError {
  return new NotEnoughReplicasError(`${ns}/${partition}: ${inSync} in-sync copies hold the write, ${needed} needed`, {
    details: { namespace: ns, partition, inSync, needed, failed },
  });
}

/** `table` with `follower` out of the followers of those of `partitions` that `leader` leads (undefined: no change). */
function withoutFollower(table: RoutingTable, leader: string, follower: string, partitions: readonly number[]): RoutingTable | undefined {
  const changes = new Map<number, string[]>();
  for (const p of partitions) {
    if (table.ownerOf(p) === leader && table.followersOf(p).includes(follower)) changes.set(p, table.followersOf(p).filter((f) => f !== follower));
  }
  return changes.size > 0 ? table.withFollowers(changes) : undefined;
}

/** Partitions `leader` leads with `follower` among the in-sync followers. */
function ledWith(table: RoutingTable, leader: string, follower: string): number[] {
  return table.partitionsFollowedBy(follower).filter((p) => table.ownerOf(p) === leader);
}
