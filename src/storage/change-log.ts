/**
 * A partition's change log: every committed change to the partition, in commit order, numbered from 1. A migration
 * copies a snapshot and then replays the log from the snapshot on; replication (later) will ship the same entries
 * to followers. This implementation keeps the entries in memory, bounded: a log that overflows says so, and the
 * migration reading it starts over rather than miss a change.
 */
import { UnavailableError } from '../errors/index.js';

/** One committed change. `value` is absent for a delete. */
export interface Change {
  seq: number;
  key: string;
  deleted: boolean;
  value?: unknown;
  version: number;
}

export interface ChangeLog {
  /** Seq of the newest change (0 when none yet). */
  readonly lastSeq: number;
  append(change: Omit<Change, 'seq'>): void;
  /** Changes with seq > `afterSeq`, oldest first, at most `limit`. Throws if some were dropped. */
  read(afterSeq: number, limit: number): Change[];
}

export const DEFAULT_LOG_LIMIT = 1_000_000;

export class MemoryChangeLog implements ChangeLog {
  private entries: Change[] = [];
  /** Entries with seq <= this were released (read and confirmed) or dropped. */
  private floor = 0;
  private overflowed = false;
  lastSeq = 0;

  constructor(private readonly limit = DEFAULT_LOG_LIMIT) {}

  append(change: Omit<Change, 'seq'>): void {
    this.lastSeq += 1;
    if (this.entries.length >= this.limit) {
      this.overflowed = true;
      return;
    }
    this.entries.push({ seq: this.lastSeq, ...change });
  }

  read(afterSeq: number, limit: number): Change[] {
    if (this.overflowed) throw new UnavailableError('the change log overflowed: the migration must copy again');
    if (afterSeq < this.floor) throw new UnavailableError(`changes after ${afterSeq} were released`);
    // Entries are contiguous from floor + 1.
    const start = afterSeq - this.floor;
    return this.entries.slice(start, start + limit);
  }

  /** Forgets entries up to `seq` (the reader has applied them). */
  release(seq: number): void {
    const n = Math.min(seq, this.lastSeq) - this.floor;
    if (n <= 0) return;
    this.entries.splice(0, n);
    this.floor += n;
  }
}
