/** Waiting on a namespace's routing table as a client's catalog sees it change (no sleeping). */
import type { RoutingTable, ShardflowClient } from '../../src/index.js';

/** Every partition has its 3 copies (2 followers besides the leader) and no move or copy is in flight. */
export const fullyReplicated = (t: RoutingTable): boolean =>
  t.partitions().every((p) => t.followersOf(p).length === t.copies - 1 && !t.followersOf(p).includes(t.ownerOf(p)!) && !t.migrationOf(p));

/** Leaders per node, under-replicated and moving partitions: what a timed-out wait reports. */
export function tableSummary(t: RoutingTable | undefined): unknown {
  if (!t) return null;
  const leaders: Record<string, number> = {};
  for (const p of t.partitions()) leaders[t.ownerOf(p)!] = (leaders[t.ownerOf(p)!] ?? 0) + 1;
  const short = t.partitions().filter((p) => t.followersOf(p).length + 1 < t.copies).length;
  return { epoch: t.epoch, leaders, underReplicated: short, migrating: t.partitions().filter((p) => t.migrationOf(p)).length };
}

/** Resolves with the table once `ok` holds for it (checked on every change the client's catalog sees). */
export function tableWhen(client: ShardflowClient, ns: string, ok: (t: RoutingTable) => boolean, timeoutMs = 20_000): Promise<RoutingTable> {
  return new Promise((resolve, reject) => {
    const check = (t: RoutingTable | undefined) => {
      if (!t || !ok(t)) return false;
      clearTimeout(timer);
      off();
      resolve(t);
      return true;
    };
    const timer = setTimeout(() => {
      off();
      reject(new Error(`table condition not met in ${timeoutMs} ms: ${JSON.stringify(tableSummary(client.catalog.find(ns)))}`));
    }, timeoutMs);
    const off = client.catalog.onChange((t, name) => name === ns && check(t));
    void client.catalog.refresh(ns).then(check, () => undefined);
  });
}
