/**
 * A bounded queue between two steps of a stream-mode job: `put` waits while it is full, which is how a slow sink
 * slows the steps before it and, in the end, the source (backpressure). Closing it wakes every waiter.
 */
export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;
  private closed = false;
  private takers: Array<() => void> = [];
  private putters: Array<() => void> = [];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** Resolves once the item is queued; false if the queue was closed. */
  async put(item: T): Promise<boolean> {
    while (!this.closed && this.size >= this.capacity) await new Promise<void>((r) => this.putters.push(r));
    if (this.closed) return false;
    this.items.push(item);
    this.takers.shift()?.();
    return true;
  }

  /** Up to `max` items, waiting for at least one; empty once closed. */
  async take(max = 1): Promise<T[]> {
    while (!this.closed && this.size === 0) await new Promise<void>((r) => this.takers.push(r));
    if (this.size === 0) return [];
    const end = Math.min(this.items.length, this.head + max);
    const out = this.items.slice(this.head, end);
    this.head = end;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    // Wake as many producers as there is room for.
    for (let room = this.capacity - this.size; room > 0 && this.putters.length > 0; room--) this.putters.shift()!();
    return out;
  }

  close(): void {
    this.closed = true;
    for (const wake of this.takers.splice(0)) wake();
    for (const wake of this.putters.splice(0)) wake();
  }
}
