/**
 * Moves one partition from its owner to another storage node while clients keep reading and writing it:
 * write the job record (on the driver's lease), record the move in the routing record, copy a snapshot and the
 * changes made meanwhile straight from source to target, hold the partition's requests briefly, take the last
 * changes, and switch the owner with one compare-and-set (which also clears the move). Any failure before that switch
 * aborts: the move entry is cleared (again one CAS), the source serves on, the target drops its copy. A driver that
 * dies leaves a move entry whose job record expires with its lease; the source then rolls the move back itself.
 * See docs/ARCHITECTURE.md.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import type { MemberView, PeerPool } from '../client/index.js';
import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import type { JobLedger, JobRecord } from './jobs.js';
import { updateTable } from './table-updates.js';
import { failpoint } from '../util/failpoints.js';

export interface MoveContext {
  catalog: Catalog;
  members: MemberView;
  pool: PeerPool;
  /** Where the driver records its jobs (see {@link MigrationDriver}). */
  ledger: JobLedger;
}

export interface MoveOptions {
  /** The copy rate this move may use now, in bytes per second (undefined: as fast as it goes). Asked every poll. */
  bytesPerSec?: () => number | undefined;
  /** Progress of the copy, about twice a second, and once more when the move ends. */
  onProgress?: (job: JobRecord) => void;
}

export interface MoveResult {
  namespace: string;
  /** The partitions moved together (one job, one cutover). */
  partitions: number[];
  from: string;
  to: string;
  copied: number;
  /** Bytes copied (from the source's per-partition counters). */
  bytes: number;
  /** How long the partitions' requests were held. */
  fenceMs: number;
  ms: number;
}

/** Partitions of one namespace that go from one node to another as one job. */
export interface MoveBatch {
  namespace: string;
  from: string;
  to: string;
  partitions: number[];
  /**
   * Make a copy instead of moving: `to` joins the partitions' in-sync followers at the cutover and `from` keeps
   * leading (re-replication). The copy is made exactly as a move's is — snapshot, change log, brief hold.
   */
  copy?: boolean;
  /** With `copy`: the follower that leaves at the cutover (a follower copy moving from `replace` to `to`). */
  replace?: string;
  /** A lead handoff, not a move: `to` already follows the partitions and takes their lead (see handOffLeads). */
  lead?: boolean;
}

type Caller = { call<T = unknown>(m: string, p: unknown, o?: { timeoutMs?: number }): Promise<T> };

const log = createLogger('migration');
const STEP_TIMEOUT_MS = 120_000;
/**
 * How long a move waits for its source and target to be members. Both were ready when it began: one that left since
 * (died, its lease expired) fails the move now rather than hold it — and the replica controller's few copy jobs —
 * for the step timeout.
 */
const PEER_WAIT_MS = 5000;
const PROGRESS_EVERY_MS = 500;
/** Job records are rewritten with progress this often (each is a coordinator write). */
const RECORD_EVERY_MS = 2000;

/**
 * Moves one partition; see {@link moveBatch}.
 *
 * @example
 * ```ts
 * const driver = await MigrationDriver.open(deps);
 * const r = await movePartition(driver.context, 'users', 17, 's4');
 * console.log(`moved ${r.copied} keys; writes held ${r.fenceMs} ms`);
 * await driver.close();
 * ```
 */
export async function movePartition(
  ctx: MoveContext,
  namespace: string,
  partition: number,
  to: string,
  options: MoveOptions = {},
): Promise<MoveResult> {
  const table = await ctx.catalog.refresh(namespace);
  if (!table) throw new InvalidArgumentError(`no namespace ${namespace}`);
  const from = table.ownerOf(partition);
  if (from === undefined) throw new InvalidArgumentError(`${namespace} has no partition ${partition}`);
  return moveBatch(ctx, { namespace, from, to, partitions: [partition] }, options);
}

/**
 * Moves partitions of one namespace from `from` to `to` as one job: one move entry each (written with one CAS), the
 * copies one after another, then every partition held at once for its last changes and all switched with one CAS.
 * Batching is what makes many small partitions cheap: the coordinator writes per job do not grow with its size.
 *
 * @example
 * ```ts
 * await moveBatch(driver.context, { namespace: 'users', from: 's1', to: 's4', partitions: [3, 4, 5] });
 * ```
 */
