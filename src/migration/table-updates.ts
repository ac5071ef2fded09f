/** Group commit for a namespace's routing record, as a migration driver changes it. */
import type { Catalog, RoutingTable } from '../keyspace/index.js';

interface PendingChange {
  change: (t: RoutingTable) => RoutingTable | undefined;
  resolve: (t: RoutingTable) => void;
  reject: (err: unknown) => void;
}

const tableQueues = new WeakMap<Catalog, Map<string, { pending: PendingChange[]; running: boolean }>>();

/**
 * Routing-record updates of this process, group-committed per namespace: changes that arrive while one
 * compare-and-set is in flight are applied together in the next, so concurrent jobs neither race each other's CAS
 * (each retry a coordinator round trip) nor wait for one coordinator write each while their partitions are held.
 * A change that throws fails alone; each caller gets the table as written.
 */
export function updateTable(ctx: { catalog: Catalog }, namespace: string, change: (t: RoutingTable) => RoutingTable | undefined): Promise<RoutingTable> {
  let byName = tableQueues.get(ctx.catalog);
  if (!byName) tableQueues.set(ctx.catalog, (byName = new Map()));
  let queue = byName.get(namespace);
  if (!queue) byName.set(namespace, (queue = { pending: [], running: false }));
  const q = queue;
  return new Promise<RoutingTable>((resolve, reject) => {
    q.pending.push({ change, resolve, reject });
    if (!q.running) void drainTableQueue(ctx.catalog, namespace, q);
  });
}

async function drainTableQueue(catalog: Catalog, namespace: string, q: { pending: PendingChange[]; running: boolean }): Promise<void> {
  q.running = true;
  try {
    while (q.pending.length > 0) {
      const batch = q.pending.splice(0);
      const failed = new Map<PendingChange, unknown>();
      try {
        const written = await catalog.update(namespace, (current) => {
          failed.clear(); // a retry starts over from the fresh table
          let next = current;
          let changed = false;
          for (const p of batch) {
            try {
              const t = p.change(next);
              if (t) {
                next = t;
                changed = true;
              }
            } catch (err) {
              failed.set(p, err);
            }
          }
          return changed ? next : undefined;
        });
        for (const p of batch) (failed.has(p) ? p.reject(failed.get(p)) : p.resolve(written));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  } finally {
    q.running = false;
  }
}
