/**
 * ExchangeOut / ExchangeIn in one process: one ExchangeOut and one ExchangeIn per simulated worker, joined by a send
 * function that calls the receiver's `accept` (optionally after a seeded random delay; ExchangeOut keeps one send in
 * flight per receiver, so each (from, to) pair stays in order, as the real transport does).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 as rng } from '../dispatch/prng.js';
import { ExchangeIn, ExchangeOut } from '../../src/processing/exchange.js';
import { BatchQueue, GroupedOutlet } from '../../src/processing/batch-queue.js';
import { parseTrigger } from '../../src/processing/triggers.js';
import type { BarrierEl, Element, EndEl, MarkEl, RecordEl, TickEl, WatermarkEl } from '../../src/processing/elements.js';

// ---------------------------------------------------------------------------------------------------------------
// Elements and small helpers

interface Val {
  from: number;
  i: number;
  to: number;
  /** How many barriers the sender had put before this record. */
  seg: number;
}

const rec = (value: unknown, ts = 0): RecordEl => ({ t: 'r', value, ts, readAt: 0, bytes: 1, split: 0 });
const wm = (w: number): WatermarkEl => ({ t: 'w', wm: w, readAt: 0 });
const bar = (epoch: number, final = false, extra: Partial<BarrierEl> = {}): BarrierEl => ({ t: 'b', epoch, final, ...extra });
const end = (): EndEl => ({ t: 'e', readAt: 0 });
const tickEl = (now: number): TickEl => ({ t: 'p', now });
const mark = (split: number): MarkEl => ({ t: 'm', split, done: false, readAt: 0 });
const positionsOf = (w: number, epoch: number) => ({ [`split-${w}`]: { position: { worker: w, epoch }, done: false } });

const routeByTo = (el: RecordEl): number => (el.value as Val).to;

const macrotask = () => new Promise<void>((r) => setImmediate(r));
async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await macrotask();
}

/** Observes a promise's state without awaiting it. */
function track<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const s: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (v) => {
      s.state = 'resolved';
      s.value = v;
    },
    (e: unknown) => {
      s.state = 'rejected';
      s.error = e;
    },
  );
  return s;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out (${ms} ms): ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Takes from an ExchangeIn in a loop until it is closed; every element taken goes to `out`, in order. */
class Consumer {
  readonly out: Element[] = [];
  readonly done: Promise<void>;
  private endWaiters: Array<() => void> = [];

  constructor(
    private readonly input: ExchangeIn,
    max = 1_000_000,
    onBatch: (els: Element[]) => void = () => undefined,
  ) {
    this.done = (async () => {
      for (;;) {
        const els = await input.take(max);
        if (els.length === 0) return;
        onBatch(els);
        this.out.push(...els);
        if (this.terminated) for (const w of this.endWaiters.splice(0)) w();
      }
    })();
  }

  /** An end or a final barrier has been taken. */
  get terminated(): boolean {
    return this.out.some((el) => el.t === 'e' || (el.t === 'b' && el.final));
  }

