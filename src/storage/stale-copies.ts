/**
 * Follower copies this node holds but no longer follows — it restarted, or its leader dropped it as fallen behind —
 * kept while their partition has fewer copies than configured: the copy that restores the count is likely to come
 * here (on a cluster with as many storage nodes as copies, nowhere else can it go), and a copy that finds entries here
 * compares and fetches only what differs (partition-import.ts) instead of moving the whole partition again. Once the
 * partition has its copies elsewhere, the data is dropped.
 */
import type { RoutingTable } from '../keyspace/index.js';

export class StaleCopies {
  /** Kept partitions by namespace. */
  private readonly kept = new Map<string, Set<number>>();

  /** Whether data of a partition this node does not hold is worth keeping now: the partition is short of copies. */
  static worthKeeping(table: RoutingTable, partition: number): boolean {
    return table.scheme === 'hash' && table.copies > 1 && 1 + table.followersOf(partition).length < table.copies;
  }

  keep(namespace: string, partition: number): void {
    let set = this.kept.get(namespace);
    if (!set) this.kept.set(namespace, (set = new Set()));
    set.add(partition);
  }

  /** How many partitions are kept, in all. */
  get size(): number {
    let n = 0;
    for (const set of this.kept.values()) n += set.size;
    return n;
  }

  /**
   * Follows a namespace's table: a kept partition this node holds again (a copy came back) is no longer stale; one
   * that has its copies elsewhere is returned, to be dropped. Partitions being received here are left for later.
   */
  onTable(table: RoutingTable, nodeId: string, receiving: (partition: number) => boolean): number[] {
    const set = this.kept.get(table.name);
    if (!set) return [];
    const drop: number[] = [];
    for (const p of set) {
      if (table.holds(p, nodeId)) set.delete(p);
      else if (!receiving(p) && !StaleCopies.worthKeeping(table, p)) {
        set.delete(p);
        drop.push(p);
      }
    }
    if (set.size === 0) this.kept.delete(table.name);
    return drop;
  }
}
