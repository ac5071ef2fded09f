/**
 * Merges across nodes, by themselves: small neighbouring ranges on different nodes (a node merges its own neighbours
 * alone, storage/range-maintainer.ts) are put on one node and merged — the moves and merge of `shardflow rebalance`
 * (range-merge.ts), run by the replica controller every so often for the range namespaces that allow it
 * (`autoMerge`, default on). Planned without the rebalance lock, run under it: a rebalance under way is never
 * disturbed (the merges wait for the next look), and a look that finds nothing to merge never holds the lock.
 */
import { BusyError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import { MigrationDriver, type DriverDeps } from './driver.js';
import { planMerges, runMerges } from './range-merge.js';

/** How often the controller looks for ranges to merge across nodes, by default. */
export const RANGE_MERGE_EVERY_MS = 10_000;

/**
 * Plans and runs the merges across nodes of the range namespaces with `autoMerge` on, while `leading()` (the caller
 * still the controller). Resolves with how many pairs merged (0 when a rebalance holds the lock: tried again at the
 * next look).
 *
 * @example
 * ```ts
 * const merged = await mergeSmallNeighbours({ coordinator, catalog, members, pool }, log);
 * ```
 */
export async function mergeSmallNeighbours(deps: DriverDeps, log: Logger, leading: () => boolean = () => true): Promise<number> {
  const namespaces = deps.catalog.names().filter((name) => {
    const t = deps.catalog.find(name);
    return t?.scheme === 'range' && t.record.autoMerge !== false;
  });
  if (namespaces.length === 0) return 0;
  const merges = await planMerges(deps, { namespaces });
  // A controller that stopped or lost its lead while planning leaves the merges to the next one.
  if (merges.length === 0 || !leading()) return 0;
  let driver: MigrationDriver;
  try {
    driver = await MigrationDriver.open(deps, { name: 'range-merge' });
  } catch (err) {
    if (err instanceof BusyError) return 0;
    throw err;
  }
  try {
    // Planned before the lock: planned again under it, so nothing a rebalance just did is undone.
    const planned = await planMerges(driver.context, { namespaces });
    if (!leading()) return 0;
    const results = await runMerges(driver.context, planned, { concurrency: 1 });
    for (const r of results) {
      log.info(r.merged ? 'merged ranges across nodes' : 'ranges put together, not merged', {
        namespace: r.namespace,
        left: r.left,
        right: r.right,
        moved: r.moves.map((m) => `${m.from}->${m.to}`).join(','),
        ...(r.reason ? { reason: r.reason } : {}),
      });
    }
    return results.filter((r) => r.merged).length;
  } finally {
    await driver.close();
  }
}