export async function moveBatch(ctx: MoveContext, batch: MoveBatch, options: MoveOptions = {}): Promise<MoveResult> {
  const started = Date.now();
  const job = randomUUID();
  const { namespace, from, to, partitions } = batch;
  if (partitions.length === 0) throw new InvalidArgumentError('a move needs at least one partition');
  if (from === to) return { namespace, partitions, from, to, copied: 0, bytes: 0, fenceMs: 0, ms: 0 };
  const target = ctx.members.get(to);
  if (!target || target.role !== 'storage' || target.state !== 'ready') {
    throw new InvalidArgumentError(`${to} is not a ready storage node`);
  }
  const source = ctx.members.get(from);
  if (!source || source.state !== 'ready') throw new UnavailableError(`the source of the move, ${from}, is not a ready storage node`);

  const record: JobRecord = {
    job,
    namespace,
    partitions,
    from,
    to,
    driver: ctx.ledger.driver,
    step: 'planned',
    startedAt: new Date(started).toISOString(),
    updatedAt: '',
    copiedKeys: 0,
    copiedBytes: 0,
    totalKeys: 0,
    totalBytes: 0,
  };
  // The job record first: a source that sees a move entry without its job record rolls the move back.
  await ctx.ledger.write(record);
  try {
    await updateTable(ctx, namespace, (t) => {
      let next = t;
      for (const p of partitions) {
        if (t.ownerOf(p) === undefined) throw new InvalidArgumentError(`${namespace} has no partition ${p}`);
        if (t.migrationOf(p)) throw new InvalidArgumentError(`${namespace}/${p} is already moving`);
        if (t.ownerOf(p) !== from) throw new UnavailableError(`${namespace}/${p} is not on ${from} (it changed owner meanwhile?)`);
        if (batch.copy && t.holds(p, to)) throw new InvalidArgumentError(`${to} already holds a copy of ${namespace}/${p}`);
        if (batch.replace !== undefined && !t.followersOf(p).includes(batch.replace)) {
          throw new UnavailableError(`${batch.replace} no longer follows ${namespace}/${p} (it changed meanwhile?)`);
        }
        next = next.withMigration(p, { to, job, startedAt: record.startedAt, ...(batch.copy ? { copy: true } : {}) });
      }
      return next;
    });
  } catch (err) {
    await ctx.ledger.remove(job).catch(() => undefined);
    throw err;
  }

  const opts = { timeoutMs: STEP_TIMEOUT_MS };
  let sourcePeer: Caller | undefined;
  let sink: Caller | undefined;
  let switched = false;
  try {
    sourcePeer = await ctx.pool.get(from, Date.now() + PEER_WAIT_MS);
    sink = await ctx.pool.get(to, Date.now() + PEER_WAIT_MS);
    const src = sourcePeer;
    const dst = sink;
    // One partition at a time: begin its export (a read snapshot on the source) just before copying it, so a job
    // holds one snapshot open, not one per partition (open snapshots keep LMDB from reusing freed pages).
    record.step = 'copying';
    await ctx.ledger.write(record);
    const copied = await withProgress(ctx, dst, record, options, async () => {
      let n = 0;
      for (const partition of partitions) {
        const size = await src.call<{ keys?: number; bytes?: number }>('mig.export.begin', { job, ns: namespace, partition }, opts);
        record.totalKeys += size.keys ?? 0;
        record.totalBytes += size.bytes ?? 0;
        const bytesPerKey = size.keys ? (size.bytes ?? 0) / size.keys : 0;
        const r = await dst.call<{ copied: number }>(
          'mig.import',
          { job, ns: namespace, partition, source: source.address, bytes: size.bytes ?? 0, bytesPerKey, bytesPerSec: options.bytesPerSec?.() },
          opts,
        );
        n += r.copied;
      }
      return n;
    });
    // Catch every partition up before holding any: the held catch-up then has only the last moments' changes.
    await Promise.all(partitions.map((partition) => dst.call('mig.import.catchup', { job, partition }, opts)));
    const fencedAt = Date.now();
    const fences = await Promise.all(partitions.map((partition) => src.call<{ lastSeq: number }>('mig.export.fence', { job, partition }, opts)));
    await Promise.all(partitions.map((partition, k) => dst.call('mig.import.catchup', { job, partition, untilSeq: fences[k]!.lastSeq }, opts)));
    const after = await updateTable(ctx, namespace, (t) =>
      !partitions.every((p) => t.migrationOf(p)?.job === job)
        ? undefined
        : batch.copy
          ? t.withCopiesJoined(partitions, to, batch.replace)
          : t.withOwners(new Map(partitions.map((p) => [p, to]))),
    );
    const landed = (p: number) => (batch.copy ? after.followersOf(p).includes(to) : after.ownerOf(p) === to);
    if (!partitions.every(landed)) throw new UnavailableError(`the ${batch.copy ? 'copy' : 'move'} of ${namespace}/${partitions.join(',')} was aborted meanwhile`);
    switched = true;
    // Fault tests: the driver dies just after the owner switch (named by its driver's name, e.g. `rebalance`).
    failpoint('move.switched', ctx.ledger.driver.split('@')[0]);
    // The source and target also end these on seeing the table change; asking spares them the wait.
    await Promise.all(partitions.map((partition) => src.call('mig.export.end', { job, partition }, opts).catch(() => undefined)));
    const fenceMs = Date.now() - fencedAt;
    await Promise.all(partitions.map((partition) => dst.call('mig.import.finish', { job, partition }, opts).catch(() => undefined)));
    record.step = 'switched';
    record.copiedKeys = copied;
    record.copiedBytes = record.totalBytes;
    options.onProgress?.(record);
    await ctx.ledger.remove(job).catch(() => undefined);
    const result = { namespace, partitions, from, to, copied, bytes: record.totalBytes, fenceMs, ms: Date.now() - started };
    log.debug('moved partitions', { ...result, partitions: partitions.length });
    return result;
  } catch (err) {
    if (!switched) {
      record.step = 'aborting';
      options.onProgress?.(record);
      await abort(ctx, batch, job, sourcePeer, sink);
    }
    await ctx.ledger.remove(job).catch(() => undefined);
    throw err;
  }
}

