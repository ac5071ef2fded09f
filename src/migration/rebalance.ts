/**
 * Rebalance: the planner's fewest moves that restore balance over the ready storage nodes, for every namespace,
 * carried out by {@link movePartition} a few at a time, at a copy rate that yields to the foreground: the rate is
 * shared by the moves in flight and halves whenever the storage nodes' p99 rises past a multiple of its baseline
 * (autoscale/RateController), recovering gradually after.
 */
import { planAssignment, planLeaderHandoffs, planReplicaMoves, type Move, type ReplicaSet } from '../partitioning/index.js';
import { RateController } from '../autoscale/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import { moveBatch, type MoveBatch, type MoveContext, type MoveResult } from './mover.js';
import { canHandOff, handOffLeads } from './lead-handoff.js';
import type { JobRecord } from './jobs.js';
import type { RoutingTable } from '../keyspace/index.js';

export interface PlannedMove extends Move {
  namespace: string;
  /** The partition's size, when known: batches are cut to a size as well as a count. */
  bytes?: number;
  /**
   * `follower`: a follower copy moves from `from` to `to` (copied from the partition's leader; `from` leaves at the
   * switch). `lead`: the lead passes from `from` to `to`, already an in-sync follower — nothing is copied.
   * Otherwise the partition's leader copy moves.
   */
  role?: 'leader' | 'follower' | 'lead';
}

export interface RunOptions {
  /** Jobs (batches of partitions) run at once (default 4). */
  concurrency?: number;
  /** Most partitions per job (default 64). */
  batchPartitions?: number;
  /** Most bytes per job (default 64 MiB; a larger partition goes alone). */
  batchBytes?: number;
  /** The most bytes per second all moves together may copy (default: no limit of our own). */
  maxBytesPerSec?: number;
  /**
   * Back off when the foreground p99 exceeds this multiple of its value before the moves began (default 3; 0 turns
   * backing off off). Needs `sampleP99`.
   */
  maxP99Ratio?: number;
  /** Measures the foreground p99 (ms) over the last second; called once a second. */
  sampleP99?: () => Promise<number>;
  /** A job finished; `done` and `total` count partitions. */
  onMoved?: (r: MoveResult, done: number, total: number) => void;
  /** A move in flight made progress. */
  onProgress?: (job: JobRecord) => void;
  /** The shared rate changed (after a latency sample), with why. */
  onRate?: (bytesPerSec: number | undefined, reason: string) => void;
}

/** With no limit given, backing off starts from this rate (more than this 2-core VM moves; bench:rebalance). */
const UNLIMITED_BYTES_PER_SEC = 64 * 1024 * 1024;
const log = createLogger('migration');

/**
 * The moves that balance every namespace over `nodes` (default: the ready storage nodes). Pass the nodes that will
 * remain to plan a drain.
 */
export function planRebalance(ctx: Pick<MoveContext, 'catalog' | 'members'>, nodes?: { id: string; capacity: number }[]): PlannedMove[] {
  const over = nodes ?? ctx.members.ready('storage').map((m) => ({ id: m.id, capacity: m.capacity }));
  if (over.length === 0) throw new InvalidArgumentError('no storage node to balance over');
  const moves: PlannedMove[] = [];
  for (const name of ctx.catalog.names()) {
    const table = ctx.catalog.table(name);
    if (table.copies > 1) {
      // Every copy is placed, not only the leader: a node's disk holds its followers' data too.
      const sets = replicaSetsOf(table);
      const copyMoves = planReplicaMoves(sets, over);
      for (const m of copyMoves) moves.push({ ...m, namespace: name });
      // Then leaders even out among the copies where they will be: lead handoffs, nothing copied.
      for (const h of planLeaderHandoffs(afterMoves(sets, copyMoves), over)) moves.push({ ...h, namespace: name, role: 'lead', bytes: 0 });
      continue;
    }
    const plan = planAssignment(table.assignment(), table.partitions(), over);
    for (const m of plan.moves) moves.push({ ...m, namespace: name });
  }
  return moves;
}

