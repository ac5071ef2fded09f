/** How many seconds a {@link RateMeter} averages over. */
export const RATE_WINDOW_S = 5;

/**
 * Events per second over a short sliding window of one-second buckets: what a node reports as its request rate
 * (`node.stats`), for `shardflow status` and the autoscaler.
 *
 * @example
 * ```ts
 * const meter = new RateMeter();
 * meter.mark(); // once per request served
 * meter.rate(); // requests per second over the last 5 whole seconds
 * ```
 */
export class RateMeter {
  private readonly buckets = new Array<number>(RATE_WINDOW_S + 1).fill(0);
  private second = Math.floor(Date.now() / 1000);

  mark(now = Date.now()): void {
    this.advance(now);
    this.buckets[this.second % this.buckets.length]! += 1;
  }

  /** Average over the last full seconds (the current, partial one is left out). */
  rate(now = Date.now()): number {
    this.advance(now);
    let sum = 0;
    for (let i = 1; i <= RATE_WINDOW_S; i++) sum += this.buckets[(this.second - i + this.buckets.length * 2) % this.buckets.length]!;
    return sum / RATE_WINDOW_S;
  }

  private advance(now: number): void {
    const s = Math.floor(now / 1000);
    for (let t = this.second + 1; t <= s && t <= this.second + this.buckets.length; t++) this.buckets[t % this.buckets.length] = 0;
    this.second = Math.max(this.second, s);
  }
}
