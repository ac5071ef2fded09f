/**
 * The follower's side of replication: applies the leaders' `repl.apply` calls in the order they were sent.
 *
 *   repl.apply { leader, stream, seq, epochs: { ns: epoch }, entries: WireChange[] } -> { applied }
 *
 * Each leader sends on one stream (a connection) with calls numbered from 1. A call out of order — a gap after a
 * lost call, or a new stream that does not start at 1 — is refused, and so is every later call of that stream: the
 * leader then drops this node from the in-sync copies and it comes back only through a fresh copy. A change is
 * applied only if, at the caller's epoch or later, the caller leads its partition and this node follows it; a
 * replaced leader is refused ({@link StaleEpochError}), which is what keeps it from acknowledging a write.
 *
 * Calls also say when this node last heard from each leader, which bounds how stale a read from this copy can be.
 *
 *   repl.recent { leader, namespace, epoch, partitions, after } -> { keys, newest, complete }
 *
 * asks, after a failover, which keys of `partitions` this node applied lately from `leader` (the one replaced) with a
 * version above `after` (see recent-applies.ts); first it takes the table at `epoch` (so nothing more from `leader`
 * is applied) and lets what it accepted from `leader` commit.
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { InvalidArgumentError, StaleEpochError, UnavailableError } from '../errors/index.js';
import type { ReplicatedChange, StorageEngine } from './engine.js';
import type { WireChange } from './replicator.js';
import { RecentApplies, type RecentKey } from './recent-applies.js';
import { locationOf } from './location.js';

interface LeaderState {
  stream: string;
  next: number;
  broken: boolean;
  /** Calls are checked and submitted one after another (a check may wait for a fresher table). */
  chain: Promise<void>;
  lastHeard: number;
}

const MAX_ENTRIES = 100_000;

