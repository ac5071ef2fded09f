/**
 * A namespace's routing table: which partition a key belongs to and which node owns that partition, versioned by an
 * epoch that grows with every change. It is what a client caches, a storage node checks requests against, and the
 * coordinator stores (one key per namespace, replaced by compare-and-set).
 *
 *   hash namespace:  partition = keySlot(key, slotCount); owners kept run-length encoded ([from, to, node] runs)
 *   range namespace: partition = id of the range holding the key (RangeMap, O(log n)); owner per range id
 */
import { keySlot, DEFAULT_SLOT_COUNT, RangeMap, replicaTargets, minInSync, type Range } from '../partitioning/index.js';
import { BusyError, InvalidArgumentError } from '../errors/index.js';

export type Scheme = 'hash' | 'range';

/** Options a namespace is created with. */
export interface NamespaceOptions {
  scheme: Scheme;
  /** Hash namespaces: number of slots (default 4096). */
  slotCount?: number;
  /**
   * Range namespaces: a range larger than this many bytes is split (default 64 MiB). Two neighbouring ranges that
   * together hold less than a quarter of it (and are not busy) are merged.
   */
  splitBytes?: number;
  /**
   * Range namespaces: a range serving more than this many requests per second for `splitOpsSustainMs` is split where
   * it halves the traffic (default: no split on load).
   */
  splitOps?: number;
  /**
   * Range namespaces: how long a range must stay above `splitOps` before it is split, and how long a range must have
   * been watched before it may merge (default 10 s).
   */
  splitOpsSustainMs?: number;
  /**
   * Range namespaces: whether the cluster merges small neighbouring ranges on different nodes by itself, moving the
   * smaller to its neighbour's node(s) first (default true). `false` leaves those to `shardflow rebalance`;
   * neighbours on one node always merge.
   */
  autoMerge?: boolean;
  /**
   * How many copies of each partition (hash slot or key range) to keep, on distinct storage nodes (1 to 7; the
   * client's `createNamespace` defaults it to 3 when 3 or more storage nodes are ready, else 1). One copy leads and
   * takes writes; a write is acknowledged once every in-sync copy holds it, and refused while fewer than a majority
   * of `copies` are in sync.
   */
  copies?: number;
}

/** Most copies a partition may have. */
export const MAX_COPIES = 7;

export const DEFAULT_SPLIT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SPLIT_OPS_SUSTAIN_MS = 10_000;

/** The stored form, as JSON in the coordinator. */
export interface RoutingRecord {
  name: string;
  scheme: Scheme;
  epoch: number;
  createdAt: string;
  slotCount?: number;
  /** Hash: runs of consecutive slots with one owner (the leader), `[firstSlot, lastSlotInclusive, nodeId]`. */
  slotRuns?: [number, number, string][];
  /** Configured copies per partition (absent: 1). */
  copies?: number;
  /**
   * Hash, with copies > 1: the in-sync followers of each slot as runs `[firstSlot, lastSlotInclusive, "s2,s3"]`
   * (empty string: none). Together with the leader they are the partition's in-sync replicas: every acknowledged
   * write is on each of them, so any one can take over the lead.
   */
  followerRuns?: [number, number, string][];
  splitBytes?: number;
  /** Range: requests per second above which a range is split on load (absent: never). */
  splitOps?: number;
  /** Range: how long a range must be hot before a load split (absent: {@link DEFAULT_SPLIT_OPS_SUSTAIN_MS}). */
  splitOpsSustainMs?: number;
  /** Range: false when small neighbours on different nodes are merged only by `rebalance` (absent: automatically). */
  autoMerge?: boolean;
  /** Range: the ranges in key order with their owner (the leader) and, with copies > 1, their in-sync followers. */
  ranges?: RangeEntry[];
  /** Range: the next unused range id. */
  nextRangeId?: number;
  /**
   * Moves in progress, by partition. Kept in the same record as the owners so that a move's cutover (new owner,
   * entry gone) and its abort (entry gone) are each one compare-and-set on one key: never both, never half.
   */
  migrations?: Record<string, MigrationEntry>;
}