/** Runs the import call, polling the target for progress (and telling it the current rate) meanwhile. */
async function withProgress<T>(ctx: MoveContext, sink: Caller, record: JobRecord, options: MoveOptions, run: () => Promise<T>): Promise<T> {
  let done = false;
  let lastRecorded = Date.now();
  let wake = () => {};
  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, PROGRESS_EVERY_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const poll = async () => {
    while (!done) {
      await pause();
      if (done) return;
      const p = await sink
        .call<{ copiedKeys: number; copiedBytes: number }>('mig.import.progress', { job: record.job, bytesPerSec: options.bytesPerSec?.() }, { timeoutMs: 5000 })
        .catch(() => undefined);
      if (!p || done) continue;
      record.copiedKeys = p.copiedKeys;
      record.copiedBytes = p.copiedBytes;
      options.onProgress?.(record);
      if (Date.now() - lastRecorded >= RECORD_EVERY_MS) {
        lastRecorded = Date.now();
        await ctx.ledger.write(record).catch(() => undefined);
      }
    }
  };
  const poller = poll();
  try {
    return await run();
  } finally {
    done = true;
    wake(); // a finished copy does not wait out the pause
    await poller;
  }
}

async function abort(ctx: MoveContext, batch: MoveBatch, job: string, source: Caller | undefined, sink: Caller | undefined): Promise<void> {
  const { namespace, partitions } = batch;
  log.warn('aborting move', { namespace, partitions: partitions.join(','), job });
  await updateTable(ctx, namespace, (t: RoutingTable) => t.withoutMoves(job, partitions))
    .catch((err: unknown) => log.warn('could not clear the move entries', { error: String(err) }));
  await Promise.all(
    partitions.flatMap((partition) => [
      source?.call('mig.export.end', { job, partition }, { timeoutMs: 10_000 }).catch(() => undefined),
      sink?.call('mig.import.abort', { job, partition }, { timeoutMs: 30_000 }).catch(() => undefined),
    ]),
  );
}
