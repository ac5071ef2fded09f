/**
 * Moves one partition from its owner to another storage node while clients keep reading and writing it:
 * record the move in the routing record, copy a snapshot and the changes made meanwhile straight from source to
 * target, hold the partition's requests briefly, take the last changes, and switch the owner with one
 * compare-and-set (which also clears the move). Any failure before that switch aborts: the move entry is cleared
 * (again one CAS), the source serves on, the target drops its copy. See docs/ARCHITECTURE.md.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import type { MemberView, PeerPool } from '../client/index.js';
import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';

export interface MoveContext {
  catalog: Catalog;
  members: MemberView;
  pool: PeerPool;
}

export interface MoveResult {
  namespace: string;
  partition: number;
  from: string;
  to: string;
  copied: number;
  /** How long the partition's requests were held. */
  fenceMs: number;
  ms: number;
}

const log = createLogger('migration');
const STEP_TIMEOUT_MS = 120_000;

/**
 * @example
 * ```ts
 * const r = await movePartition(ctx, 'users', 17, 's4');
 * console.log(`moved ${r.copied} keys; writes held ${r.fenceMs} ms`);
 * ```
 */
export async function movePartition(ctx: MoveContext, namespace: string, partition: number, to: string): Promise<MoveResult> {
  const started = Date.now();
  const job = randomUUID();
  const current = await ctx.catalog.refresh(namespace);
  if (!current) throw new InvalidArgumentError(`no namespace ${namespace}`);
  const from = current.ownerOf(partition);
  if (from === undefined) throw new InvalidArgumentError(`${namespace} has no partition ${partition}`);
  if (from === to) return { namespace, partition, from, to, copied: 0, fenceMs: 0, ms: 0 };
  const target = ctx.members.get(to);
  if (!target || target.role !== 'storage' || target.state !== 'ready') {
    throw new InvalidArgumentError(`${to} is not a ready storage node`);
  }
  await ctx.catalog.update(namespace, (t) => {
    if (t.migrationOf(partition)) throw new InvalidArgumentError(`${namespace}/${partition} is already moving`);
    if (t.ownerOf(partition) !== from) throw new UnavailableError(`${namespace}/${partition} changed owner meanwhile`);
    return t.withMigration(partition, { to, job, startedAt: new Date().toISOString() });
  });

  const deadline = Date.now() + STEP_TIMEOUT_MS;
  const source = await ctx.pool.get(from, deadline);
  const sink = await ctx.pool.get(to, deadline);
  const sourceAddress = ctx.members.get(from)!.address;
  const opts = { timeoutMs: STEP_TIMEOUT_MS };
  let switched = false;
  try {
    await source.call('mig.export.begin', { job, ns: namespace, partition }, opts);
    const copy = await sink.call<{ copied: number }>('mig.import', { job, ns: namespace, partition, source: sourceAddress }, opts);
    const fencedAt = Date.now();
    const { lastSeq } = await source.call<{ lastSeq: number }>('mig.export.fence', { job }, opts);
    await sink.call('mig.import.catchup', { job, untilSeq: lastSeq }, opts);
    const after = await ctx.catalog.update(namespace, (t) =>
      t.migrationOf(partition)?.job === job ? t.withOwners(new Map([[partition, to]])) : undefined,
    );
    if (after.ownerOf(partition) !== to) throw new UnavailableError(`the move of ${namespace}/${partition} was aborted meanwhile`);
    switched = true;
    await source.call('mig.export.end', { job }, opts);
    const fenceMs = Date.now() - fencedAt;
    await sink.call('mig.import.finish', { job }, opts).catch(() => undefined);
    const result = { namespace, partition, from, to, copied: copy.copied, fenceMs, ms: Date.now() - started };
    log.debug('moved partition', { ...result });
    return result;
  } catch (err) {
    if (!switched) await abort(ctx, namespace, partition, job, source, sink);
    throw err;
  }
}

async function abort(
  ctx: MoveContext,
  namespace: string,
  partition: number,
  job: string,
  source: { call(m: string, p: unknown, o?: { timeoutMs?: number }): Promise<unknown> },
  sink: { call(m: string, p: unknown, o?: { timeoutMs?: number }): Promise<unknown> },
): Promise<void> {
  log.warn('aborting move', { namespace, partition, job });
  await ctx.catalog
    .update(namespace, (t: RoutingTable) => (t.migrationOf(partition)?.job === job ? t.withMigration(partition, undefined) : undefined))
    .catch((err: unknown) => log.warn('could not clear the move entry', { error: String(err) }));
  await Promise.all([
    source.call('mig.export.end', { job }, { timeoutMs: 10_000 }).catch(() => undefined),
    sink.call('mig.import.abort', { job }, { timeoutMs: 30_000 }).catch(() => undefined),
  ]);
}
