/**
 * Concurrent writers and readers that check the storage tier's promises while the cluster changes under them:
 *
 * - every acknowledged write is there afterwards with its latest value (or a later one whose write failed without an
 *   answer: its outcome is unknown, so it may or may not have been applied);
 * - no read returns a value older than a write acknowledged before the read began (per key).
 *
 * Each key has one writer, and its values only grow, so "older" is a comparison.
 */
import type { ShardflowClient } from '../../src/client/index.js';

export class WriteChecker {
  private readonly acked = new Map<string, number>();
  /** Values written since the key's last acknowledgement whose outcome is unknown (the write failed). */
  private readonly unknown = new Map<string, Set<number>>();
  private running = false;
  private tasks: Promise<void>[] = [];
  writes = 0;
  failedWrites = 0;
  reads = 0;
  readonly staleReads: string[] = [];

  constructor(
    private readonly client: ShardflowClient,
    private readonly namespace: string,
    private readonly keys: string[],
    private readonly options: { writers?: number; readers?: number } = {},
  ) {}

  start(): void {
    this.running = true;
    const writers = this.options.writers ?? 8;
    for (let w = 0; w < writers; w++) this.tasks.push(this.writer(w, writers));
    for (let r = 0; r < (this.options.readers ?? 2); r++) this.tasks.push(this.reader(r));
  }

  /** Resolves once at least `n` more writes have been acknowledged (proof the writers are writing now). */
  async progress(n: number, timeoutMs = 30_000): Promise<void> {
    const target = this.writes + n;
    const deadline = Date.now() + timeoutMs;
    while (this.writes < target) {
      if (Date.now() > deadline) throw new Error(`writers made no progress: ${this.writes}/${target}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.tasks);
    this.tasks = [];
  }

  /** Reads every key written and returns what is wrong (empty when all is well). */
  async verify(client: ShardflowClient = this.client): Promise<string[]> {
    const wrong: string[] = [];
    for (const [key, value] of this.acked) {
      const v = (await client.get(this.namespace, key)) as number | undefined;
      if (v === value) continue;
      if (typeof v === 'number' && v > value && this.unknown.get(key)?.has(v)) continue;
      wrong.push(`${key}: read ${String(v)}, acknowledged ${value}`);
    }
    return [...this.staleReads, ...wrong];
  }

  private async writer(w: number, writers: number): Promise<void> {
    const mine = this.keys.filter((_, i) => i % writers === w);
    for (let round = 1; this.running; round++) {
      const key = mine[(round * 7919) % mine.length]!;
      const value = round * writers + w; // grows per key: one writer per key
      try {
        await this.client.put(this.namespace, key, value);
        this.acked.set(key, value);
        this.unknown.delete(key);
        this.writes++;
      } catch {
        this.failedWrites++;
        let s = this.unknown.get(key);
        if (!s) this.unknown.set(key, (s = new Set()));
        s.add(value);
        await new Promise((r) => setTimeout(r, 20)); // back off while a node is down
      }
    }
  }

  private async reader(r: number): Promise<void> {
    for (let i = r; this.running; i += 13) {
      const key = this.keys[i % this.keys.length]!;
      const floor = this.acked.get(key);
      try {
        const v = (await this.client.get(this.namespace, key)) as number | undefined;
        this.reads++;
        if (floor !== undefined && (typeof v !== 'number' || v < floor)) {
          this.staleReads.push(`stale read of ${key}: ${String(v)} after ${floor} was acknowledged`);
        }
      } catch {
        await new Promise((res) => setTimeout(res, 20));
      }
    }
  }
}
