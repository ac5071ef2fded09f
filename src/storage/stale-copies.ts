/**
 * Follower copies this node holds but no longer follows — it restarted, or its leader dropped it as fallen behind —
 * kept while their partition has fewer copies than configured: the copy that restores the count is likely to come
 * here (on a cluster with as many storage nodes as copies, nowhere else can it go), and a copy that finds entries here
 * compares and fetches only what differs (partition-import.ts) instead of moving the whole partition again. Once the
 * partition has its copies elsewhere, the data is dropped.
 *
 * Hash slots are kept by slot. Key ranges are kept by the span of keys the range had when kept (range keys are
 * stored without their range id, and ids change as ranges split and merge): a span stays while a range covering part
 * of it, not held here, is short of copies; it is stale no more once ranges held here cover it all; otherwise the
 * parts not held here are dropped.
 */
import type { RoutingTable } from '../keyspace/index.js';
import { compareKeys } from '../partitioning/index.js';

/** Keys `start <= key < end` (`end` null: to the end). */
export interface Span {
  start: string;
  end: string | null;
}

/** Data to drop: a slot whole, or keys of a range namespace within `bounds` (`partition`: the range there now). */
export interface StaleDrop {
  partition: number;
  bounds: { start?: string; end?: string | null };
}

export class StaleCopies {
  /** Kept hash slots by namespace. */
  private readonly kept = new Map<string, Set<number>>();
  /** Kept key spans of range namespaces by namespace. */
  private readonly spans = new Map<string, Span[]>();

  /** Whether data of a partition this node does not hold is worth keeping now: the partition is short of copies. */
  static worthKeeping(table: RoutingTable, partition: number): boolean {
    return table.copies > 1 && table.ownerOf(partition) !== undefined && 1 + table.followersOf(partition).length < table.copies;
  }

  /** Keeps a hash slot's data, or, given `span`, a range's keys in it. */
  keep(namespace: string, partition: number, span?: Span): void {
    if (span) {
      const list = this.spans.get(namespace) ?? [];
      list.push({ ...span });
      this.spans.set(namespace, list);
      return;
    }
    let set = this.kept.get(namespace);
    if (!set) this.kept.set(namespace, (set = new Set()));
    set.add(partition);
  }

  /** How many slots and spans are kept, in all. */
  get size(): number {
    let n = 0;
    for (const set of this.kept.values()) n += set.size;
    for (const list of this.spans.values()) n += list.length;
    return n;
  }

  /**
   * Follows a namespace's table: kept data this node holds again (a copy came back) is no longer stale; data whose
   * partition has its copies elsewhere is returned, to be dropped. Partitions being received here are left for later.
   */
  onTable(table: RoutingTable, nodeId: string, receiving: (partition: number) => boolean): StaleDrop[] {
    return table.scheme === 'hash' ? this.onHashTable(table, nodeId, receiving) : this.onRangeTable(table, nodeId, receiving);
  }

  private onHashTable(table: RoutingTable, nodeId: string, receiving: (partition: number) => boolean): StaleDrop[] {
    const set = this.kept.get(table.name);
    if (!set) return [];
    const drop: StaleDrop[] = [];
    for (const p of set) {
      if (table.holds(p, nodeId)) set.delete(p);
      else if (!receiving(p) && !StaleCopies.worthKeeping(table, p)) {
        set.delete(p);
        drop.push({ partition: p, bounds: {} });
      }
    }
    if (set.size === 0) this.kept.delete(table.name);
    return drop;
  }

  private onRangeTable(table: RoutingTable, nodeId: string, receiving: (partition: number) => boolean): StaleDrop[] {
    const list = this.spans.get(table.name);
    if (!list) return [];
    const drop: StaleDrop[] = [];
    const left = list.filter((span) => {
      const covering = table.rangesFor(span.start, span.end);
      const foreign = covering.filter((r) => !table.holds(r.id, nodeId));
      if (foreign.length === 0) return false; // held here again, all of it
      if (foreign.some((r) => receiving(r.id) || StaleCopies.worthKeeping(table, r.id))) return true;
      for (const r of foreign) drop.push({ partition: r.id, bounds: intersect(span, r) });
      return false;
    });
    if (left.length === 0) this.spans.delete(table.name);
    else this.spans.set(table.name, left);
    return drop;
  }
}

/** The keys of `span` within range `r`. */
function intersect(span: Span, r: { start: string; end: string | null }): { start: string; end: string | null } {
  const start = compareKeys(span.start, r.start) >= 0 ? span.start : r.start;
  const end = span.end === null ? r.end : r.end === null ? span.end : compareKeys(span.end, r.end) <= 0 ? span.end : r.end;
  return { start, end };
}
