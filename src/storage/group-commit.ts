/**
 * Group commit: the writes that arrive during one pass of the event loop are applied in one LMDB transaction, and
 * each is answered when that transaction has committed. With durability `process` the transaction is run and
 * committed right here on the main thread (no flush to wait for, so this is cheaper than handing each write to
 * lmdb's writer thread: ~4 µs a write in a group of 20, against ~10 µs plus thread wake-ups); with `device` it goes
 * to lmdb's asynchronous transaction, which flushes before resolving.
 */

/**
 * Runs `apply` for every queued write inside one transaction; resolves once it has committed. (A write is answered
 * then, or once what `after` gives for it has settled: a leader's replicated write waits for its followers.)
 */
export type Transact = (run: () => void) => unknown;

interface Queued<W> {
  write: W;
  resolve(applied: boolean): void;
  reject(err: unknown): void;
  applied?: boolean;
  error?: unknown;
}

export class GroupCommit<W> {
  private queue: Queued<W>[] = [];
  private scheduled = false;
  /** The commit under way (asynchronous transactions only). */
  private committing: Promise<unknown> | undefined;

  constructor(
    private readonly transact: Transact,
    private readonly apply: (write: W) => boolean,
    /** Once committed, what a write must still wait for before it is answered (none: answered at once). */
    private readonly after?: (write: W) => Promise<unknown> | undefined,
  ) {}

  /** Queues a write; resolves with whether it was applied (a failed condition is `false`). */
  submit(write: W): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /**
   * Resolves when no transaction is between applying and committing. A caller that then acts synchronously (opens a
   * snapshot, starts capturing changes) sees every write either committed or not yet applied — none half-way.
   */
  async idle(): Promise<void> {
    while (this.committing) await this.committing.catch(() => undefined);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const group = this.queue;
    this.queue = [];
    let committed: unknown;
    try {
      committed = this.transact(() => {
        for (const q of group) {
          // One write that cannot be applied (a value lmdb cannot encode) fails alone, not its whole group.
          try {
            q.applied = this.apply(q.write);
          } catch (err) {
            q.error = err;
          }
        }
      });
    } catch (err) {
      for (const q of group) q.reject(err);
      return;
    }
    const done = Promise.resolve(committed);
    this.committing = done;
    void done.finally(() => {
      if (this.committing === done) this.committing = undefined;
    }).catch(() => undefined);
    done.then(
      () => {
        for (const q of group) {
          const wait = q.error === undefined ? this.after?.(q.write) : undefined;
          if (q.error !== undefined) q.reject(q.error);
          else if (wait) wait.then(() => q.resolve(q.applied === true), q.reject);
          else q.resolve(q.applied === true);
        }
      },
      (err: unknown) => {
        for (const q of group) q.reject(err);
      },
    );
  };
}