/** A range as the record keeps it. */
export type RangeEntry = Range & { owner: string; followers?: string[] };

/** A partition being moved: to which node, under which job id. */
export interface MigrationEntry {
  to: string;
  job: string;
  startedAt: string;
  /** A copy, not a move: the target joins the in-sync followers and the owner keeps the partition. */
  copy?: boolean;
}

/** Where a key lives inside the storage engine. */
export interface KeyPlace {
  partition: number;
  /** The hash slot (hash namespaces only). */
  slot?: number;
}

export class RoutingTable {
  private constructor(
    readonly record: RoutingRecord,
    private readonly owners: Map<number, string>,
    private readonly rangeMap: RangeMap | undefined,
    private readonly followers: Map<number, readonly string[]> = new Map(),
  ) {}

  get name(): string {
    return this.record.name;
  }
  get scheme(): Scheme {
    return this.record.scheme;
  }
  get epoch(): number {
    return this.record.epoch;
  }
  /** Configured copies of each partition (1: no followers). */
  get copies(): number {
    return this.record.copies ?? 1;
  }
  /** In-sync copies a write needs before it is acknowledged (a majority of {@link copies}). */
  get minInSync(): number {
    return minInSync(this.copies);
  }

  /** Builds the first table of a namespace; `assign` places the partitions on nodes. */
  static create(
    name: string,
    options: NamespaceOptions,
    assign: (partitions: number[]) => Map<number, string>,
    /** The storage nodes to place followers on (default: the nodes `assign` chose). */
    nodes?: readonly string[],
  ): RoutingTable {
    const createdAt = new Date().toISOString();
    const copies = options.copies ?? 1;
    if (!Number.isInteger(copies) || copies < 1 || copies > MAX_COPIES) {
      throw new InvalidArgumentError(`copies must be an integer from 1 to ${MAX_COPIES}, not ${copies}`);
    }
    if (options.scheme === 'hash') {
      const slotCount = options.slotCount ?? DEFAULT_SLOT_COUNT;
      if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > 65536) {
        throw new InvalidArgumentError(`slotCount must be an integer from 1 to 65536, not ${slotCount}`);
      }
      const owners = assign(Array.from({ length: slotCount }, (_, i) => i));
      const record: RoutingRecord = { name, scheme: 'hash', epoch: 1, createdAt, slotCount, slotRuns: encodeRuns(owners, slotCount) };
      if (copies > 1) {
        const places = nodes ?? [...new Set(owners.values())];
        const followers = new Map([...owners].map(([p, leader]) => [p, replicaTargets(p, places, [leader], copies - 1)]));
        record.copies = copies;
        record.followerRuns = encodeFollowerRuns(followers, slotCount);
      }
      return RoutingTable.fromRecord(record);
    }
    if (options.scheme === 'range') {
      const splitBytes = options.splitBytes ?? DEFAULT_SPLIT_BYTES;
      if (!Number.isInteger(splitBytes) || splitBytes < 1024) {
        throw new InvalidArgumentError(`splitBytes must be an integer of at least 1024, not ${splitBytes}`);
      }
      const { splitOps, splitOpsSustainMs } = options;
      if (splitOps !== undefined && (!Number.isInteger(splitOps) || splitOps < 1)) {
        throw new InvalidArgumentError(`splitOps must be an integer of at least 1, not ${splitOps}`);
      }
      if (
        splitOpsSustainMs !== undefined &&
        (!Number.isInteger(splitOpsSustainMs) || splitOpsSustainMs < 1000 || splitOpsSustainMs > 3_600_000)
      ) {
        throw new InvalidArgumentError(`splitOpsSustainMs must be an integer from 1000 to 3600000, not ${splitOpsSustainMs}`);
      }
      if (options.autoMerge !== undefined && typeof options.autoMerge !== 'boolean') {
        throw new InvalidArgumentError(`autoMerge must be true or false, not ${JSON.stringify(options.autoMerge)}`);
      }
      const owner = assign([0]).get(0)!;
      const followers = copies > 1 ? replicaTargets(0, nodes ?? [owner], [owner], copies - 1) : [];
      return RoutingTable.fromRecord({
        name,
        scheme: 'range',
        epoch: 1,
        createdAt,
        splitBytes,
        ...(splitOps !== undefined ? { splitOps } : {}),
        ...(splitOpsSustainMs !== undefined ? { splitOpsSustainMs } : {}),
        ...(options.autoMerge === false ? { autoMerge: false } : {}),
        ...(copies > 1 ? { copies } : {}),
        ranges: [rangeEntry({ id: 0, start: '', end: null }, owner, followers)],
        nextRangeId: 1,
      });
    }
    throw new InvalidArgumentError(`unknown partitioning scheme ${JSON.stringify(options.scheme)}: use hash or range`);
  }

  static fromRecord(record: RoutingRecord): RoutingTable {
    if (record.scheme === 'hash') {
      const owners = new Map<number, string>();
      for (const [from, to, node] of record.slotRuns ?? []) for (let s = from; s <= to; s++) owners.set(s, node);
      if (owners.size !== record.slotCount) throw new InvalidArgumentError(`routing table of ${record.name} is incomplete`);
      const followers = new Map<number, readonly string[]>();
      for (const [from, to, list] of record.followerRuns ?? []) {
        if (list === '') continue;
        const ids = Object.freeze(list.split(','));
        for (let s = from; s <= to; s++) followers.set(s, ids);
      }
      return new RoutingTable(record, owners, undefined, followers);
    }
    const ranges = record.ranges ?? [];
    const map = new RangeMap(ranges.map(({ id, start, end }) => ({ id, start, end })));
    const followers = new Map<number, readonly string[]>();
    for (const r of ranges) if (r.followers && r.followers.length > 0) followers.set(r.id, Object.freeze([...r.followers]));
    return new RoutingTable(record, new Map(ranges.map((r) => [r.id, r.owner])), map, followers);
  }

  /** Partition (and slot) of a key. */
  place(key: string): KeyPlace {
    if (this.rangeMap) return { partition: this.rangeMap.lookup(key).id };
    const slot = keySlot(key, this.record.slotCount);
    return { partition: slot, slot };
  }

  ownerOf(partition: number): string | undefined {
    return this.owners.get(partition);
  }

  /** The in-sync followers of a partition (not the leader); empty with one copy. */
  followersOf(partition: number): readonly string[] {
    return this.followers.get(partition) ?? NO_FOLLOWERS;
  }

  /** Whether `nodeId` holds an in-sync copy of the partition, as leader or follower. */
  holds(partition: number, nodeId: string): boolean {
    return this.owners.get(partition) === nodeId || this.followersOf(partition).includes(nodeId);
  }

  /** The partitions `nodeId` follows (holds a copy of without leading). */
  partitionsFollowedBy(nodeId: string): number[] {
    const out: number[] = [];
    for (const [p, list] of this.followers) if (list.includes(nodeId)) out.push(p);
    return out.sort((a, b) => a - b);
  }

  /** Every partition id with its owner. */
  assignment(): Map<number, string> {
    return new Map(this.owners);
  }

  partitions(): number[] {
    return [...this.owners.keys()].sort((a, b) => a - b);
  }

  /** The partitions a node owns. */
  partitionsOf(nodeId: string): number[] {
    return this.partitions().filter((p) => this.owners.get(p) === nodeId);
  }

  /** Range namespaces: the ranges a scan of `[from, to)` visits, in order, with owners. */
  rangesFor(from: string, to: string | null): (Range & { owner: string })[] {
    if (!this.rangeMap) throw new InvalidArgumentError(`${this.name} is a hash namespace; it has no key ranges`);
    return this.rangeMap.rangesOverlapping(from, to).map((r) => ({ ...r, owner: this.owners.get(r.id)! }));
  }

  /** Range namespaces: the range with this id. */
  range(id: number): RangeEntry | undefined {
    const r = this.record.ranges?.find((x) => x.id === id);
    return r;
  }

  /** A new table (next epoch) with some partitions given to other nodes. */
  withOwners(changes: Map<number, string>): RoutingTable {
    const owners = new Map(this.owners);
    const followers = new Map(this.followers);
    for (const [p, node] of changes) {
      if (!owners.has(p)) throw new InvalidArgumentError(`${this.name} has no partition ${p}`);
      owners.set(p, node);
      // The new leader no longer counts as a follower: copies stay on distinct nodes (re-replication restores the count).
      const list = followers.get(p);
      if (list?.includes(node)) followers.set(p, list.filter((n) => n !== node));
    }
    const record: RoutingRecord = { ...this.record, epoch: this.epoch + 1 };
    if (record.migrations) {
      const left = Object.entries(record.migrations).filter(([p]) => !changes.has(Number(p)));
      record.migrations = Object.fromEntries(left);
    }
    return this.rebuilt(record, owners, followers);
  }

  /** `record` with the owners and followers written in this scheme's form. */
  private rebuilt(record: RoutingRecord, owners: Map<number, string>, followers: Map<number, readonly string[]>): RoutingTable {
    if (this.scheme === 'hash') {
      record.slotRuns = encodeRuns(owners, this.record.slotCount!);
      if (this.copies > 1) record.followerRuns = encodeFollowerRuns(followers, this.record.slotCount!);
    } else {
      record.ranges = this.record.ranges!.map((r) => rangeEntry(r, owners.get(r.id)!, this.copies > 1 ? followers.get(r.id) : undefined));
    }
    return RoutingTable.fromRecord(record);
  }

  /**
   * A new table (next epoch) with the in-sync followers of some partitions replaced: a leader dropping a follower
   * that fell behind, a copy joining, the controller removing a dead node. Move entries are kept.
   */
  withFollowers(changes: Map<number, readonly string[]>): RoutingTable {
    const followers = new Map(this.followers);
    for (const [p, list] of changes) {
      const leader = this.owners.get(p);
      if (leader === undefined) throw new InvalidArgumentError(`${this.name} has no partition ${p}`);
      if (list.includes(leader) || new Set(list).size !== list.length) {
        throw new InvalidArgumentError(`${this.name}/${p}: followers must be distinct and not the leader`);
      }
      followers.set(p, [...list]);
    }
    return this.rebuilt({ ...this.record, epoch: this.epoch + 1 }, this.owners, followers);
  }

  /**
   * Failover: a new table (next epoch) in which each of `changes` leads its partition, taken out of the followers,
   * and the `dead` nodes are gone from every follower list. Moves of the partitions whose leader changes, and moves
   * to a dead node, are dropped from the record (their source or target is gone; they roll back). The caller picks
   * new leaders among the in-sync followers.
   */
  withFailover(dead: ReadonlySet<string>, changes: Map<number, string>): RoutingTable {
    const owners = new Map(this.owners);
    const followers = new Map(this.followers);
    for (const [p, leader] of changes) {
      if (!(this.followersOf(p).includes(leader))) {
        throw new InvalidArgumentError(`${this.name}/${p}: ${leader} is not an in-sync follower and cannot take over`);
      }
      owners.set(p, leader);
    }
    for (const [p, list] of followers) {
      const next = list.filter((n) => !dead.has(n) && n !== owners.get(p));
      if (next.length !== list.length) followers.set(p, next);
    }
    const record: RoutingRecord = { ...this.record, epoch: this.epoch + 1 };
    if (record.migrations) {
      const left = Object.entries(record.migrations).filter(([p, m]) => !changes.has(Number(p)) && !dead.has(m.to));
      record.migrations = Object.fromEntries(left);
    }
    return this.rebuilt(record, owners, followers);
  }

  /**
   * Lead handoffs: a new table (next epoch) in which each of `changes` — an in-sync follower of its partition —
   * leads it, and the old leader follows in its place (no copy moves; the old leader has held the partition's
   * requests until its followers held every write it committed). Throws if a new leader is not an in-sync follower
   * or the partition is moving.
   */
  withLeadsHandedOff(changes: Map<number, string>): RoutingTable {
    const owners = new Map(this.owners);
    const followers = new Map(this.followers);
    for (const [p, to] of changes) {
      const from = this.owners.get(p);
      if (from === undefined) throw new InvalidArgumentError(`${this.name} has no partition ${p}`);
      const list = this.followersOf(p);
      if (!list.includes(to)) throw new InvalidArgumentError(`${this.name}/${p}: ${to} is not an in-sync follower and cannot take the lead`);
      if (this.migrationOf(p)) throw new InvalidArgumentError(`${this.name}/${p} is moving`);
      owners.set(p, to);
      followers.set(p, list.map((f) => (f === to ? from : f)));
    }
    return this.rebuilt({ ...this.record, epoch: this.epoch + 1 }, owners, followers);
  }

  /**
   * A copy's cutover: a new table (next epoch) with `to` among the in-sync followers of `partitions` and their move
   * entries cleared (one CAS: the copy joins, or — if the entry is gone — nothing happens). With `replacing`, that
   * follower leaves in the same CAS (a follower copy moved to another node; the old one then drops its data).
   */
  withCopiesJoined(partitions: number[], to: string, replacing?: string): RoutingTable {
    const changes = new Map<number, readonly string[]>();
    for (const p of partitions) {
      const list = this.followersOf(p).filter((f) => f !== replacing);
      if (this.ownerOf(p) !== to && !list.includes(to)) changes.set(p, [...list, to]);
    }
    const next = this.withFollowers(changes);
    const migrations = Object.fromEntries(Object.entries(this.record.migrations ?? {}).filter(([p]) => !partitions.includes(Number(p))));
    return RoutingTable.fromRecord({ ...next.record, migrations });
  }

  /** The move in progress for a partition, if any. */
  migrationOf(partition: number): MigrationEntry | undefined {
    return this.record.migrations?.[String(partition)];
  }

  /** A new table (same epoch: routing does not change) recording, or with `undefined` clearing, a partition's move. */
  withMigration(partition: number, entry: MigrationEntry | undefined): RoutingTable {
    if (!this.owners.has(partition)) throw new InvalidArgumentError(`${this.name} has no partition ${partition}`);
    const migrations = { ...(this.record.migrations ?? {}) };
    if (entry) migrations[String(partition)] = entry;
    else delete migrations[String(partition)];
    return RoutingTable.fromRecord({ ...this.record, migrations });
  }

  /**
   * Rolls back moves: a new table without the move entries of `partitions` that still name `job`, or undefined when
   * none does (a finished or already rolled-back move) — the shape `Catalog.update` takes, so a rollback is one CAS
   * that never clears another job's entry.
   */
  withoutMoves(job: string, partitions: number[]): RoutingTable | undefined {
    let next: RoutingTable | undefined;
    for (const p of partitions) if ((next ?? this).migrationOf(p)?.job === job) next = (next ?? this).withMigration(p, undefined);
    return next;
  }

  /**
   * Range namespaces: a new table (next epoch) with `rangeId` split at `atKey`; both halves keep the owner and the
   * followers (every copy holds the keys of both: keys are stored without their range id).
   */
  withSplit(rangeId: number, atKey: string): RoutingTable {
    if (!this.rangeMap) throw new InvalidArgumentError(`${this.name} is a hash namespace; it cannot split ranges`);
    const newId = this.record.nextRangeId ?? 1;
    const map = this.rangeMap.split(rangeId, atKey, newId);
    const at = (id: number) => (id === newId ? rangeId : id);
    const ranges = map.ranges().map((r) => rangeEntry(r, this.owners.get(at(r.id))!, this.followers.get(at(r.id))));
    return RoutingTable.fromRecord({ ...this.record, epoch: this.epoch + 1, ranges, nextRangeId: newId + 1 });
  }

  /**
   * Range namespaces: a new table (next epoch) with range `rightId` joined onto `leftId`, the range right before it.
   * The merged range keeps `leftId` and the owner both had. Like a split it is routing only: range keys are stored
   * without their range id, so the owner already holds the merged range's data where it will look for it.
   *
   * @throws InvalidArgumentError for a hash namespace, a range that does not exist, `rightId` not immediately after
   *   `leftId`, or two different owners or sets of followers (co-locate them with a move first).
   * @throws BusyError if either range is moving: a move copies a range by its bounds, which must not change under it.
   */
  withMerge(leftId: number, rightId: number): RoutingTable {
    if (!this.rangeMap) throw new InvalidArgumentError(`${this.name} is a hash namespace; it cannot merge ranges`);
    const left = this.range(leftId);
    const right = this.range(rightId);
    if (!left || !right) {
      throw new InvalidArgumentError(`${this.name} has no range ${left ? rightId : leftId}`, { details: { leftId, rightId } });
    }
    if (left.end === null || left.end !== right.start) {
      throw new InvalidArgumentError(`${this.name}: range ${rightId} does not immediately follow range ${leftId}`, {
        details: { leftId, rightId },
      });
    }
    if (left.owner !== right.owner) {
      throw new InvalidArgumentError(`${this.name}: ranges ${leftId} and ${rightId} have different owners`, {
        details: { leftId, rightId, leftOwner: left.owner, rightOwner: right.owner },
      });
    }
    if ([...this.followersOf(leftId)].sort().join() !== [...this.followersOf(rightId)].sort().join()) {
      throw new InvalidArgumentError(`${this.name}: ranges ${leftId} and ${rightId} have different followers`, {
        details: { leftId, rightId, leftFollowers: this.followersOf(leftId), rightFollowers: this.followersOf(rightId) },
      });
    }
    const moving = [leftId, rightId].filter((id) => this.migrationOf(id));
    if (moving.length > 0) {
      throw new BusyError(`${this.name}: range ${moving[0]} is moving; merge it once the move has ended`, {
        details: { namespace: this.name, moving },
      });
    }
    const map = this.rangeMap.merge(leftId, rightId);
    const ranges = map.ranges().map((r) => rangeEntry(r, this.owners.get(r.id)!, this.followers.get(r.id)));
    return RoutingTable.fromRecord({ ...this.record, epoch: this.epoch + 1, ranges });
  }
}

