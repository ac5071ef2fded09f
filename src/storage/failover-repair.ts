/**
 * After a failover, the new leader makes its followers hold what it holds. The old leader shipped to each follower on
 * its own stream and died with its last groups on some streams and not others; those writes were never acknowledged,
 * but without a repair they would stay on some copies only — read from those followers, and brought back if one of
 * them led later. For each partition this node took over from a leader that is gone, it asks every follower which
 * keys it applied lately from that leader beyond what this node got (`repl.recent`, recent-applies.ts) and adds the keys
 * it got beyond what that follower got. Then it writes its own current value of each of those keys again (or a
 * delete) under a fresh version, as a write of its own (`StorageEngine.reassert`): shipped to every in-sync follower
 * behind every write shipped before, the copies converge on the new leader's, as Kafka's followers truncate to the
 * high watermark and fetch from the new leader. Being a write of this leader's, with a version above all before it,
 * a repair cut short by this leader's own death is found and finished by the next leader's repair like any other.
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { Peer, splitAddress } from '../wire/index.js';
import type { Logger } from '../util/logger.js';
import type { StorageEngine } from './engine.js';
import type { ReplicaApplier } from './replica-apply.js';
import type { RecentKey } from './recent-applies.js';
import type { Replicator } from './replicator.js';
import type { Location } from './engine-types.js';
import { locationOf } from './location.js';

/** Most keys re-written per transaction. */
const REPAIR_BATCH = 1000;
const CALL_TIMEOUT_MS = 10_000;

export interface FailoverRepairOptions {
  nodeId: string;
  engine: StorageEngine;
  catalog: Catalog;
  applier: ReplicaApplier;
  replicator: Replicator;
  secret: Uint8Array;
  /** The address of a storage node by id (membership), or undefined if it is not a member. */
  addressOf(nodeId: string): string | undefined;
  log: Logger;
}

export class FailoverRepair {
  private readonly seen = new Map<string, RoutingTable>();
  private readonly running = new Set<Promise<void>>();
  /** Repairs run since start (one per namespace and replaced leader) and keys re-sent to followers (`node.stats`). */
  readonly counts = { repairs: 0, keys: 0 };

  constructor(private readonly o: FailoverRepairOptions) {
    for (const name of o.catalog.names()) {
      const t = o.catalog.find(name);
      if (t) this.seen.set(name, t);
    }
  }

