/**
 * The one interface for cluster metadata. Two implementations pass the same conformance suite
 * (`test/coordination/conformance.ts`): the embedded coordinator (one process on one host, not fault tolerant) and
 * etcd (v3 API; an etcd cluster of 3 members has no single point).
 *
 * The model is etcd's: a flat, ordered key space of string keys and string values (JSON by convention); one global
 * revision that every change bumps; each key remembers the revision of its last change (`revision`), which is what
 * compare-and-set compares; leases that delete their keys when they expire; watches on a key prefix that deliver every
 * change in revision order.
 *
 * @example
 * ```ts
 * const lease = await coordinator.grantLease(1000);
 * await coordinator.put('/members/n1', JSON.stringify({ role: 'storage' }), { lease });
 * const watch = await coordinator.watch('/members/', (e) => console.log(e.type, e.key));
 * const r = await coordinator.compareAndSet('/assign/epoch', 0, '1'); // create only if absent
 * ```
 */

/** One stored key. */
export interface Entry {
  key: string;
  value: string;
  /** Global revision of the key's last change; compare-and-set compares this. Always > 0. */
  revision: number;
  /** The lease the key is attached to, if any. */
  leaseId?: string;
}

/** One change seen by a watch. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value (for `put`). */
  value?: string;
  /**
   * The revision of this change. The embedded coordinator gives every key change its own revision; etcd deletes
   * all keys of an expired or revoked lease in one revision, so there several delete events may share one.
   */
  revision: number;
}

/** A live watch; `close()` stops delivery. */
export interface Watch {
  close(): Promise<void>;
}

/**
 * A lease: keys put with it are deleted when it expires or is revoked. The implementation keeps it alive on its own
 * (keep-alive at a fraction of the TTL) until `revoke()` is called. If it expires anyway (the process stalled, the
 * coordinator was unreachable) `onLost` listeners run once; the keys are gone by then.
 */
export interface Lease {
  readonly id: string;
  readonly ttlMs: number;
  /**
   * Until when the coordinator surely still holds the lease, on this process's monotonic clock (`performance.now()`
   * ms): the sending of the newest acknowledged keep-alive (or of the grant) plus the TTL — the coordinator started
   * its clock no earlier. 0 once the lease is lost or revoked. A leader that acts only before this time cannot overlap
   * a successor chosen after the lease expired (read leases).
   */
  readonly heldUntil: number;
  /** Deletes the lease and every key attached to it, now. */
  revoke(): Promise<void>;
  /** Registers a listener for the lease's expiry (not called after `revoke()`). */
  onLost(listener: (reason: Error) => void): void;
}

/** The outcome of a compare-and-set. */
export type CasResult = { ok: true; revision: number } | { ok: false; current?: Entry };

/** Holds leadership of one election until resigned or lost. */
export interface Leadership {
  readonly election: string;
  readonly candidate: string;
  /** Steps down (the next candidate is elected). */
  resign(): Promise<void>;
  /** Called once if leadership is lost without `resign()` (the lease expired). */
  onLost(listener: (reason: Error) => void): void;
}

/** Cluster metadata store. Every method may throw `CoordinatorError` when the store cannot be reached. */
export interface Coordinator {
  /** Reads one key. */
  get(key: string): Promise<Entry | undefined>;
  /** Reads every key starting with `prefix`, in key order. */
  list(prefix: string): Promise<Entry[]>;
  /** Writes a key unconditionally; returns the new revision. */
  put(key: string, value: string, options?: { lease?: Lease }): Promise<number>;
  /**
   * Writes `value` only if the key's current revision is `expectedRevision` (0 = the key must not exist).
   * On a mismatch nothing changes and the current entry (if any) is returned.
   */
  compareAndSet(key: string, expectedRevision: number, value: string, options?: { lease?: Lease }): Promise<CasResult>;
  /** Deletes a key; returns whether it existed. */
  delete(key: string): Promise<boolean>;
  /** Deletes a key only if its revision is `expectedRevision`; returns whether it did (never for revision 0). */
  compareAndDelete(key: string, expectedRevision: number): Promise<boolean>;
  /**
   * Watches every key under `prefix`. Events after the call returns are delivered in revision order;
   * pass `fromRevision` to also receive changes since that revision (inclusive) if the store still has them.
   * A watch survives reconnects without losing or repeating an event. If it cannot go on (the events it needs were
   * compacted away; asked for with `fromRevision`, the call itself rejects instead) it is closed and `onError` runs
   * once: the caller must re-read the state it watches (`list`) and watch again.
   */
  watch(
    prefix: string,
    listener: (event: WatchEvent) => void,
    options?: { fromRevision?: number; onError?: (error: Error) => void },
  ): Promise<Watch>;
  /**
   * Grants a lease that expires `ttlMs` after the last keep-alive (etcd rounds up to whole seconds; the lease's
   * `ttlMs` is the TTL in force). A put or compare-and-set with a lease that has expired or been revoked fails with
   * `InvalidArgumentError`.
   */
  grantLease(ttlMs: number): Promise<Lease>;
  /**
   * Campaigns in `election` as `candidate` and resolves once elected. Only one candidate leads at a time;
   * leadership is tied to `lease` and ends with it.
   */
  campaign(election: string, candidate: string, lease: Lease, options?: { signal?: AbortSignal }): Promise<Leadership>;
  /** The current leader of `election`, if any. */
  leader(election: string): Promise<string | undefined>;
  /** Releases connections, stops keep-alives (leases then expire on their own), closes watches. */
  close(): Promise<void>;
}