const NO_FOLLOWERS: readonly string[] = Object.freeze([]);

/** A range's stored form: its bounds, owner and (when it has any) followers. */
function rangeEntry(r: Range, owner: string, followers: readonly string[] | undefined): RangeEntry {
  const entry: RangeEntry = { id: r.id, start: r.start, end: r.end, owner };
  if (followers && followers.length > 0) entry.followers = [...followers];
  return entry;
}

function encodeFollowerRuns(followers: Map<number, readonly string[]>, slotCount: number): [number, number, string][] {
  const runs: [number, number, string][] = [];
  for (let s = 0; s < slotCount; s++) {
    const list = (followers.get(s) ?? NO_FOLLOWERS).join(',');
    const last = runs[runs.length - 1];
    if (last && last[2] === list && last[1] === s - 1) last[1] = s;
    else runs.push([s, s, list]);
  }
  return runs;
}

function encodeRuns(owners: Map<number, string>, slotCount: number): [number, number, string][] {
  const runs: [number, number, string][] = [];
  for (let s = 0; s < slotCount; s++) {
    const node = owners.get(s);
    if (node === undefined) throw new InvalidArgumentError(`slot ${s} has no owner`);
    const last = runs[runs.length - 1];
    if (last && last[2] === node && last[1] === s - 1) last[1] = s;
    else runs.push([s, s, node]);
  }
  return runs;
}
