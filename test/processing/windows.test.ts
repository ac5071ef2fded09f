import { describe, expect, it } from 'vitest';
import { collect, count, fromArray, pipeline, session, sliding, tumbling, type WindowSpec } from '../../src/index.js';
import type { KeyScope } from '../../src/processing/keyed-stage.js';
import { WindowOperator } from '../../src/processing/window-operator.js';

interface Ev {
  k: string;
  t: number;
}

const ev = (k: string, t: number): Ev => ({ k, t });

/** Event-time windowed counts; one record per read, so the watermark moves after every record. */
async function windowed(events: Ev[], spec: WindowSpec, outOfOrderness: number, lateness = 0) {
  const out = collect<unknown>();
  const late = collect<unknown>();
  await pipeline('windows')
    .from(fromArray(events))
    .timestamps((e) => e.t, { outOfOrderness })
    .keyBy((e) => e.k)
    .window(spec)
    .allowedLateness(lateness)
    .lateTo(late.sink)
    .aggregate(count())
    .map((r) => `${r.key} [${r.window.start},${r.window.end}) ${r.value}`)
    .to(out.sink as never)
    .run({ readBatch: 1 });
  return { out: out.values, late: late.values };
}

describe('event-time windows', () => {
  it('tumbling: counts out-of-order records within the bound and sends later ones to the late output', async () => {
    const r = await windowed([ev('a', 1000), ev('a', 9500), ev('a', 8000), ev('a', 11_000), ev('a', 9000), ev('a', 15_000), ev('a', 21_500)], tumbling('10s'), 1000);
    expect(r.out).toEqual(['a [0,10000) 3', 'a [10000,20000) 2', 'a [20000,30000) 1']);
    // 11000 moved the watermark to 9999: the window ending at 10000 was complete when 9000 came.
    expect(r.late).toEqual([{ key: 'a', value: ev('a', 9000), timestamp: 9000, watermark: 9999 }]);
  });

  it('allowed lateness: a late-but-allowed record fires its window again; past the lateness it is late', async () => {
    const r = await windowed([ev('a', 1000), ev('a', 5000), ev('a', 12_000), ev('a', 3000), ev('a', 16_000), ev('a', 4000)], tumbling('10s'), 0, 5000);
    expect(r.out).toEqual(['a [0,10000) 2', 'a [0,10000) 3', 'a [10000,20000) 2']);
    expect(r.late).toEqual([{ key: 'a', value: ev('a', 4000), timestamp: 4000, watermark: 15_999 }]);
  });

  it('sliding: a record counts in every window that covers it', async () => {
    const r = await windowed([ev('a', 1000), ev('a', 6000), ev('b', 6500), ev('a', 12_000)], sliding('10s', '5s'), 60_000);
    expect(r.out).toEqual([
      'a [-5000,5000) 1',
      'a [0,10000) 2',
      'b [0,10000) 1',
      'a [5000,15000) 2',
      'b [5000,15000) 1',
      'a [10000,20000) 1',
    ]);
    expect(r.late).toEqual([]);
  });

  it('session: a record that bridges two sessions merges them; other keys keep their own', async () => {
    const r = await windowed([ev('a', 1000), ev('b', 2000), ev('a', 6000), ev('a', 3500), ev('a', 20_000)], session('3s'), 5000);
    expect(r.out).toEqual(['b [2000,5000) 1', 'a [1000,9000) 3', 'a [20000,23000) 1']);
  });

  it('session: a record too late for its session goes to the late output', async () => {
    const r = await windowed([ev('a', 1000), ev('a', 10_000), ev('a', 1500)], session('2s'), 0);
    expect(r.out).toEqual(['a [1000,3000) 1', 'a [10000,12000) 1']);
    expect(r.late).toEqual([{ key: 'a', value: ev('a', 1500), timestamp: 1500, watermark: 9999 }]);
  });
});

describe('processing-time windows', () => {
  it('place records by the clock when they reach the window, and fire by the clock (or at the end of input)', async () => {
    const times = [100, 200, 1100, 1200, 2500];
    let calls = 0;
    const out = collect<string>();
    await pipeline('ptime')
      .from(fromArray(['x', 'y', 'x', 'x', 'y'], { eventTime: () => 0 }))
      .keyBy((s) => s)
      .window(tumbling(1000, { time: 'processing' }))
      .aggregate(count())
      .map((r) => `${r.key} [${r.window.start},${r.window.end}) ${r.value}`)
      .to(out.sink)
      .run({ clock: () => times[Math.min(calls++, times.length - 1)]!, tickInterval: '1h' });
    expect(out.values).toEqual(['x [0,1000) 1', 'y [0,1000) 1', 'x [1000,2000) 2', 'y [2000,3000) 1']);
  });
});

