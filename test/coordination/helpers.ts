/** Small test tools for coordination: await events with a deadline instead of sleeping and hoping. */
import { randomBytes } from 'node:crypto';
import type { WatchEvent } from '../../src/coordination/index.js';

/** Rejects with `what` if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A unique key prefix per test, so tests sharing a store never see each other's keys. */
export function uniquePrefix(label = 't'): string {
  return `/${label}-${randomBytes(4).toString('hex')}/`;
}

/** Collects events and lets a test wait for the one it needs. */
export class Collector<T = WatchEvent> {
  readonly items: T[] = [];
  private waiters: { match: (item: T) => boolean; resolve: (item: T) => void }[] = [];

  /** Pass as the listener. */
  readonly push = (item: T): void => {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.match(item)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(item);
      }
    }
  };

  /** The first item (already collected or still to come) that matches. */
  waitFor(match: (item: T) => boolean, ms: number, what = 'an event'): Promise<T> {
    const seen = this.items.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return within(new Promise<T>((resolve) => this.waiters.push({ match, resolve })), ms, what);
  }

  /** Waits until `count` items have been collected; returns them. */
  async waitForCount(count: number, ms: number): Promise<T[]> {
    if (this.items.length < count) {
      const enough = new Promise<T>((resolve) => this.waiters.push({ match: () => this.items.length >= count, resolve }));
      await within(enough, ms, `${count} events (have ${this.items.length})`);
    }
    return this.items.slice(0, count);
  }
}

/** A promise with its resolve function outside, for one-off signals from listeners. */
export function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
