/**
 * What this node applied lately as a follower, by leader: the keys a failover may have left different between the
 * copies. A leader answers a write only once every in-sync follower holds it, but it ships to each follower on its own
 * stream, so when it dies some followers may hold its last, unanswered, writes and others not. Those writes were
 * shipped within the follower timeout before the death, and a leader's versions grow in the order it ships, so the
 * copies differ only in keys applied here lately with a version above what the other copy got from that leader. The
 * new leader reads them from every follower and re-sends its own values of them (storage/failover-repair.ts), as a
 * Kafka follower truncates to the high watermark and fetches from the new leader.
 */

/** How long an applied key is remembered: well past the follower timeout plus a failover. */
export const RECENT_MS = 15_000;
/** Most keys remembered (about 100 bytes each); past it the oldest go first, and a repair may miss some. */
export const RECENT_MAX = 200_000;
/** Most keys one answer names (a frame stays well under the wire's limit); past it the answer is not complete. */
export const RECENT_ANSWER_MAX = 50_000;

interface Applied {
  at: number;
  leader: string;
  namespace: string;
  partition: number;
  key: string;
  version: number;
}

/** A key applied from a leader: `[namespace, partition, key]`. */
export type RecentKey = [string, number, string];

export class RecentApplies {
  private entries: Applied[] = [];
  private head = 0;
  /** Newest version applied from each leader. */
  private readonly newest = new Map<string, number>();
  /** When the last entry still within {@link RECENT_MS} was dropped for room (0: never). */
  private overflowAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  record(leader: string, namespace: string, partition: number, key: string, version: number): void {
    const at = this.now();
    this.entries.push({ at, leader, namespace, partition, key, version });
    if (version > (this.newest.get(leader) ?? -1)) this.newest.set(leader, version);
    this.prune(at);
  }

  /** The newest version applied here from `leader` (-1: none remembered). */
  newestFrom(leader: string): number {
    return this.newest.get(leader) ?? -1;
  }

  /**
   * Keys applied from `leader` to `partitions` of `namespace` (undefined: any — a range's id may have merged away
   * since; the asker places the keys itself) with a version above `after`, each once. `complete` is false when keys
   * that young may have been dropped for room, or the answer was cut at {@link RECENT_ANSWER_MAX}.
   */
  from(leader: string, namespace: string, partitions: ReadonlySet<number> | undefined, after: number): { keys: RecentKey[]; complete: boolean } {
    const now = this.now();
    this.prune(now);
    const seen = new Set<string>();
    const keys: RecentKey[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.leader !== leader || e.namespace !== namespace || e.version <= after || (partitions && !partitions.has(e.partition))) continue;
      const id = `${e.partition}\u0000${e.key}`;
      if (seen.has(id)) continue;
      if (keys.length >= RECENT_ANSWER_MAX) return { keys, complete: false };
      seen.add(id);
      keys.push([e.namespace, e.partition, e.key]);
    }
    return { keys, complete: this.overflowAt === 0 || now - this.overflowAt > RECENT_MS };
  }

  /** Keys remembered. */
  get size(): number {
    return this.entries.length - this.head;
  }

  private prune(now: number): void {
    while (this.head < this.entries.length && (now - this.entries[this.head]!.at > RECENT_MS || this.size > RECENT_MAX)) {
      if (now - this.entries[this.head]!.at <= RECENT_MS) this.overflowAt = now;
      this.head++;
    }
    // Compact now and then rather than shifting on every drop.
    if (this.head > 4096 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