describe('a window first opened within its allowed lateness', () => {
  it('fires once on arrival, not again when the watermark next moves', async () => {
    const r = await windowed([ev('a', 12_000), ev('a', 3000), ev('a', 16_000), ev('a', 40_000)], tumbling('10s'), 0, 5000);
    expect(r.out).toEqual(['a [0,10000) 1', 'a [10000,20000) 2', 'a [40000,50000) 1']);
    expect(r.late).toEqual([]);
  });

  it('fires again, once, for each later record within the lateness; past it the record is late', async () => {
    const r = await windowed([ev('a', 12_000), ev('a', 3000), ev('a', 4000), ev('a', 16_000), ev('a', 5000), ev('a', 40_000)], tumbling('10s'), 0, 5000);
    expect(r.out).toEqual(['a [0,10000) 1', 'a [0,10000) 2', 'a [10000,20000) 2', 'a [40000,50000) 1']);
    // 16000 moved the watermark to 15999, past 9999 + 5000: the window is gone and 5000 is late.
    expect(r.late).toEqual([{ key: 'a', value: ev('a', 5000), timestamp: 5000, watermark: 15_999 }]);
  });

  it('session: a late session fires once on arrival', async () => {
    const r = await windowed([ev('a', 12_000), ev('a', 2000), ev('a', 20_000)], session('3s'), 0, 10_000);
    expect(r.out).toEqual(['a [2000,5000) 1', 'a [12000,15000) 1', 'a [20000,23000) 1']);
    expect(r.late).toEqual([]);
  });

  it('sets no timer at or behind the watermark, and drops the window once the watermark passes end + lateness', async () => {
    const op = new WindowOperator({ kind: 'window', window: tumbling('10s'), allowedLatenessMs: 5000, late: undefined, aggregator: count() as never });
    const h = harness();
    h.watermark = 11_999;
    await op.onRecord('x', { t: 'r', value: 'x', ts: 3000, readAt: 0, bytes: 0, split: 0 }, h.scope());
    expect(h.emitted).toEqual([{ value: { key: 'a', window: { start: 0, end: 10_000 }, value: 1 }, ts: 9999 }]);
    expect([...h.timers]).toEqual([14_999]);
    expect(h.state.size).toBe(1);
    await h.advance(op, 16_000);
    expect(h.emitted).toHaveLength(1);
    expect(h.timers.size).toBe(0);
    expect(h.state.size).toBe(0);
  });
});

/** A single key's scope for driving a WindowOperator by hand: state in a map, event-time timers in a set. */
function harness() {
  const h = {
    watermark: -Infinity,
    state: new Map<string, unknown>(),
    timers: new Set<number>(),
    emitted: [] as Array<{ value: unknown; ts: number }>,
    scope(timestamp = 0): KeyScope {
      return {
        key: 'a',
        keyStr: 'a',
        slot: 0,
        timestamp,
        watermark: h.watermark,
        now: () => 0,
        getState: async (name: string) => h.state.get(name) as never,
        putState: (name: string, value: unknown) => void h.state.set(name, structuredClone(value)),
        deleteState: (name: string) => void h.state.delete(name),
        setTimer: (domain: string, time: number) => {
          expect(domain).toBe('event');
          h.timers.add(time);
        },
        late: () => {},
        emit: (value: unknown, ts = timestamp) => void h.emitted.push({ value, ts }),
      } as unknown as KeyScope;
    },
    /** Moves the watermark to `wm` and fires the timers at or before it, in time order. */
    async advance(op: WindowOperator, wm: number) {
      h.watermark = wm;
      for (;;) {
        const due = [...h.timers].filter((t) => t <= wm).sort((a, b) => a - b)[0];
        if (due === undefined) return;
        h.timers.delete(due);
        await op.onTimer({ time: due, domain: 'event' }, h.scope(due));
      }
    },
  };
  return h;
}