/** Every partition's leader and in-sync followers now: what the replica and leader planners take. */
export function replicaSetsOf(table: RoutingTable): Map<number, ReplicaSet> {
  return new Map(table.partitions().map((p) => [p, { leader: table.ownerOf(p)!, followers: table.followersOf(p) }]));
}

/** Replica sets as they will be once `moves` (in plan order) have run. */
function afterMoves(sets: ReadonlyMap<number, ReplicaSet>, moves: readonly { partition: number; from: string; to: string }[]): Map<number, ReplicaSet> {
  const out = new Map<number, ReplicaSet>(sets);
  for (const m of moves) {
    const s = out.get(m.partition)!;
    out.set(m.partition, s.leader === m.from ? { ...s, leader: m.to } : { ...s, followers: s.followers.map((f) => (f === m.from ? m.to : f)) });
  }
  return out;
}

/**
 * Groups moves into jobs: partitions of one namespace with the same source and target, up to `maxPartitions` and
 * `maxBytes` per job, in plan order.
 */
export function batchMoves(moves: PlannedMove[], maxPartitions = 64, maxBytes = 64 * 1024 * 1024): MoveBatch[] {
  const open = new Map<string, { batch: MoveBatch; bytes: number }>();
  const out: MoveBatch[] = [];
  for (const m of moves) {
    if (m.from === undefined || m.from === null) throw new InvalidArgumentError(`${m.namespace}/${m.partition} has no owner to move it from`);
    const key = `${m.namespace}\u0000${m.from}\u0000${m.to}\u0000${m.role ?? 'leader'}`;
    let cur = open.get(key);
    const bytes = m.bytes ?? 0;
    if (cur && (cur.batch.partitions.length >= maxPartitions || cur.bytes + bytes > maxBytes)) cur = undefined;
    if (!cur) {
      // A follower batch names the follower that leaves; runMoves copies from each partition's leader of the moment.
      const batch: MoveBatch = {
        namespace: m.namespace,
        from: m.from,
        to: m.to,
        partitions: [],
        ...(m.role === 'follower' ? { copy: true, replace: m.from } : m.role === 'lead' ? { lead: true } : {}),
      };
      const fresh = { batch, bytes: 0 };
      open.set(key, fresh);
      out.push(fresh.batch);
      cur = fresh;
    }
    cur.batch.partitions.push(m.partition);
    cur.bytes += bytes;
  }
  return out;
}

/**
 * Carries out moves in jobs of several partitions ({@link batchMoves}), `concurrency` jobs at a time, and resolves
 * with every job's result. A partition with two moves in the plan (a replicated partition can have a copy leave a
 * drained node and another balance) gets them in plan order: the moves run in rounds, a partition's n-th move in
 * round n. After a failure no new job starts; the ones in flight finish (each either completes or rolls back), then
 * the first failure is thrown with the results so far in `completed`.
 */
export async function runMoves(ctx: MoveContext, moves: PlannedMove[], options: RunOptions = {}): Promise<MoveResult[]> {
  const results: MoveResult[] = [];
  const state = { failure: undefined as unknown, active: 0, done: 0 };
  const rate = await startRateControl(options);
  const share = () => (rate.bytesPerSec === undefined ? undefined : Math.max(1, rate.bytesPerSec / Math.max(1, state.active)));
  try {
    for (const round of rounds(moves)) {
      if (state.failure !== undefined) break;
      const batches = batchMoves(round, options.batchPartitions, options.batchBytes);
      let next = 0;
      const workers = Array.from({ length: Math.max(1, options.concurrency ?? 4) }, async () => {
        while (next < batches.length && state.failure === undefined) {
          for (const b of await current(ctx, batches[next++]!, (skipped) => (state.done += skipped))) {
            state.active++;
            try {
              const r = b.lead ? await handOffLeads(ctx, b) : await moveBatch(ctx, b, { bytesPerSec: share, onProgress: options.onProgress });
              results.push(r);
              state.done += r.partitions.length;
              options.onMoved?.(r, state.done, moves.length);
            } catch (err) {
              state.failure ??= err;
            } finally {
              state.active--;
            }
            if (state.failure !== undefined) break;
          }
        }
      });
      await Promise.all(workers);
    }
  } finally {
    rate.stop();
  }
  if (state.failure !== undefined) {
    if (state.failure instanceof Error) Object.assign(state.failure, { completed: results });
    throw state.failure;
  }
  return results;
}

