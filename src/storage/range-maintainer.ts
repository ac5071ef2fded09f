/**
 * Keeps the range partitions this node owns the right size: splits a range once it passes its namespace's
 * `splitBytes`, or serves more than `splitOps` requests per second for `splitOpsSustainMs`; merges two neighbouring
 * ranges of its own once together they hold less than a quarter of `splitBytes` and serve less than a quarter of
 * `splitOps`. Both are routing-only changes (one compare-and-set each): range keys are stored without their range id,
 * so the node already holds every key where the new table will look for it. Moving a range elsewhere, or next to a
 * neighbour on another node so the two can merge, is the driver's job (`migration/range-merge.ts`).
 *
 * Requests per range are counted by {@link RangeTraffic}, which the key-value service feeds; each pass folds the count
 * into a decaying rate (`partitioning/range-load.ts`, where the decisions themselves live).
 *
 *   range.stats { ns }               -> { epoch, ranges: [{ id, start, end, keys, bytes, opsPerSec, settled, moving }] }
 *   range.merge { ns, left, right }  -> { merged, epoch, reason? }   (both ranges must be this node's)
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { DEFAULT_SPLIT_OPS_SUSTAIN_MS } from '../keyspace/index.js';
import {
  chooseLoadSplitKey,
  chooseMerges,
  chooseSplitKey,
  isHot,
  observeLoad,
  shouldSplit,
  type LoadState,
  type RangeLoad,
} from '../partitioning/index.js';
import { InvalidArgumentError, UnknownMethodError, UnknownNamespaceError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import type { StorageEngine, Location } from './engine.js';

/** Keys read from a range to pick its middle: enough for a good median, cheap enough to do often. */
const SPLIT_SAMPLE_LIMIT = 200_000;
/** Half-life of the request rate: short, so that `splitOpsSustainMs` (not the smoothing) says how long heat must last. */
const RATE_HALF_LIFE_MS = 1000;
/** One request in this many has its key sampled: a random draw is cheaper than a string copy on every request. */
const SAMPLE_ONE_IN = 8;
/** Sampled keys kept per range (the most recent ones): a median of 512 is within a few percent of the real one. */
const SAMPLE_KEYS = 512;
/** Fewer sampled keys than this say too little about where traffic goes; a load split then cuts at the size median. */
const MIN_LOAD_SAMPLE = 32;
/** Merges one pass may make per namespace (each merge can enable the next: a run of empty ranges folds up). */
const MAX_MERGES_PER_PASS = 64;

interface Tally {
  ops: number;
  keys: string[];
  next: number;
}

/**
 * Requests per range since the last look, plus a sample of the keys they named. `record` is on every request's path,
 * so it does two map lookups and an increment, and samples one request in {@link SAMPLE_ONE_IN}.
 */
export class RangeTraffic {
  private readonly tallies = new Map<string, Map<number, Tally>>();

  /** Counts one request for `key` in range `partition` of `namespace`. */
  record(namespace: string, partition: number, key: string): void {
    let byRange = this.tallies.get(namespace);
    if (!byRange) this.tallies.set(namespace, (byRange = new Map()));
    let t = byRange.get(partition);
    if (!t) byRange.set(partition, (t = { ops: 0, keys: [], next: 0 }));
    t.ops++;
    if (Math.random() * SAMPLE_ONE_IN >= 1) return;
    if (t.keys.length < SAMPLE_KEYS) t.keys.push(key);
    else {
      t.keys[t.next] = key;
      t.next = (t.next + 1) % SAMPLE_KEYS;
    }
  }

  /** Requests counted since the last call, and starts counting again. */
  takeOps(namespace: string, partition: number): number {
    const t = this.tallies.get(namespace)?.get(partition);
    if (!t) return 0;
    const n = t.ops;
    t.ops = 0;
    return n;
  }

  /** The sampled keys of recent requests (a copy). */
  sample(namespace: string, partition: number): string[] {
    return [...(this.tallies.get(namespace)?.get(partition)?.keys ?? [])];
  }

  /** Drops a range's tally (split, merged away, or no longer owned here). */
  forget(namespace: string, partition?: number): void {
    if (partition === undefined) this.tallies.delete(namespace);
    else this.tallies.get(namespace)?.delete(partition);
  }
}

