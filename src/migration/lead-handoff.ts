/**
 * Hands the lead of partitions from their leader to one of their in-sync followers, with no data moved: the leader
 * holds the partitions' requests until every follower holds every write it committed (storage/lead-handoff-service),
 * one compare-and-set makes the follower the leader and the old leader a follower, and the held requests are then
 * answered MOVED. Requests wait for a few milliseconds; nothing is copied. This is how leadership comes back to a
 * node that restarted (failover left it following everything) and how a rebalance evens out leaders.
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import type { RoutingTable } from '../keyspace/index.js';
import type { MoveContext, MoveResult } from './mover.js';
import { updateTable } from './table-updates.js';

/** Partitions of one namespace whose lead passes from `from` to `to`, one of their in-sync followers. */
export interface LeadBatch {
  namespace: string;
  from: string;
  to: string;
  partitions: number[];
}

const log = createLogger('migration');
const STEP_TIMEOUT_MS = 10_000;

/** Whether the lead of `partition` can pass from `from` to `to` in `table` now. */
export function canHandOff(table: RoutingTable, partition: number, from: string, to: string): boolean {
  return table.ownerOf(partition) === from && table.followersOf(partition).includes(to) && table.migrationOf(partition) === undefined;
}

/**
 * Hands off the lead of the batch's partitions that still have `from` as leader and `to` as in-sync follower (the
 * others are skipped: the table changed since the plan). Resolves with what was handed off; on any failure the
 * lead stays where it was.
 *
 * @example
 * ```ts
 * const driver = await MigrationDriver.open(deps);
 * const r = await handOffLeads(driver.context, { namespace: 'users', from: 's2', to: 's1', partitions: [3, 8] });
 * console.log(`${r.partitions.length} partitions now led by s1; requests held ${r.fenceMs} ms`);
 * ```
 */
export async function handOffLeads(ctx: Pick<MoveContext, 'catalog' | 'members' | 'pool'>, batch: LeadBatch): Promise<MoveResult> {
  const started = Date.now();
  const { namespace, from, to } = batch;
  const table = await ctx.catalog.refresh(namespace);
  if (!table) throw new InvalidArgumentError(`no namespace ${namespace}`);
  const partitions = batch.partitions.filter((p) => canHandOff(table, p, from, to));
  const result = (done: number[], fenceMs: number): MoveResult => ({ namespace, partitions: done, from, to, copied: 0, bytes: 0, fenceMs, ms: Date.now() - started });
  if (partitions.length === 0) return result([], 0);
  const target = ctx.members.get(to);
  if (!target || target.role !== 'storage' || target.state !== 'ready') throw new UnavailableError(`${to} is not a ready storage node`);

  const job = randomUUID();
  const leader = await ctx.pool.get(from, Date.now() + STEP_TIMEOUT_MS);
  const fencedAt = Date.now();
  await leader.call('lead.fence', { job, ns: namespace, partitions, to }, { timeoutMs: STEP_TIMEOUT_MS });
  try {
    const after = await updateTable(ctx, namespace, (t) => {
      const still = partitions.filter((p) => canHandOff(t, p, from, to));
      return still.length > 0 ? t.withLeadsHandedOff(new Map(still.map((p) => [p, to]))) : undefined;
    });
    const done = partitions.filter((p) => after.ownerOf(p) === to);
    log.debug('handed off leads', { namespace, from, to, partitions: done.length });
    return result(done, Date.now() - fencedAt);
  } finally {
    await leader.call('lead.end', { job }, { timeoutMs: STEP_TIMEOUT_MS }).catch(() => undefined);
  }
}
