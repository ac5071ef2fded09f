/**
 * What a storage node does at start, before it listens, about moves that a crash interrupted:
 *
 * 1. Any move with this node as source or target cannot go on: the source's capture and the target's import lived in
 *    the process that died. Each is rolled back with one CAS on the routing record (only if it still names that
 *    job). Doing it before step 2 matters: once the entry is gone no cutover can make this node the owner of a copy
 *    step 2 is about to drop.
 * 2. Data of partitions this node neither owns nor follows is dropped: half copies of moves that were rolled back, and the old
 *    copy of a partition whose cutover happened just before the source died — except, in a replicated namespace, the
 *    data of partitions short of copies: a copy coming back here compares with it rather than copying all
 *    (stale-copies.ts). Those are returned, for the migration service to keep or drop later.
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import type { Logger } from '../util/logger.js';
import type { Location, StorageEngine } from './engine.js';
import { StaleCopies } from './stale-copies.js';

export async function recoverAtStart(nodeId: string, engine: StorageEngine, catalog: Catalog, log: Logger): Promise<StaleCopies> {
  const stale = new StaleCopies();
  for (const name of catalog.names()) {
    const table = catalog.find(name);
    for (const [key, entry] of Object.entries(table?.record.migrations ?? {})) {
      const partition = Number(key);
      if (entry.to !== nodeId && table!.ownerOf(partition) !== nodeId) continue;
      log.warn('rolling back a move this node was part of when it stopped', { namespace: name, partition, job: entry.job });
      await catalog.update(name, (t) => t.withoutMoves(entry.job, [partition]));
    }
  }
  for (const name of catalog.names()) {
    const table = await catalog.refresh(name);
    if (table) await dropForeign(nodeId, engine, table, stale, log);
  }
  return stale;
}

async function dropForeign(nodeId: string, engine: StorageEngine, table: RoutingTable, stale: StaleCopies, log: Logger): Promise<void> {
  const drops: { location: Location; bounds: { start?: string; end?: string | null } }[] = [];
  if (table.scheme === 'hash') {
    for (const slot of engine.hashPartitionsWithKeys(table.name)) {
      if (table.holds(slot, nodeId)) continue;
      if (StaleCopies.worthKeeping(table, slot)) stale.keep(table.name, slot);
      else drops.push({ location: { namespace: table.name, partition: slot, slot }, bounds: {} });
    }
  } else {
    for (const id of table.partitions()) {
      const r = table.range(id)!;
      const location = { namespace: table.name, partition: id };
      const bounds = { start: r.start, end: r.end };
      if (table.holds(id, nodeId) || engine.keys(location, bounds, 1).length === 0) continue;
      if (StaleCopies.worthKeeping(table, id)) stale.keep(table.name, id, bounds);
      else drops.push({ location, bounds });
    }
  }
  let dropped = 0;
  for (const d of drops) dropped += await engine.dropPartition(d.location, d.bounds);
  if (drops.length > 0) log.info('dropped data of partitions owned elsewhere', { namespace: table.name, partitions: drops.length, keys: dropped });
}