/** One owned range as `range.stats` reports it. */
export interface RangeStats {
  id: number;
  start: string;
  end: string | null;
  keys: number;
  bytes: number;
  opsPerSec: number;
  /** Watched for a full sustain window: its rate means something, and it may merge. */
  settled: boolean;
  moving: boolean;
}

export interface RangeMaintainerOptions {
  /** The request counter the key-value service feeds (default: a fresh one, fed by nobody). */
  traffic?: RangeTraffic;
  /** Whether this node is receiving a partition in a move: such a range is never merged (its import owns it). */
  receiving?: (namespace: string, partition: number) => boolean;
  /** The clock (ms); tests may pass their own. */
  now?: () => number;
  /**
   * Replicated ranges: holds the requests of `ranges`, commits what was accepted before and waits until `followers`
   * have applied it, resolving with the release — so that no write routed to a range merged away is committed, or
   * reaches a follower, after the merge (a follower no longer knows that range id). Without it replicated ranges
   * are not merged.
   */
  hold?: (namespace: string, ranges: number[], followers: readonly string[]) => Promise<() => void>;
}

type Bounds = { start: string; end: string | null };

/**
 * One per storage node: splits and merges the range partitions it owns (see the module comment), and answers
 * `range.stats` / `range.merge` for drivers.
 *
 * @example
 * ```ts
 * const maintainer = new RangeMaintainer('s1', engine, catalog, log, { traffic, receiving: (ns, p) => migrations.receiving(ns, p) });
 * catalog.onChange((table, name) => maintainer.onTable(table, name));
 * maintainer.start();
 * ```
 */