/** The moves split into rounds: each partition's n-th move in round n, plan order kept within a round. */
function rounds(moves: PlannedMove[]): PlannedMove[][] {
  const seen = new Map<string, number>();
  const out: PlannedMove[][] = [];
  for (const m of moves) {
    const key = `${m.namespace}\u0000${m.partition}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    (out[n] ??= []).push(m);
  }
  return out;
}

/**
 * A planned job as the table is now. The plan may be older than the table: a range merged or split away, a partition
 * moved by someone else, a follower dropped — those are no longer this plan's to move, and are skipped rather than
 * failing the run. A follower job becomes one job per current leader (the copy's source).
 */
async function current(ctx: MoveContext, planned: MoveBatch, onSkipped: (n: number) => void): Promise<MoveBatch[]> {
  const table = await ctx.catalog.refresh(planned.namespace);
  let out: MoveBatch[];
  if (planned.lead) {
    out = [{ ...planned, partitions: planned.partitions.filter((p) => table !== undefined && canHandOff(table, p, planned.from, planned.to)) }];
  } else if (planned.replace === undefined) {
    out = [{ ...planned, partitions: planned.partitions.filter((p) => table?.ownerOf(p) === planned.from) }];
  } else {
    const byLeader = new Map<string, number[]>();
    for (const p of planned.partitions) {
      if (!table || !table.followersOf(p).includes(planned.replace) || table.holds(p, planned.to)) continue;
      const leader = table.ownerOf(p)!;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    }
    out = [...byLeader].map(([leader, partitions]) => ({ ...planned, from: leader, partitions }));
  }
  out = out.filter((b) => b.partitions.length > 0);
  const skipped = planned.partitions.length - out.reduce((n, b) => n + b.partitions.length, 0);
  if (skipped > 0) {
    log.info('skipping planned moves the table no longer matches', { namespace: planned.namespace, from: planned.from, skipped });
    onSkipped(skipped);
  }
  return out;
}

interface RateControl {
  readonly bytesPerSec: number | undefined;
  stop(): void;
}

async function startRateControl(options: RunOptions): Promise<RateControl> {
  const limit = options.maxBytesPerSec;
  if (limit !== undefined && (!Number.isFinite(limit) || limit <= 0)) throw new InvalidArgumentError('maxBytesPerSec must be > 0');
  const ratio = options.maxP99Ratio ?? 3;
  if (!options.sampleP99 || ratio === 0) return { bytesPerSec: limit, stop: () => undefined };
  const sample = options.sampleP99;
  const baseline = Math.max(1, await sample().catch(() => 0));
  const max = limit ?? UNLIMITED_BYTES_PER_SEC;
  const controller = new RateController({
    maxBytesPerSec: max,
    minBytesPerSec: Math.max(64 * 1024, max / 64),
    initialBytesPerSec: max,
    baselineP99Ms: baseline,
    maxP99Ratio: ratio,
  });
  let limited = limit !== undefined;
  let stopped = false;
  const timer = setInterval(() => {
    void sample()
      .then((p99) => {
        if (stopped) return;
        const before = controller.bytesPerSec;
        const after = controller.onSample({ now: Date.now(), foregroundP99Ms: p99 });
        if (after < max) limited = true;
        else if (limit === undefined) limited = false;
        if (after !== before) {
          log.debug('migration rate', { bytesPerSec: Math.round(after), reason: controller.reason });
          options.onRate?.(limited ? after : undefined, controller.reason);
        }
      })
      .catch(() => undefined);
  }, 1000);
  timer.unref();
  return {
    get bytesPerSec() {
      return limited ? controller.bytesPerSec : undefined;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