  /** Follows a namespace's table: partitions this node now leads in place of a leader that is gone get repaired. */
  onTable(table: RoutingTable | undefined, name: string): void {
    const before = this.seen.get(name);
    if (!table) {
      this.seen.delete(name);
      return;
    }
    this.seen.set(name, table);
    if (!before || table.copies <= 1 || table.epoch <= before.epoch) return;
    const me = this.o.nodeId;
    const taken = new Map<string, number[]>();
    for (const p of table.partitionsOf(me)) {
      const old = before.ownerOf(p);
      // Only a follower that took the lead from a leader no longer holding a copy: a move brought no history here,
      // and a lead handoff confirmed every write with the followers before the switch.
      if (old === undefined || old === me || !before.followersOf(p).includes(me) || table.holds(p, old)) continue;
      let list = taken.get(old);
      if (!list) taken.set(old, (list = []));
      list.push(p);
    }
    // At once, side by side: what the followers remember of the old leader ages out (recent-applies.ts).
    for (const [old, partitions] of taken) {
      const run = this.repair(name, old, partitions).catch((err: unknown) =>
        this.o.log.warn('failover repair failed', { namespace: name, leader: old, error: String(err) }),
      );
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
  }

  /** Resolves once the repairs started so far have ended. */
  async idle(): Promise<void> {
    await Promise.all([...this.running]);
  }

  private async repair(ns: string, old: string, partitions: number[]): Promise<void> {
    const { applier, catalog, engine, nodeId } = this.o;
    const table = catalog.find(ns);
    if (!table) return;
    // What this node got from the old leader, once everything it accepted from it has committed.
    const mine = await applier.recentFrom(old, ns, table.epoch, partitions, -1);
    const byFollower = new Map<string, number[]>();
    for (const p of partitions) {
      if (table.ownerOf(p) !== nodeId) continue;
      for (const f of table.followersOf(p)) {
        let list = byFollower.get(f);
        if (!list) byFollower.set(f, (list = []));
        list.push(p);
      }
    }
    // Keys some copy may hold differently: each follower's beyond this node, and this node's beyond each follower.
    // The followers are asked first, all of them: once a follower has answered it applies nothing more from `old`.
    const keys = new Set<string>();
    let newest = mine.newest;
    // Each follower on its own: one that fails does not stop the repair of the others.
    await Promise.all(
      [...byFollower].map(async ([follower, ps]) => {
        let theirs: { keys: RecentKey[]; newest: number; complete: boolean };
        try {
          theirs = await this.ask(follower, { leader: old, namespace: ns, epoch: table.epoch, partitions: ps, after: mine.newest });
        } catch (err) {
          theirs = { keys: [], newest: -1, complete: false };
          this.o.log.warn('failover repair: a follower did not say what it applied lately', { namespace: ns, follower, error: String(err) });
        }
        const ours = applier.recent.from(old, ns, table.scheme === 'hash' ? new Set(ps) : undefined, theirs.newest);
        if (!theirs.complete || !ours.complete) {
          // What it may hold otherwise is not known: it leaves the in-sync copies of these partitions and comes back
          // by a copy, which compares and fetches what differs (partition-import.ts).
          this.o.log.warn('failover repair incomplete: the follower leaves the in-sync copies to be copied again', { namespace: ns, follower, partitions: ps.length });
          // Should that drop not be written, the follower leaves every copy of this leader's: that drop is retried
          // until it is (Replicator's heartbeat), and a copy of unknown content must not stay in sync.
          await this.o.replicator
            .dropFollower(follower, { namespace: ns, partitions: ps })
            .catch(() => this.o.replicator.dropFollower(follower).catch(() => undefined));
          return;
        }
        newest = Math.max(newest, theirs.newest);
        for (const [, , key] of theirs.keys) keys.add(key);
        for (const [, , key] of ours.keys) keys.add(key);
      }),
    );
    const now = catalog.find(ns);
    const writes: { location: Location; key: string }[] = [];
    for (const key of keys) {
      const p = now?.place(key).partition;
      // A partition left with too few copies takes no write (this one included) until its copies are back.
      if (!now || p === undefined || now.ownerOf(p) !== nodeId || 1 + now.followersOf(p).length < now.minInSync) continue;
      writes.push({ location: locationOf(now, p), key });
    }
    // The re-written versions must be above any a follower got from the old leader, whose clock may run ahead.
    engine.witnessVersion(newest);
    let sent = 0;
    for (let i = 0; i < writes.length; i += REPAIR_BATCH) {
      const batch = writes.slice(i, i + REPAIR_BATCH);
      try {
        await engine.reassert(batch);
        sent += batch.length;
      } catch (err) {
        // A follower that fails the ship is dropped (and re-copied); the other batches still go.
        this.o.log.warn('failover repair: a batch of re-written keys was not held by every follower', { namespace: ns, keys: batch.length, error: String(err) });
      }
    }
    this.counts.repairs++;
    this.counts.keys += sent;
    this.o.log.info('failover repair: followers hold the new leader\'s values of the keys the old leader wrote last', {
      namespace: ns,
      leader: old,
      partitions: partitions.length,
      keys: sent,
    });
  }

  private async ask(
    follower: string,
    params: { leader: string; namespace: string; epoch: number; partitions: number[]; after: number },
  ): Promise<{ keys: RecentKey[]; newest: number; complete: boolean }> {
    const address = this.o.addressOf(follower);
    if (!address) throw new Error(`follower ${follower} is not a member`);
    const [host, port] = splitAddress(address);
    const peer = new Peer({ host, port, secret: this.o.secret, name: `${this.o.nodeId}:repair`, callTimeoutMs: CALL_TIMEOUT_MS });
    try {
      const raw = await peer.call<{ keys?: unknown; newest?: unknown; complete?: unknown }>('repl.recent', params);
      const keys = Array.isArray(raw.keys)
        ? raw.keys.filter((k): k is RecentKey => Array.isArray(k) && k.length === 3 && typeof k[2] === 'string')
        : [];
      return { keys, newest: Number.isSafeInteger(raw.newest) ? (raw.newest as number) : -1, complete: raw.complete === true };
    } finally {
      peer.close();
    }
  }
}