export class RangeMaintainer {
  readonly traffic: RangeTraffic;
  private timer: NodeJS.Timeout | undefined;
  private passing = false;
  /** Splits and merges run one at a time, whether from a pass or from a `range.merge` request. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Load per owned range, by namespace and range id. */
  private readonly loads = new Map<string, Map<number, LoadState>>();
  /** Bounds each owned range was last counted with: a range is recounted only when they change. */
  private readonly counted = new Map<string, Map<number, string>>();
  private readonly now: () => number;
  private readonly receiving: (namespace: string, partition: number) => boolean;
  private readonly hold: RangeMaintainerOptions['hold'];

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly log: Logger,
    options: RangeMaintainerOptions = {},
  ) {
    this.traffic = options.traffic ?? new RangeTraffic();
    this.now = options.now ?? Date.now;
    this.receiving = options.receiving ?? (() => false);
    this.hold = options.hold;
  }

  /** Checks every `intervalMs` (see {@link RangeMaintainer.checkAll}); the timer does not keep the process alive. */
  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.checkAll(), intervalMs);
    this.timer.unref();
  }

  /** Stops the checks; a pass already running finishes. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Follows a new table: recounts, from disk, each owned range that is new here or whose bounds changed (a split, a
   * merge, a range moved in), and forgets ranges no longer owned. Unchanged ranges keep their counters, which the
   * engine updates on every write, so a table change costs work only for the ranges it touched. (A write routed just
   * before a split and committed just after is counted under the old id; merges, where sizes decide, recount again
   * once such writes have landed.)
   */
  onTable(table: RoutingTable | undefined, name = table?.name): void {
    if (!table || table.scheme !== 'range') {
      if (name !== undefined) this.forgetNamespace(name);
      return;
    }
    const counted = mapOf(this.counted, table.name);
    const loads = mapOf(this.loads, table.name);
    const mine = new Set(table.partitionsOf(this.nodeId));
    // Followed ranges are counted too: a follower that takes over the lead decides splits and merges by them.
    const held = new Set([...mine, ...table.partitionsFollowedBy(this.nodeId)]);
    for (const id of [...counted.keys()]) if (!held.has(id)) counted.delete(id);
    for (const id of [...loads.keys()]) {
      if (mine.has(id)) continue;
      loads.delete(id);
      this.traffic.forget(table.name, id);
    }
    for (const id of held) {
      const r = table.range(id)!;
      const sig = JSON.stringify([r.start, r.end]);
      if (counted.get(id) === sig) continue;
      this.engine.recount({ namespace: table.name, partition: id }, { start: r.start, end: r.end });
      counted.set(id, sig);
    }
  }

  /** One pass over every range namespace: fold in traffic, split what is too large or too hot, merge what is small. */
  async checkAll(): Promise<void> {
    if (this.passing) return;
    this.passing = true;
    try {
      await this.exclusive(async () => {
        for (const name of this.catalog.names()) {
          const table = this.catalog.find(name);
          if (!table || table.scheme !== 'range') continue;
          const now = this.now();
          this.observe(table, now);
          try {
            await this.splitWhereNeeded(table, now);
            await this.mergeWhereNeeded(name, now);
          } catch (err) {
            // One namespace's trouble (the coordinator busy, say) must not hold up the others; the next pass retries.
            this.log.warn('range maintenance failed; will retry', { namespace: name, error: String(err) });
          }
        }
      });
    } catch (err) {
      this.log.warn('range maintenance pass failed; will retry', { error: String(err) });
    } finally {
      this.passing = false;
    }
  }

  /** Answers `range.*` requests (see the module comment). */
  async handle(method: string, raw: unknown): Promise<unknown> {
    if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError('parameters must be an object');
    const p = raw as Record<string, unknown>;
    if (typeof p.ns !== 'string') throw new InvalidArgumentError('ns (the namespace) must be a string');
    const ns = p.ns;
    switch (method) {
      case 'range.stats':
        return this.stats(ns);
      case 'range.merge': {
        if (typeof p.left !== 'number' || typeof p.right !== 'number') {
          throw new InvalidArgumentError('left and right (range ids) must be numbers');
        }
        const [left, right] = [p.left, p.right];
        return this.exclusive(async () => {
          // Read the newest table first: a range that just moved here must be seen as owned (and its import as
          // finished) before it can be merged. The merge may grow up to splitBytes: beyond that it would split again.
          const table = await this.catalog.refresh(ns);
          if (!table) throw new UnknownNamespaceError(`namespace ${JSON.stringify(ns)} does not exist`, { details: { namespace: ns } });
          return this.mergeOwned(ns, left, right, table.record.splitBytes!);
        });
      }
      default:
        throw new UnknownMethodError(`unknown method ${method}`);
    }
  }

  /** Size, traffic and state of each range of `namespace` this node owns. */
  stats(namespace: string): { epoch: number; ranges: RangeStats[] } {
    const table = this.catalog.find(namespace);
    if (!table) throw new UnknownNamespaceError(`namespace ${JSON.stringify(namespace)} does not exist`, { details: { namespace } });
    if (table.scheme !== 'range') throw new InvalidArgumentError(`${namespace} is a hash namespace; it has no ranges`);
    const now = this.now();
    const ranges = table.partitionsOf(this.nodeId).map((id): RangeStats => {
      const r = table.range(id)!;
      const c = this.engine.countersFor({ namespace, partition: id });
      const load = this.loads.get(namespace)?.get(id);
      return {
        id,
        start: r.start,
        end: r.end,
        keys: c.keys,
        bytes: c.bytes,
        opsPerSec: load?.rate ?? 0,
        settled: this.settled(table, load, now),
        moving: table.migrationOf(id) !== undefined,
      };
    });
    return { epoch: table.epoch, ranges };
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private forgetNamespace(name: string): void {
    this.counted.delete(name);
    this.loads.delete(name);
    this.traffic.forget(name);
  }

  private sustainMs(table: RoutingTable): number {
    return table.record.splitOpsSustainMs ?? DEFAULT_SPLIT_OPS_SUSTAIN_MS;
  }

  /** Watched for a full sustain window: before that its rate is a guess (just split, just arrived, node restarted). */
  private settled(table: RoutingTable, load: LoadState | undefined, now: number): boolean {
    return load !== undefined && now - load.since >= this.sustainMs(table);
  }

  private observe(table: RoutingTable, now: number): void {
    const loads = mapOf(this.loads, table.name);
    for (const id of table.partitionsOf(this.nodeId)) {
      const ops = this.traffic.takeOps(table.name, id);
      loads.set(id, observeLoad(loads.get(id), ops, now, { halfLifeMs: RATE_HALF_LIFE_MS, hotOps: table.record.splitOps }));
    }
  }

  private async splitWhereNeeded(table: RoutingTable, now: number): Promise<void> {
    for (const id of table.partitionsOf(this.nodeId)) {
      if (table.migrationOf(id)) continue; // never split a range while it moves
      const range = table.range(id)!;
      const location: Location = { namespace: table.name, partition: id };
      let at: string | undefined;
      let leftShare = 0.5;
      let reason: 'size' | 'load';
      if (shouldSplit(this.engine.countersFor(location).bytes, table.record.splitBytes!)) {
        reason = 'size';
        at = this.sizeMedian(location, range);
      } else if (isHot(this.loads.get(table.name)?.get(id), now, this.sustainMs(table))) {
        reason = 'load';
        const sample = this.traffic.sample(table.name, id);
        if (sample.length >= MIN_LOAD_SAMPLE) {
          const cut = chooseLoadSplitKey(sample, range);
          if (!cut) {
            this.log.debug('hot range has no key that divides its traffic', { namespace: table.name, range: id });
            continue;
          }
          [at, leftShare] = [cut.key, cut.leftShare];
        } else {
          at = this.sizeMedian(location, range); // too few sampled requests to say where the traffic is
        }
      } else {
        continue;
      }
      if (at !== undefined) await this.split(table, id, range, at, leftShare, reason, now);
    }
  }

  private sizeMedian(location: Location, range: Bounds): string | undefined {
    return chooseSplitKey(this.engine.keys(location, range, SPLIT_SAMPLE_LIMIT), range);
  }

  private async split(
    table: RoutingTable,
    rangeId: number,
    range: Bounds,
    at: string,
    leftShare: number,
    reason: 'size' | 'load',
    now: number,
  ): Promise<void> {
    const next = await this.catalog.update(table.name, (current) => {
      const r = current.range(rangeId);
      // The table may have changed since the decision: split only the same range, still here, and not moving (a
      // move copies a range by the bounds it had when it began).
      const same = r?.owner === this.nodeId && r.start === range.start && r.end === range.end;
      return same && !current.migrationOf(rangeId) ? current.withSplit(rangeId, at) : undefined;
    });
    if (next.epoch === table.epoch || next.range(rangeId)?.end !== at) return;
    const newId = next.place(at).partition;
    // Each half starts from its share of the traffic, with a fresh history: neither is hot (or mergeable) again until
    // it has been watched for a whole sustain window.
    const loads = mapOf(this.loads, table.name);
    const rate = loads.get(rangeId)?.rate ?? 0;
    const opts = { halfLifeMs: RATE_HALF_LIFE_MS, hotOps: next.record.splitOps };
    loads.set(rangeId, observeLoad(undefined, 0, now, opts, rate * leftShare));
    loads.set(newId, observeLoad(undefined, 0, now, opts, rate * (1 - leftShare)));
    this.traffic.forget(table.name, rangeId); // its sample mixes both halves
    this.log.info('split range', { namespace: table.name, range: rangeId, newRange: newId, at, reason, epoch: next.epoch });
  }

  private async mergeWhereNeeded(name: string, now: number): Promise<void> {
    for (let merges = 0; merges < MAX_MERGES_PER_PASS; ) {
      const table = this.catalog.find(name);
      if (!table || table.scheme !== 'range') return;
      const splitBytes = table.record.splitBytes!;
      const mergeBytes = Math.floor(splitBytes / 4);
      const loads = this.loads.get(name);
      const ranges = table.rangesFor('', null).map((r): RangeLoad => {
        const load = loads?.get(r.id);
        const mine = r.owner === this.nodeId;
        return {
          id: r.id,
          owner: r.owner,
          bytes: mine ? this.engine.countersFor({ namespace: name, partition: r.id }).bytes : 0,
          opsPerSec: load?.rate ?? 0,
          busy: !mine || !this.settled(table, load, now) || !!table.migrationOf(r.id) || this.receiving(name, r.id),
        };
      });
      const mergeOps = table.record.splitOps === undefined ? undefined : table.record.splitOps / 4;
      const pairs = chooseMerges(ranges, { mergeBytes, mergeOps, sameOwnerOnly: true });
      let merged = 0;
      for (const pair of pairs) {
        if ((await this.mergeOwned(name, pair.left, pair.right, mergeBytes)).merged) merged++;
      }
      if (merged === 0) return;
      merges += merged;
    }
  }

  /**
   * Merges two neighbouring ranges this node owns, if neither moves or is being received and, counted afresh from
   * disk, they hold fewer than `limitBytes` together. Callers hold the queue.
   */
  private async mergeOwned(
    name: string,
    left: number,
    right: number,
    limitBytes: number,
  ): Promise<{ merged: boolean; epoch: number; reason?: string }> {
    const table = this.catalog.find(name);
    if (!table || table.scheme !== 'range') throw new InvalidArgumentError(`${name} is not a range namespace`);
    const refuse = (reason: string) => ({ merged: false, epoch: table.epoch, reason });
    const l = table.range(left);
    const r = table.range(right);
    if (!l || !r) return refuse(`no range ${l ? right : left}`);
    if (l.owner !== this.nodeId || r.owner !== this.nodeId) return refuse(`both ranges must be owned by ${this.nodeId}`);
    if (l.end !== r.start) return refuse(`range ${right} does not follow range ${left}`);
    if (!sameFollowers(table, left, right)) return refuse('the ranges have different followers');
    if (table.migrationOf(left) || table.migrationOf(right) || this.receiving(name, left) || this.receiving(name, right)) {
      return refuse('a range is moving');
    }
    if (table.copies <= 1) return this.merge(name, table, left, right, limitBytes, refuse);
    if (!this.hold) return refuse('replicated ranges merge only with their requests held');
    let release: () => void;
    try {
      release = await this.hold(name, [left, right], table.followersOf(left));
    } catch (err) {
      return refuse(`the followers did not confirm every write: ${String(err)}`);
    }
    try {
      return await this.merge(name, table, left, right, limitBytes, refuse);
    } finally {
      release(); // after the catalog holds the outcome: held requests then go to the merged range
    }
  }

  private async merge(
    name: string,
    table: RoutingTable,
    left: number,
    right: number,
    limitBytes: number,
    refuse: (reason: string) => { merged: boolean; epoch: number; reason?: string },
  ): Promise<{ merged: boolean; epoch: number; reason?: string }> {
    const l = table.range(left)!;
    const r = table.range(right)!;
    // Writes routed before the last table change may still be committing under their old range id: let them land,
    // then count both ranges from disk, so the decision and the merged range's counters are exact.
    await this.engine.settle();
    const bytes =
      this.engine.recount({ namespace: name, partition: left }, l).bytes +
      this.engine.recount({ namespace: name, partition: right }, r).bytes;
    if (bytes >= limitBytes) return refuse(`together they hold ${bytes} bytes, not under ${limitBytes}`);
    const next = await this.catalog.update(name, (current) => {
      const cl = current.range(left);
      const cr = current.range(right);
      const unchanged = cl?.start === l.start && cl.end === l.end && cr?.start === r.start && cr.end === r.end;
      const mine = cl?.owner === this.nodeId && cr?.owner === this.nodeId;
      // withMerge refuses a moving range too; checking here turns that into "not now" rather than a failure.
      return unchanged && mine && sameFollowers(current, left, right) && !current.migrationOf(left) && !current.migrationOf(right)
        ? current.withMerge(left, right)
        : undefined;
    });
    if (next.range(right) !== undefined || next.range(left)?.end !== r.end) return refuse('the ranges changed meanwhile');
    await this.engine.settle(); // writes routed to `right` before the merge have landed; count them under `left`
    this.engine.recount({ namespace: name, partition: left }, next.range(left)!);
    const loads = mapOf(this.loads, name);
    const ll = loads.get(left);
    const rl = loads.get(right);
    if (ll) loads.set(left, { ...ll, rate: ll.rate + (rl?.rate ?? 0), hotSince: null });
    loads.delete(right);
    this.traffic.forget(name, right);
    this.log.info('merged ranges', { namespace: name, left, right, bytes, epoch: next.epoch });
    return { merged: true, epoch: next.epoch };
  }
}

/** Whether two ranges have the same followers (a merge keeps one range's copies, so both must be on the same nodes). */
function sameFollowers(table: RoutingTable, a: number, b: number): boolean {
  return [...table.followersOf(a)].sort().join() === [...table.followersOf(b)].sort().join();
}

function mapOf<V>(outer: Map<string, Map<number, V>>, name: string): Map<number, V> {
  let m = outer.get(name);
  if (!m) outer.set(name, (m = new Map()));
  return m;
}
