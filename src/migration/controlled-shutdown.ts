/**
 * Controlled shutdown, as Kafka's: a storage node asked to stop (SIGTERM) first says it is `stopping` and hands the
 * lead of each partition it leads to an in-sync follower that is a ready member — a lead handoff: requests held for
 * milliseconds, nothing copied, every write it committed confirmed by the followers — so its partitions wait for no
 * failover and no write in flight is lost with it. What cannot be handed off in time (no ready in-sync follower, a
 * partition moving) fails over as before once the node has left.
 */
import type { RoutingTable } from '../keyspace/index.js';
import { createLogger } from '../util/logger.js';
import { handOffLeads, canHandOff } from './lead-handoff.js';
import type { MoveContext } from './mover.js';

const log = createLogger('migration');
/** Handoffs per call (one hold and one CAS for all of them). */
const BATCH = 512;

/** What {@link handOffAllLeads} did. */
export interface ShutdownHandoffs {
  /** Partitions whose lead passed to a follower. */
  handedOff: number;
  /** Partitions this node still leads (no ready in-sync follower, moving, or out of time). */
  kept: number;
}

/**
 * Hands the lead of every replicated partition `nodeId` leads to an in-sync follower that is a ready storage node,
 * spreading them over the followers leading fewest; starts no handoff after `timeoutMs`.
 *
 * @example
 * ```ts
 * const { handedOff, kept } = await handOffAllLeads({ catalog, members, pool }, 's2', { timeoutMs: 10_000 });
 * ```
 */
export async function handOffAllLeads(
  ctx: Pick<MoveContext, 'catalog' | 'members' | 'pool'>,
  nodeId: string,
  options: { timeoutMs?: number } = {},
): Promise<ShutdownHandoffs> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const out: ShutdownHandoffs = { handedOff: 0, kept: 0 };
  for (const name of ctx.catalog.names()) {
    const table = await ctx.catalog.refresh(name);
    if (!table || table.copies <= 1) continue;
    // Looked up per namespace: a node that begins to stop meanwhile takes nothing more.
    const ready = new Set(ctx.members.ready('storage').map((m) => m.id).filter((id) => id !== nodeId));
    const plan = planHandoffs(table, nodeId, ready);
    let planned = 0;
    for (const [to, partitions] of plan) {
      planned += partitions.length;
      for (let i = 0; i < partitions.length; i += BATCH) {
        const batch = partitions.slice(i, i + BATCH);
        if (Date.now() >= deadline) {
          out.kept += batch.length;
          continue;
        }
        try {
          const r = await handOffLeads(ctx, { namespace: name, from: nodeId, to, partitions: batch });
          out.handedOff += r.partitions.length;
          out.kept += batch.length - r.partitions.length;
        } catch (err) {
          out.kept += batch.length;
          log.warn('a lead handoff before stopping failed; those partitions fail over instead', { namespace: name, to, error: String(err) });
        }
      }
    }
    out.kept += table.partitionsOf(nodeId).length - planned;
  }
  return out;
}

/** Each partition `nodeId` leads that can be handed off, by the ready in-sync follower (leading fewest) to take it. */
export function planHandoffs(table: RoutingTable, nodeId: string, ready: ReadonlySet<string>): Map<string, number[]> {
  const leads = new Map<string, number>();
  for (const p of table.partitions()) leads.set(table.ownerOf(p)!, (leads.get(table.ownerOf(p)!) ?? 0) + 1);
  const plan = new Map<string, number[]>();
  for (const p of table.partitionsOf(nodeId)) {
    let to: string | undefined;
    for (const f of table.followersOf(p)) {
      if (!ready.has(f) || !canHandOff(table, p, nodeId, f)) continue;
      if (to === undefined || (leads.get(f) ?? 0) < (leads.get(to) ?? 0)) to = f;
    }
    if (to === undefined) continue;
    leads.set(to, (leads.get(to) ?? 0) + 1);
    let list = plan.get(to);
    if (!list) plan.set(to, (list = []));
    list.push(p);
  }
  return plan;
}
