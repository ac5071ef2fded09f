/**
 * The timers of one keyed stage: a min-heap per time domain ordered by (time, key), so timers fire in time order
 * and ties in key order (deterministic output, e.g. a word count's final counts in key order). Deleting is lazy: a
 * timer is live while its id is in `live`. The heap is memory only; the keyed stage persists each key's timers in
 * its state and rebuilds the heap from there on restore.
 */
export type TimeDomainName = 'event' | 'processing';

export interface TimerEntry {
  time: number;
  domain: TimeDomainName;
  key: string | number;
  keyStr: string;
  slot: number;
}

function less(a: TimerEntry, b: TimerEntry): boolean {
  return a.time < b.time || (a.time === b.time && a.keyStr < b.keyStr);
}

class Heap {
  private readonly items: TimerEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): TimerEntry | undefined {
    return this.items[0];
  }

  push(e: TimerEntry): void {
    const a = this.items;
    a.push(e);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): TimerEntry | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export function timerId(domain: TimeDomainName, time: number, keyStr: string): string {
  return `${domain}\0${time}\0${keyStr}`;
}

export class TimerQueue {
  private readonly heaps = { event: new Heap(), processing: new Heap() };
  private readonly live = new Set<string>();

  /** False if the same timer (domain, time, key) was already set. */
  add(e: TimerEntry): boolean {
    const id = timerId(e.domain, e.time, e.keyStr);
    if (this.live.has(id)) return false;
    this.live.add(id);
    this.heaps[e.domain].push(e);
    return true;
  }

  delete(domain: TimeDomainName, time: number, keyStr: string): boolean {
    return this.live.delete(timerId(domain, time, keyStr));
  }

  /** Removes and returns the earliest live timer of `domain` at or before `upTo`. */
  next(domain: TimeDomainName, upTo: number): TimerEntry | undefined {
    const heap = this.heaps[domain];
    for (let top = heap.peek(); top && top.time <= upTo; top = heap.peek()) {
      heap.pop();
      if (this.live.delete(timerId(domain, top.time, top.keyStr))) return top;
    }
    return undefined;
  }

  get size(): number {
    return this.live.size;
  }
}
