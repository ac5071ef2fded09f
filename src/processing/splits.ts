/**
 * The source side of a local run: every split of the source open at once, read in turn (round-robin, a fixed
 * number of records per read), with each split's position after its last read — what a checkpoint stores. The
 * reads do not depend on the mode, so a stream run and a batch run of a bounded input see the same records in the
 * same order.
 */
import type { ReadBatch, Source, SourceReader, SourceSplit } from './connectors/types.js';
import type { SplitPosition } from './elements.js';

export class SplitSet<T> {
  private next = 0;
  /** Each split's lag as its last read said (undefined: its source cannot tell). */
  private readonly lag: Array<number | undefined> = [];

  private constructor(
    readonly splits: SourceSplit[],
    private readonly readers: Array<SourceReader<T> | undefined>,
    readonly positions: SplitPosition[],
  ) {}

  /**
   * Opens every split (or those whose index `select` picks: a worker's share), at its restored position when there
   * is one (a split that had ended stays closed).
   */
  static async open<T>(
    source: Source<T>,
    parallelism: number,
    restored?: Record<string, SplitPosition>,
    select: (index: number) => boolean = () => true,
  ): Promise<SplitSet<T>> {
    const splits = (await source.splits(parallelism)).filter((_, i) => select(i));
    const readers: Array<SourceReader<T> | undefined> = [];
    const positions: SplitPosition[] = [];
    try {
      for (const split of splits) {
        const at = restored?.[split.id];
        positions.push(at ?? { position: null, done: false });
        readers.push(at?.done ? undefined : await source.open(split, at && at.position !== null ? at.position : undefined));
      }
    } catch (err) {
      await Promise.allSettled(readers.map((r) => r?.close()));
      throw err;
    }
    return new SplitSet(splits, readers, positions);
  }

  get done(): boolean {
    return this.readers.every((r) => r === undefined);
  }

  /** Records waiting at the source, over the splits whose sources tell (see `ReadBatch.pending`). */
  get pending(): number {
    return this.lag.reduce<number>((sum, n) => sum + (n ?? 0), 0);
  }

  get doneCount(): number {
    return this.readers.filter((r) => r === undefined).length;
  }

  /** Reads up to `max` records from the next split that has not ended; undefined once all have. */
  async read(max: number, waitMs: number): Promise<{ split: number; batch: ReadBatch<T> } | undefined> {
    for (let tries = 0; tries < this.readers.length; tries++) {
      const i = this.next;
      this.next = (this.next + 1) % this.readers.length;
      const reader = this.readers[i];
      if (!reader) continue;
      const batch = await reader.read(max, waitMs);
      this.positions[i] = { position: batch.position, done: batch.done };
      this.lag[i] = batch.done ? 0 : batch.pending;
      if (batch.done) {
        this.readers[i] = undefined;
        await reader.close();
      }
      return { split: i, batch };
    }
    return undefined;
  }

  /** Tells each open reader its split's committed position (a checkpoint with `positions` was committed). */
  async committed(positions: Record<string, SplitPosition>): Promise<void> {
    await Promise.all(
      this.splits.map(async (split, i) => {
        const reader = this.readers[i];
        const at = positions[split.id];
        if (!reader?.committed || !at || at.position === null) return;
        try {
          await reader.committed(at.position);
        } catch {
          // Best effort: what a source keeps longer than needed costs space, not correctness.
        }
      }),
    );
  }

  /** A copy of every split's position, keyed by split id. */
  snapshot(): Record<string, SplitPosition> {
    const out: Record<string, SplitPosition> = {};
    this.splits.forEach((s, i) => (out[s.id] = structuredClone(this.positions[i]!)));
    return out;
  }

  async close(): Promise<void> {
    const readers = this.readers.splice(0);
    await Promise.allSettled(readers.map((r) => r?.close()));
  }
}
