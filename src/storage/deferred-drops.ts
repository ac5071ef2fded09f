/**
 * Deleting the old copy of a partition that moved away, later and gently. Deleting frees LMDB pages; while read
 * snapshots are open (every export holds one) those pages cannot be reused and pile up in LMDB's free list, which
 * every later commit then merges — on the node's event loop, foreground writes included (bench:rebalance measured
 * 40% of a source's CPU in mdb_freelist_save and pings held for 300 ms). So drops wait until this node exports
 * nothing, go a chunk at a time with the event loop free in between, and re-check before each chunk that the
 * partition is still not ours (it may have moved back: its new data must stay). Leftover data is harmless meanwhile:
 * requests for a partition a node does not own are answered MOVED before any read, and a restart drops it too.
 */
import type { Location, StorageEngine } from './engine.js';
import type { Logger } from '../util/logger.js';

/** Keys deleted per transaction. */
const CHUNK = 500;

export interface PendingDrop {
  location: Location;
  bounds: { start?: string; end?: string | null };
}

export class DeferredDrops {
  private readonly queue: PendingDrop[] = [];
  private running = false;
  /** The chunk being deleted, if any. */
  private chunk: Promise<unknown> | undefined;

  constructor(
    private readonly engine: StorageEngine,
    /** Whether the data may be dropped now: not owned, not being received. Checked before every chunk. */
    private readonly stillForeign: (d: PendingDrop) => boolean,
    /** Whether the node exports anything now (snapshots open): drops wait while it does. */
    private readonly busy: () => boolean,
    private readonly log: Logger,
  ) {}

  add(drop: PendingDrop): void {
    this.queue.push(drop);
    this.kick();
  }

  /** Resolves once no chunk is being deleted (the next one re-checks that its partition is still not ours). */
  async quiet(): Promise<void> {
    while (this.chunk) await this.chunk.catch(() => undefined);
  }

  /** Tries again (call when an export ends). */
  kick(): void {
    if (this.running || this.queue.length === 0 || this.busy()) return;
    this.running = true;
    void this.drain().finally(() => {
      this.running = false;
      if (this.queue.length > 0 && !this.busy()) setImmediate(() => this.kick());
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.busy()) {
      const d = this.queue[0]!;
      let dropped = 0;
      for (;;) {
        if (this.busy()) return; // resume later, from this drop
        if (!this.stillForeign(d)) break;
        const deleting = this.engine.dropKeys(d.location, d.bounds, CHUNK);
        this.chunk = deleting;
        const n = await deleting.finally(() => (this.chunk = undefined));
        dropped += n;
        if (n < CHUNK) break;
        await new Promise((r) => setImmediate(r));
      }
      this.queue.shift();
      if (dropped > 0) this.log.debug('dropped the old copy of a moved partition', { ...d.location, keys: dropped });
    }
  }
}
