/**
 * Request latencies of the last whole second, for a p99 that a migration driver can follow (to slow down when the
 * foreground suffers) and a dashboard can chart. Bounded: past `capacity` samples in a second, reservoir sampling
 * keeps a uniform sample, so a busy node spends the same memory as a quiet one.
 *
 * @example
 * ```ts
 * const w = new LatencyWindow();
 * const t0 = performance.now();
 * await handle(request);
 * w.record(performance.now() - t0);
 * w.snapshot(); // { p99Ms, count } of the last whole second
 * ```
 */
export class LatencyWindow {
  private second = Math.floor(Date.now() / 1000);
  private samples: number[] = [];
  private seen = 0;
  private last: { p99Ms: number; p50Ms: number; count: number } = { p99Ms: 0, p50Ms: 0, count: 0 };

  constructor(private readonly capacity = 4096) {}

  record(ms: number, now = Date.now()): void {
    this.roll(now);
    this.seen++;
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else {
      const i = Math.floor(Math.random() * this.seen);
      if (i < this.capacity) this.samples[i] = ms;
    }
  }

  /** Latency of the last whole second (zeros if it had no requests). */
  snapshot(now = Date.now()): { p99Ms: number; p50Ms: number; count: number } {
    this.roll(now);
    return this.last;
  }

  private roll(now: number): void {
    const second = Math.floor(now / 1000);
    if (second === this.second) return;
    const sorted = second === this.second + 1 ? this.samples.sort((a, b) => a - b) : [];
    const at = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    this.last = { p99Ms: round(at(0.99)), p50Ms: round(at(0.5)), count: second === this.second + 1 ? this.seen : 0 };
    this.second = second;
    this.samples = [];
    this.seen = 0;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
