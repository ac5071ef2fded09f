import { describe, expect, it } from 'vitest';
import { collect, count, fromArray, pipeline, session, sliding, tumbling, type WindowSpec } from '../../src/index.js';

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