export class ReplicaApplier {
  private readonly leaders = new Map<string, LeaderState>();
  /** Keys applied lately, by leader: what a failover may have left different between copies. */
  readonly recent = new RecentApplies();

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
  ) {}

  handle(method: string, raw: unknown): Promise<unknown> {
    const p = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    if (method === 'repl.recent') return this.recentFromParams(p);
    if (method !== 'repl.apply') return Promise.reject(new InvalidArgumentError(`unknown method ${method}`));
    const { leader, stream, seq, epochs, entries } = p;
    if (typeof leader !== 'string' || leader === '' || typeof stream !== 'string' || stream === '') {
      return Promise.reject(new InvalidArgumentError('repl.apply needs leader and stream'));
    }
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return Promise.reject(new InvalidArgumentError('seq must be a positive integer'));
    if (typeof epochs !== 'object' || epochs === null || Array.isArray(epochs)) return Promise.reject(new InvalidArgumentError('epochs must be an object'));
    if (!Array.isArray(entries) || entries.length > MAX_ENTRIES) return Promise.reject(new InvalidArgumentError(`entries must be an array of at most ${MAX_ENTRIES}`));

    // Order is checked here, synchronously, in the order calls arrived on the connection.
    let state = this.leaders.get(leader);
    if (!state || state.stream !== stream) {
      if (seq !== 1) return Promise.reject(new UnavailableError(`stream ${stream} from ${leader} is not known here from its start (seq ${seq})`));
      state = { stream, next: 1, broken: false, chain: Promise.resolve(), lastHeard: 0 };
      this.leaders.set(leader, state);
    }
    const s = state;
    if (s.broken || seq !== s.next) {
      s.broken = true;
      return Promise.reject(new UnavailableError(`call ${seq} from ${leader} is out of order (expected ${s.next}); the copy must be made again`));
    }
    s.next += 1;
    let committed!: Promise<void>;
    const checked = s.chain.then(async () => {
      if (s.broken) throw new UnavailableError(`the stream from ${leader} broke before call ${seq}`);
      const changes = await this.check(leader, epochs as Record<string, unknown>, entries as unknown[]);
      s.lastHeard = Date.now();
      for (const c of changes) this.recent.record(leader, c.location.namespace, c.location.partition, c.key, c.version);
      committed = changes.length > 0 ? this.engine.applyReplicated(changes) : Promise.resolve();
    });
    s.chain = checked.catch(() => {
      s.broken = true;
    });
    return checked.then(() => committed).then(() => ({ applied: (entries as unknown[]).length }));
  }

  /**
   * Keys applied here lately from `leader` to `partitions` of `namespace` with a version above `after`, once this node
   * has the table at `epoch` (after which it applies nothing more from a replaced `leader`) and what it accepted from
   * `leader` before has committed. `newest`: the newest version applied here from `leader`.
   */
  async recentFrom(
    leader: string,
    namespace: string,
    epoch: number,
    partitions: readonly number[],
    after: number,
  ): Promise<{ keys: RecentKey[]; newest: number; complete: boolean }> {
    let table = this.catalog.find(namespace);
    if (!table || table.epoch < epoch) table = await this.catalog.refresh(namespace);
    // Below that epoch the old leader's calls could still be applied after this answer.
    if (!table || table.epoch < epoch) throw new UnavailableError(`${namespace} is not yet at epoch ${epoch} here`);
    await this.leaders.get(leader)?.chain;
    await this.engine.settle();
    // Range ids change as ranges split and merge: a range namespace answers for all its keys (the asker places them).
    const only = table.scheme === 'hash' ? new Set(partitions) : undefined;
    return { ...this.recent.from(leader, namespace, only, after), newest: this.recent.newestFrom(leader) };
  }

  private recentFromParams(p: Record<string, unknown>): Promise<unknown> {
    const { leader, namespace, epoch, partitions, after } = p;
    if (typeof leader !== 'string' || leader === '' || typeof namespace !== 'string' || namespace === '') {
      return Promise.reject(new InvalidArgumentError('repl.recent needs leader and namespace'));
    }
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) return Promise.reject(new InvalidArgumentError('epoch must be a non-negative integer'));
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < -1) return Promise.reject(new InvalidArgumentError('after must be an integer >= -1'));
    if (!Array.isArray(partitions) || partitions.length > 1_000_000 || !partitions.every((x) => Number.isInteger(x) && x >= 0)) {
      return Promise.reject(new InvalidArgumentError('partitions must be an array of partition numbers'));
    }
    return this.recentFrom(leader, namespace, epoch, partitions as number[], after);
  }

  /**
   * Whether this node heard from `leader` within `boundMs`: every write the leader acknowledged before then is
   * here (an in-sync follower acknowledges each write before the leader does).
   */
  heardWithin(leader: string, boundMs: number): boolean {
    const s = this.leaders.get(leader);
    return s !== undefined && !s.broken && Date.now() - s.lastHeard <= boundMs;
  }

  /**
   * How long ago (ms) each leader this node follows was last heard from, and whether its stream is broken (this
   * copy then waits to be copied afresh): the follower's lag as `shardflow status` shows it.
   */
  lagByLeader(): Record<string, { heardMsAgo: number; broken: boolean }> {
    const out: Record<string, { heardMsAgo: number; broken: boolean }> = {};
    const now = Date.now();
    for (const [leader, s] of this.leaders) out[leader] = { heardMsAgo: s.lastHeard === 0 ? -1 : now - s.lastHeard, broken: s.broken };
    return out;
  }

  /**
   * Checks the shape of every change and that `leader` leads, and this node follows, each partition named (once per
   * partition per call). Keys and values were validated by the leader when it took the write, so they are not again.
   */
  private async check(leader: string, epochs: Record<string, unknown>, entries: unknown[]): Promise<ReplicatedChange[]> {
    const tables = new Map<string, RoutingTable>();
    for (const [ns, epoch] of Object.entries(epochs)) {
      if (typeof epoch !== 'number') throw new InvalidArgumentError('epochs must be numbers');
      let table = this.catalog.find(ns);
      if (!table || table.epoch < epoch) table = await this.catalog.refresh(ns);
      if (!table) throw new UnavailableError(`namespace ${ns} is not known here`);
      tables.set(ns, table);
    }
    const out: ReplicatedChange[] = [];
    // Partitions already checked in this call, by namespace: their location, shared by their changes.
    const checked = new Map<string, Map<number, ReplicatedChange['location']>>();
    for (const raw of entries) {
      if (!Array.isArray(raw) || raw.length !== 6) throw new InvalidArgumentError('a change must be [ns, partition, key, deleted, value, version]');
      const [ns, partition, key, deleted, value, version] = raw as WireChange;
      if (typeof key !== 'string' || key === '') throw new InvalidArgumentError('a change needs a key');
      if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw new InvalidArgumentError('version must be a non-negative integer');
      let ofNs = typeof ns === 'string' ? checked.get(ns) : undefined;
      let location = ofNs?.get(partition);
      if (!location) {
        const table = typeof ns === 'string' ? tables.get(ns) : undefined;
        if (!table) throw new InvalidArgumentError(`change for namespace ${String(ns)} without its epoch`);
        if (typeof partition !== 'number' || table.ownerOf(partition) === undefined) throw new InvalidArgumentError(`bad partition ${String(partition)}`);
        if (table.ownerOf(partition) !== leader || !table.followersOf(partition).includes(this.nodeId)) {
          throw new StaleEpochError(`${leader} does not lead ${ns}/${partition} with ${this.nodeId} following at epoch ${table.epoch}`, {
            details: { namespace: ns, partition, epoch: table.epoch, owner: table.ownerOf(partition) ?? null },
          });
        }
        if (!ofNs) checked.set(ns, (ofNs = new Map()));
        ofNs.set(partition, (location = locationOf(table, partition)));
      }
      out.push({ location, key, deleted: deleted === 1, value: deleted === 1 ? undefined : value, version });
    }
    return out;
  }
}