  whenTerminated(): Promise<void> {
    return this.terminated ? Promise.resolve() : new Promise<void>((r) => this.endWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.input.close();
    await this.done;
  }

  records(): unknown[] {
    return this.out.filter((el): el is RecordEl => el.t === 'r').map((el) => el.value);
  }
  watermarks(): number[] {
    return this.out.filter((el): el is WatermarkEl => el.t === 'w').map((el) => el.wm);
  }
  barriers(): BarrierEl[] {
    return this.out.filter((el): el is BarrierEl => el.t === 'b');
  }
  kinds(): string {
    return this.out.map((el) => (el.t === 'b' ? `b${el.epoch}${el.final ? 'F' : ''}` : el.t)).join(' ');
  }
}

/** Per (to, from): what has been handed to `accept` so far. */
interface Delivered {
  els: Element[];
  wm: number;
  ended: boolean;
  barriers: Set<number>;
}

interface Net {
  ins: ExchangeIn[];
  outs: ExchangeOut[];
  /** delivered[to][from] */
  delivered: Delivered[][];
  /** onBarrier calls per receiving worker. */
  seen: number[][];
}

function network(
  n: number,
  options: { capacity: number; route?: (el: RecordEl) => number; seed?: number; send?: (from: number, to: number, els: Element[]) => Promise<void> | undefined },
): Net {
  const random = options.seed === undefined ? undefined : rng(options.seed);
  const seen = Array.from({ length: n }, () => [] as number[]);
  const ins = Array.from({ length: n }, (_, i) => new ExchangeIn(n, i, options.capacity, (epoch) => seen[i]!.push(epoch)));
  const delivered = Array.from({ length: n }, () =>
    Array.from({ length: n }, (): Delivered => ({ els: [], wm: -Infinity, ended: false, barriers: new Set() })),
  );
  const outs = Array.from(
    { length: n },
    (_, from) =>
      new ExchangeOut(
        n,
        from,
        options.route ?? routeByTo,
        async (to, els) => {
          const custom = options.send?.(from, to, els);
          if (custom) return custom;
          if (random) {
            // Random delays: independent sends (other pairs) interleave in random orders.
            const k = Math.floor(random() * 4);
            for (let j = 0; j < k; j++) await (random() < 0.5 ? Promise.resolve() : macrotask());
          }
          const d = delivered[to]![from]!;
          for (const el of els) {
            d.els.push(el);
            if (el.t === 'w') d.wm = Math.max(d.wm, el.wm);
            else if (el.t === 'e') d.ended = true;
            else if (el.t === 'b') d.barriers.add(el.epoch);
          }
          await ins[to]!.accept(from, els);
        },
        options.capacity,
      ),
  );
  return { ins, outs, delivered, seen };
}

async function putAll(out: ExchangeOut, els: Element[]): Promise<void> {
  for (const el of els) await out.put(el);
  await out.drained();
}

// ---------------------------------------------------------------------------------------------------------------

describe('ExchangeOut / ExchangeIn: records', () => {
  it('every record reaches the worker its route picks, exactly once, in order per sender', async () => {
    const n = 3;
    const net = network(n, { capacity: 4, seed: 7 });
    const consumers = net.ins.map((input) => new Consumer(input, 5));
    const per = 60;
    await Promise.all(
      net.outs.map((out, from) =>
        putAll(out, [
          ...Array.from({ length: per }, (_, i) => rec({ from, i, to: (from * 7 + i * 13) % n, seg: 0 } satisfies Val)),
          end(),
        ]),
      ),
    );
    await withTimeout(Promise.all(consumers.map((c) => c.whenTerminated())), 5000, 'ends');
    for (let to = 0; to < n; to++) {
      const got = consumers[to]!.records() as Val[];
      expect(got.every((v) => v.to === to)).toBe(true);
      for (let from = 0; from < n; from++) {
        const expected = Array.from({ length: per }, (_, i) => i).filter((i) => (from * 7 + i * 13) % n === to);
        expect(got.filter((v) => v.from === from).map((v) => v.i)).toEqual(expected);
      }
    }
    await Promise.all(consumers.map((c) => c.stop()));
  });

  it('ticks and marks stay on their own worker', async () => {
    const n = 3;
    const net = network(n, { capacity: 8 });
    const consumers = net.ins.map((input) => new Consumer(input));
    await Promise.all(net.outs.map((out, from) => putAll(out, [tickEl(100 + from), mark(from), end()])));
    await withTimeout(Promise.all(consumers.map((c) => c.whenTerminated())), 5000, 'ends');
    for (let w = 0; w < n; w++) {
      const ticks = consumers[w]!.out.filter((el): el is TickEl => el.t === 'p').map((el) => el.now);
      const marks = consumers[w]!.out.filter((el): el is MarkEl => el.t === 'm').map((el) => el.split);
      expect(ticks).toEqual([100 + w]);
      expect(marks).toEqual([w]);
    }
    await Promise.all(consumers.map((c) => c.stop()));
  });
});

describe('ExchangeIn: watermarks', () => {
  it('emits the least of its live channels, never decreasing; an ended channel no longer holds it back', async () => {
    const input = new ExchangeIn(3, 0, 16);
    const c = new Consumer(input);
    await input.accept(0, [wm(5)]);
    await input.accept(1, [wm(3)]);
    await settle();
    expect(c.watermarks()).toEqual([]); // channel 2 has sent nothing yet
    await input.accept(2, [wm(7)]);
    await settle();
    expect(c.watermarks()).toEqual([3]);
    await input.accept(1, [wm(10)]);
    await settle();
    expect(c.watermarks()).toEqual([3, 5]);
    await input.accept(0, [wm(4)]); // a lower watermark from one channel never lowers the merged one
    await settle();
    expect(c.watermarks()).toEqual([3, 5]);
    await input.accept(0, [wm(6)]);
    await settle();
    expect(c.watermarks()).toEqual([3, 5, 6]);
    await input.accept(2, [end()]); // channel 2 (at 7) ends: live min is still 6
    await settle();
    expect(c.watermarks()).toEqual([3, 5, 6]);
    await input.accept(0, [wm(20)]); // live channels: 0 at 20, 1 at 10 (channel 2's 7 no longer counts)
    await settle();
    expect(c.watermarks()).toEqual([3, 5, 6, 10]);
    await input.accept(0, [end()]); // only channel 1 (10) is live: nothing new
    await settle();
    expect(c.watermarks()).toEqual([3, 5, 6, 10]);
    await c.stop();
  });

  it('an ending channel that held the watermark back releases it at once', async () => {
    const input = new ExchangeIn(2, 0, 16);
    const c = new Consumer(input);
    await input.accept(0, [wm(5)]);
    await input.accept(1, [wm(10)]);
    await settle();
    expect(c.watermarks()).toEqual([5]);
    await input.accept(0, [end()]);
    await settle();
    expect(c.watermarks()).toEqual([5, 10]);
    await c.stop();
  });

  it('after every sender sent watermark W (and nothing more) the receiver has emitted W', async () => {
    const n = 3;
    const net = network(n, { capacity: 2, seed: 11 });
    const consumers = net.ins.map((input) => new Consumer(input, 3));
    const random = rng(5);
    await Promise.all(
      net.outs.map((out, from) => {
        let w = 0;
        const els: Element[] = [];
        for (let i = 0; i < 30; i++) {
          w += 1 + Math.floor(random() * 5);
          els.push(wm(w), rec({ from, i, to: i % n, seg: 0 } satisfies Val));
        }
        els.push(wm(1000));
        return putAll(out, els);
      }),
    );
    await settle(10);
    for (const c of consumers) {
      const wms = c.watermarks();
      expect(wms.at(-1)).toBe(1000);
      for (let i = 1; i < wms.length; i++) expect(wms[i]!).toBeGreaterThanOrEqual(wms[i - 1]!);
      expect(c.out.some((el) => el.t === 'e')).toBe(false);
    }
    await Promise.all(consumers.map((c) => c.stop()));
  });
});

describe('ExchangeIn: aligned barriers', () => {
  it('passes barrier E on once, after every live channel delivered it; records keep their side of it', async () => {
    const seen: number[] = [];
    const input = new ExchangeIn(3, 0, 16, (e) => seen.push(e));
    const c = new Consumer(input);
    await input.accept(0, [rec('a0'), bar(1), rec('a1')]);
    await settle();
    expect(c.records()).toEqual(['a0']);
    expect(c.barriers()).toEqual([]);
    expect(seen).toEqual([1]); // reported as soon as it arrived on one channel
    await input.accept(1, [rec('b0'), bar(1), rec('b1')]);
    await settle();
    expect(c.records()).toEqual(['a0', 'b0']);
    expect(c.barriers()).toEqual([]);
    expect(seen).toEqual([1, 1]);
    await input.accept(2, [rec('c0')]);
    await settle();
    expect(c.barriers()).toEqual([]);
    expect(c.records()).toContain('c0');
    await input.accept(2, [bar(1), rec('c1')]);
    await settle();
    expect(seen).toEqual([1, 1, 1]);
    expect(c.barriers().map((b) => [b.epoch, b.final])).toEqual([[1, false]]);
    const out = c.out.map((el) => (el.t === 'r' ? el.value : el.t));
    const at = out.indexOf('b');
    expect(new Set(out.slice(0, at))).toEqual(new Set(['a0', 'b0', 'c0']));
    expect(new Set(out.slice(at + 1))).toEqual(new Set(['a1', 'b1', 'c1']));
    // A second epoch aligns the same way.
    await input.accept(0, [bar(2)]);
    await input.accept(1, [bar(2)]);
    await settle();
    expect(c.barriers().map((b) => b.epoch)).toEqual([1]);
    await input.accept(2, [bar(2)]);
    await settle();
    expect(c.barriers().map((b) => b.epoch)).toEqual([1, 2]);
    await c.stop();
  });

  it('a channel that ended does not hold alignment back', async () => {
    const input = new ExchangeIn(3, 0, 16);
    const c = new Consumer(input);
    await input.accept(2, [rec('c0'), end()]);
    await input.accept(0, [bar(1), rec('a1')]);
    await settle();
    expect(c.barriers()).toEqual([]);
    await input.accept(1, [bar(1)]);
    await settle();
    expect(c.kinds()).toBe('r b1 r');
    // …and an end on the one channel still aligning completes a barrier waiting on it.
    await input.accept(0, [bar(2)]);
    await input.accept(1, [rec('b1'), end()]);
    await settle();
    expect(c.kinds()).toBe('r b1 r r b2');
    await input.accept(0, [end()]);
    await settle();
    expect(c.kinds()).toBe('r b1 r r b2 e');
    await c.stop();
  });

  it('the merged barrier carries this worker\'s own barrier (positions, watermark state) when its channel delivered it', async () => {
    const input = new ExchangeIn(3, 1, 16);
    const c = new Consumer(input);
    await input.accept(0, [bar(1, false, { positions: positionsOf(0, 1), watermarks: { from: 0 } })]);
    await input.accept(1, [bar(1, false, { positions: positionsOf(1, 1), watermarks: { from: 1 } })]);
    await input.accept(2, [bar(1, false, { positions: positionsOf(2, 1), watermarks: { from: 2 } })]);
    await settle();
    expect(c.barriers()).toEqual([{ t: 'b', epoch: 1, final: false, positions: positionsOf(1, 1), watermarks: { from: 1 } }]);
    // Own channel first this time: still its own fields, whatever the arrival order.
    await input.accept(1, [bar(2, false, { positions: positionsOf(1, 2) })]);
    await input.accept(2, [bar(2, false, { positions: positionsOf(2, 2) })]);
    await input.accept(0, [bar(2, false, { positions: positionsOf(0, 2) })]);
    await settle();
    expect(c.barriers()[1]).toEqual({ t: 'b', epoch: 2, final: false, positions: positionsOf(1, 2) });
    // Its own source ended: the merged barrier carries no positions.
    await input.accept(1, [end()]);
    await input.accept(0, [bar(3, false, { positions: positionsOf(0, 3) })]);
    await input.accept(2, [bar(3, false, { positions: positionsOf(2, 3) })]);
    await settle();
    const third = c.barriers()[2]!;
    expect(third.epoch).toBe(3);
    expect(third.final).toBe(false);
    expect(third.positions).toBeUndefined();
    await c.stop();
  });
});

describe('ExchangeIn: end and stop', () => {
  it('emits exactly one end, after every channel ended, and nothing after it', async () => {
    const input = new ExchangeIn(3, 0, 16);
    const c = new Consumer(input);
    await input.accept(0, [rec('a'), end()]);
    await input.accept(1, [end()]);
    await settle();
    expect(c.out.some((el) => el.t === 'e')).toBe(false);
    await input.accept(2, [wm(3), rec('c'), end()]);
    await settle();
    expect(c.out.filter((el) => el.t === 'e')).toHaveLength(1);
    expect(c.out.at(-1)!.t).toBe('e');
    const before = c.out.length;
    await settle();
    expect(c.out.length).toBe(before);
    await c.stop();
  });

  it('some senders stop (final barrier), the others then end: a final barrier of the next epoch, not an end', async () => {
    const input = new ExchangeIn(2, 0, 16);
    const c = new Consumer(input);
    await input.accept(0, [wm(10), bar(1), bar(2)]);
    await input.accept(1, [bar(1), bar(2)]);
    await input.accept(0, [bar(3, true)]);
    await input.accept(1, [rec('x'), wm(7)]);
    await settle();
    expect(c.kinds()).toBe('b1 b2 r w');
    await input.accept(1, [end()]);
    await settle();
    // Last aligned epoch 2: a final barrier 3 goes on, no end (channel 1 ending first releases channel 0's w10).
    expect(c.kinds()).toBe('b1 b2 r w w b3F');
    expect(c.watermarks()).toEqual([7, 10]);
    expect(c.out.some((el) => el.t === 'e')).toBe(false);
    await c.stop();
  });

  it('a final barrier aligned with a non-final one: non-final merged barrier; the stopped channel ends; the rest ending gives a final barrier of the next epoch', async () => {
    const input = new ExchangeIn(2, 0, 16);
    const c = new Consumer(input);
    await input.accept(0, [wm(5), bar(1), bar(2, true)]);
    await input.accept(1, [wm(6), bar(1), bar(2)]);
    await settle();
    // Channel 0 stopped at 2: it no longer holds the watermark back, so channel 1's 6 goes on at once.
    expect(c.kinds()).toBe('w b1 b2 w');
    expect(c.barriers()[1]!.final).toBe(false);
    expect(c.watermarks()).toEqual([5, 6]);
    // Nor later barriers.
    await input.accept(1, [rec('y'), wm(20), bar(3), rec('z')]);
    await settle();
    expect(c.kinds()).toBe('w b1 b2 w r w b3 r');
    expect(c.watermarks()).toEqual([5, 6, 20]);
    await input.accept(1, [end()]);
    await settle();
    expect(c.kinds()).toBe('w b1 b2 w r w b3 r b4F');
    expect(c.out.some((el) => el.t === 'e')).toBe(false);
    await c.stop();
  });

  it('every sender stops at the same epoch: the merged barrier is final, nothing after it', async () => {
    const input = new ExchangeIn(3, 2, 16);
    const c = new Consumer(input);
    await input.accept(0, [rec('a'), bar(1, true)]);
    await input.accept(1, [bar(1, true)]);
    await settle();
    expect(c.barriers()).toEqual([]);
    await input.accept(2, [bar(1, true, { positions: positionsOf(2, 1) })]);
    await settle();
    expect(c.kinds()).toBe('r b1F');
    expect(c.barriers()[0]!.positions).toEqual(positionsOf(2, 1));
    await c.stop();
  });

  it('senders that ended earlier do not make a stop an end: the merged barrier is final', async () => {
    const input = new ExchangeIn(3, 0, 16);
    const c = new Consumer(input);
    await input.accept(2, [rec('c'), end()]);
    await input.accept(0, [bar(1, true)]);
    await input.accept(1, [bar(1, true)]);
    await settle();
    expect(c.kinds()).toBe('r b1F');
    await c.stop();
  });

  // Module comment: "its watermark is the least of its live channels' (a channel that ended no longer holds it
  // back)" — as for a channel that ends with `e`, also for one a final barrier ends.
  it('a channel ended by a final barrier releases the watermark it held back at once', async () => {
    const input = new ExchangeIn(2, 0, 16);
    const c = new Consumer(input);
    await input.accept(0, [wm(5), bar(1, true)]);
    await input.accept(1, [wm(10), bar(1)]);
    await settle();
    // w5, then the non-final merged barrier 1; channel 0 has ended, so the only live channel's 10 goes on.
    expect(c.kinds()).toBe('w b1 w');
    expect(c.watermarks()).toEqual([5, 10]);
    await c.stop();
  });
});

describe('ExchangeOut / ExchangeIn: backpressure', () => {
  it('put waits while the receiver is full and nobody takes; it resolves once take drains', async () => {
    const capacity = 2;
    const net = network(1, { capacity, route: () => 0 });
    const out = net.outs[0]!;
    let resolved = 0;
    let pending: ReturnType<typeof track<boolean>> | undefined;
    for (let i = 0; i < 1000; i++) {
      const p = track(out.put(rec(i)));
      await settle(3);
      if (p.state !== 'resolved') {
        pending = p;
        break;
      }
      resolved++;
    }
    expect(pending?.state).toBe('pending');
    // Bounded: what the sender holds plus the receiver's buffers, nowhere near 1000.
    expect(resolved).toBeLessThan(200);
    await settle(10);
    expect(pending!.state).toBe('pending');
    const c = new Consumer(net.ins[0]!, 1);
    await withTimeout(
      (async () => {
        while (pending!.state === 'pending') await macrotask();
      })(),
      5000,
      'put resolving after take',
    );
    expect(pending!.state).toBe('resolved');
    await putAll(out, [end()]);
    await withTimeout(c.whenTerminated(), 5000, 'end');
    expect(c.records()).toEqual(Array.from({ length: resolved + 1 }, (_, i) => i));
    await c.stop();
  });

  it('accept on a full channel waits until take makes room', async () => {
    const input = new ExchangeIn(1, 0, 2);
    const first = track(input.accept(0, Array.from({ length: 100 }, (_, i) => rec(i))));
    await settle(5);
    expect(first.state).toBe('pending');
    const c = new Consumer(input, 1);
    await withTimeout(
      (async () => {
        while (first.state === 'pending') await macrotask();
      })(),
      5000,
      'accept',
    );
    expect(first.state).toBe('resolved');
    await c.stop();
  });

  it('a channel blocked at a barrier still accepts, so alignment never deadlocks on a full channel', async () => {
    const input = new ExchangeIn(2, 0, 2);
    // Nothing takes: still, channel 0 (blocked at barrier 1) accepts far beyond its capacity.
    const a = track(input.accept(0, [bar(1), ...Array.from({ length: 50 }, (_, i) => rec(`a${i}`))]));
    await settle(3);
    expect(a.state).toBe('resolved');
    const b = track(input.accept(0, Array.from({ length: 50 }, (_, i) => rec(`a${50 + i}`))));
    await settle(3);
    expect(b.state).toBe('resolved');

    // Through ExchangeOut: worker 0 puts its barrier then many records to worker 0; worker 1 has not reached its
    // barrier and nobody takes at worker 0 yet. Worker 0's puts must all resolve.
    const net = network(2, { capacity: 2, route: () => 0 });
    const c1 = new Consumer(net.ins[1]!);
    await net.outs[0]!.put(bar(1));
    const puts = Array.from({ length: 100 }, (_, i) => i);
    await withTimeout(
      (async () => {
        for (const i of puts) await net.outs[0]!.put(rec({ from: 0, i, to: 0, seg: 1 } satisfies Val));
        await net.outs[0]!.drained();
      })(),
      5000,
      "puts behind worker 0's barrier",
    );
    // Worker 1 sends records (before its barrier) then its barrier; worker 0's receiver starts taking.
    const c0 = new Consumer(net.ins[0]!, 3);
    await withTimeout(
      putAll(net.outs[1]!, [...Array.from({ length: 20 }, (_, i) => rec({ from: 1, i, to: 0, seg: 0 } satisfies Val)), bar(1), end()]),
      5000,
      "worker 1's puts",
    );
    await putAll(net.outs[0]!, [end()]);
    await withTimeout(Promise.all([c0.whenTerminated(), c1.whenTerminated()]), 5000, 'ends');
    const out = c0.out.map((el) => (el.t === 'r' ? (el.value as Val) : el.t));
    const at = out.indexOf('b');
    expect(out.slice(0, at).every((v) => typeof v === 'object' && v.seg === 0)).toBe(true);
    expect(out.slice(0, at)).toHaveLength(20);
    expect(out.slice(at + 1, -1)).toHaveLength(100);
    expect(out.slice(at + 1, -1).every((v) => typeof v === 'object' && v.seg === 1)).toBe(true);
    expect(out.at(-1)).toBe('e');
    expect(c1.kinds()).toBe('b1 e');
    await Promise.all([c0.stop(), c1.stop()]);
  });
});

describe('ExchangeOut: failures', () => {
  it('a failing send makes later puts (and drained) reject with its error', async () => {
    const boom = new Error('link down');
    const net = network(2, {
      capacity: 4,
      send: (_from, to) => (to === 1 ? Promise.reject(boom) : undefined),
    });
    const c0 = new Consumer(net.ins[0]!);
    const out = net.outs[0]!;
    await out.put(rec({ from: 0, i: 0, to: 0, seg: 0 } satisfies Val));
    // The record to worker 1 fails on the way; its own put may already have resolved.
    await out.put(rec({ from: 0, i: 1, to: 1, seg: 0 } satisfies Val)).catch(() => undefined);
    await settle();
    await expect(out.put(rec({ from: 0, i: 2, to: 0, seg: 0 } satisfies Val))).rejects.toBe(boom);
    await expect(out.put(wm(1))).rejects.toBe(boom);
    await expect(out.drained()).rejects.toBe(boom);
    await c0.stop();
    net.ins[1]!.close();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Property: random per-sender sequences (records to random workers, increasing watermarks, barriers 1..k in the same
// order on every sender, a common last watermark, then the end), random delays, small capacities.

const FINAL_WM = 1_000_000;

type Item = { kind: 'r'; to: number } | { kind: 'w'; inc: number };

const scenarioArb = fc
  .record({
    n: fc.integer({ min: 1, max: 4 }),
    k: fc.integer({ min: 0, max: 3 }),
    capacity: fc.integer({ min: 1, max: 6 }),
    take: fc.integer({ min: 1, max: 8 }),
    seed: fc.integer(),
  })
  .chain((base) =>
    fc.record({
      base: fc.constant(base),
      senders: fc.array(
        fc.array(
          fc.array(
            fc.oneof(
              { weight: 3, arbitrary: fc.record({ kind: fc.constant('r' as const), to: fc.integer({ min: 0, max: base.n - 1 }) }) },
              { weight: 1, arbitrary: fc.record({ kind: fc.constant('w' as const), inc: fc.integer({ min: 1, max: 5 }) }) },
            ),
            { maxLength: 12 },
          ),
          { minLength: base.k + 1, maxLength: base.k + 1 },
        ),
        { minLength: base.n, maxLength: base.n },
      ),
    }),
  );

function sequenceOf(from: number, segments: Item[][]): Element[] {
  const els: Element[] = [];
  let w = 0;
  let i = 0;
  segments.forEach((segment, seg) => {
    if (seg > 0) els.push(bar(seg, false, { positions: positionsOf(from, seg) }));
    for (const item of segment) {
      if (item.kind === 'r') els.push(rec({ from, i: i++, to: item.to, seg } satisfies Val));
      else els.push(wm((w += item.inc)));
    }
  });
  els.push(wm(FINAL_WM), end());
  return els;
}

async function runScenario({ base, senders }: { base: { n: number; k: number; capacity: number; take: number; seed: number }; senders: Item[][][] }): Promise<void> {
  const { n, k, capacity, take, seed } = base;
  const net = network(n, { capacity, seed });
  const sequences = senders.map((segments, from) => sequenceOf(from, segments));
  const violations: string[] = [];
  const lastWm = Array.from({ length: n }, () => -Infinity);

  // Checks made as elements are taken, against what had been handed to `accept` by then (a sound bound: the
  // receiver emitted these elements earlier, when even less had arrived).
  const check = (r: number) => (els: Element[]) => {
    const d = net.delivered[r]!;
    for (const el of els) {
      if (el.t === 'w') {
        if (el.wm < lastWm[r]!) violations.push(`w${r}: watermark decreased ${lastWm[r]} -> ${el.wm}`);
        lastWm[r] = el.wm;
        const live = d.filter((c) => !c.ended);
        const bound = Math.min(...live.map((c) => c.wm));
        if (live.length > 0 && el.wm > bound) violations.push(`w${r}: watermark ${el.wm} above live senders' minimum ${bound}`);
      } else if (el.t === 'b') {
        const missing = d.map((c, s) => (c.barriers.has(el.epoch) ? -1 : s)).filter((s) => s >= 0);
        if (missing.length > 0) violations.push(`w${r}: barrier ${el.epoch} before senders ${missing.join(',')} delivered it`);
        const reported = net.seen[r]!.filter((e) => e === el.epoch).length;
        if (reported !== n) violations.push(`w${r}: barrier ${el.epoch} passed on with onBarrier(${el.epoch}) called ${reported}x, not ${n}`);
      } else if (el.t === 'e') {
        if (!d.every((c) => c.ended)) violations.push(`w${r}: end before every sender ended`);
      }
    }
  };
  const consumers = net.ins.map((input, r) => new Consumer(input, take, check(r)));
  try {
    await withTimeout(
      (async () => {
        await Promise.all(net.outs.map((out, from) => putAll(out, sequences[from]!)));
        await Promise.all(consumers.map((c) => c.whenTerminated()));
        await settle(3);
      })(),
      10_000,
      `scenario ${JSON.stringify({ base, senders })}`,
    );
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
  }
  expect(violations).toEqual([]);

  for (let r = 0; r < n; r++) {
    const out = consumers[r]!.out;
    // 5. Exactly one end, last.
    expect(out.filter((el) => el.t === 'e')).toHaveLength(1);
    expect(out.at(-1)!.t).toBe('e');
    // 3. Barriers 1..k, once each, in order, not final, with this worker's own positions (4).
    const barriers = out.filter((el): el is BarrierEl => el.t === 'b');
    expect(barriers.map((b) => b.epoch)).toEqual(Array.from({ length: k }, (_, i) => i + 1));
    for (const b of barriers) {
      expect(b.final).toBe(false);
      expect(b.positions).toEqual(positionsOf(r, b.epoch));
    }
    expect(net.seen[r]!.length).toBe(n * k);
    // 1. Exactly the records routed here, each once, in order per sender; 3. on their side of every barrier.
    let epochsBefore = 0;
    const got: Val[] = [];
    for (const el of out) {
      if (el.t === 'b') epochsBefore++;
      else if (el.t === 'r') {
        const v = el.value as Val;
        got.push(v);
        expect(v.to).toBe(r);
        expect(epochsBefore).toBe(v.seg);
      }
    }
    for (let from = 0; from < n; from++) {
      const expected = sequences[from]!.filter((el): el is RecordEl => el.t === 'r' && (el.value as Val).to === r).map((el) => (el.value as Val).i);
      expect(got.filter((v) => v.from === from).map((v) => v.i)).toEqual(expected);
    }
    expect(got).toHaveLength(sequences.flat().filter((el) => el.t === 'r' && (el.value as Val).to === r).length);
    // 2. Every sender sent FINAL_WM: the receiver emitted it (before its end), never decreasing.
    const wms = out.filter((el): el is WatermarkEl => el.t === 'w').map((el) => el.wm);
    expect(wms.at(-1)).toBe(FINAL_WM);
    for (let i = 1; i < wms.length; i++) expect(wms[i]!).toBeGreaterThan(wms[i - 1]!);
  }
}

describe('ExchangeOut / ExchangeIn: property', () => {
  it('records, watermarks, aligned barriers and the end hold for random sequences, delays and capacities', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { seed: 42, numRuns: 100 });
  });
});

describe('batch mode behind an exchange (GroupedOutlet)', () => {
  it('what every sender brings waits for the group\'s trigger, then goes on in order; the end releases the rest', async () => {
    const input = new ExchangeIn(2, 0, 64);
    const grouped = new GroupedOutlet(input, new BatchQueue(parseTrigger('count=3'), 64), 16);
    await input.accept(0, [rec({ from: 0, i: 0 }), wm(5)]);
    await input.accept(1, [rec({ from: 1, i: 0 })]);
    const taking = grouped.take(100);
    const first = track(taking);
    await settle();
    expect(first.state).toBe('pending'); // two records: the group waits for its third
    await input.accept(1, [rec({ from: 1, i: 1 }), wm(7), rec({ from: 1, i: 2 })]);
    await withTimeout(taking, 1000, 'the group after its third record');
    const values = (els: Element[]) => els.filter((e) => e.t === 'r').map((e) => (e as RecordEl).value);
    expect(values(first.value!)).toEqual([{ from: 0, i: 0 }, { from: 1, i: 0 }, { from: 1, i: 1 }]);
    await input.accept(0, [end()]);
    await input.accept(1, [end()]);
    const rest: Element[] = [];
    while (!rest.some((e) => e.t === 'e')) rest.push(...(await withTimeout(grouped.take(100), 1000, 'the rest')));
    expect(values(rest)).toEqual([{ from: 1, i: 2 }]); // one record short of a group: released by the end
    grouped.close();
    expect(await grouped.take(10)).toEqual([]);
  });
});

describe('exchange batches on the wire', () => {
  it('a batch survives msgpack in order, records by column, times moved to the wall clock and back', async () => {
    const { toWire, fromWire } = await import('../../src/processing/exchange.js');
    const { encodeBody } = await import('../../src/wire/frame.js');
    const { unpack } = await import('msgpackr');
    const els: Element[] = [
      { t: 'r', value: { user: 'u1', n: 1 }, ts: 10, readAt: 5.5, bytes: 12, split: 0 },
      { t: 'w', wm: 9, readAt: 6 },
      { t: 'r', value: 'plain', ts: 11, readAt: 7, bytes: 5, split: 1 },
      { t: 'b', epoch: 3, final: false, positions: { s0: { position: 4, done: false } } },
      { t: 'e', readAt: 8 },
    ];
    const wire = toWire(els);
    expect(wire.v).toEqual([{ user: 'u1', n: 1 }, 'plain']);
    expect(wire.ra[0]).toBeCloseTo(5.5 + performance.timeOrigin, 3);
    const back = fromWire(unpack(encodeBody(wire)));
    expect(back).toHaveLength(5);
    for (const [i, el] of back.entries()) {
      const want = els[i]!;
      if ('readAt' in want) expect((el as { readAt: number }).readAt).toBeCloseTo(want.readAt, 3);
      expect({ ...el, readAt: 0 }).toEqual({ ...want, readAt: 0 });
    }
  });

  it('refuses what is not a well-formed batch with a typed error', async () => {
    const { fromWire } = await import('../../src/processing/exchange.js');
    const { InvalidArgumentError } = await import('../../src/errors/index.js');
    for (const bad of [null, 5, { n: 1 }, { n: 2, v: [1], ts: [1], ra: [1], by: [1], sp: [1], ctl: [] }, { n: 1, v: [], ts: [], ra: [], by: [], sp: [], ctl: [[0, { t: 'x' }]] }, { n: 1, v: [], ts: [], ra: [], by: [], sp: [], ctl: [[7, { t: 'e', readAt: 1 }]] }])
      expect(() => fromWire(bad)).toThrow(InvalidArgumentError);
  });
});
