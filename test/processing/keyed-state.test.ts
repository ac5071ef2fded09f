import { describe, expect, it, vi } from 'vitest';
import { collect, count, fromArray, generator, pipeline, tumbling } from '../../src/index.js';

interface Click {
  user: string;
  page: string;
  t: number;
}

describe('keyed state and timers', () => {
  it('value and map state per key, and an event-time timer that reports once the watermark passes it', async () => {
    const clicks: Click[] = [
      { user: 'u1', page: '/a', t: 0 },
      { user: 'u2', page: '/a', t: 100 },
      { user: 'u1', page: '/b', t: 200 },
      { user: 'u1', page: '/a', t: 300 },
      { user: 'u2', page: '/c', t: 5000 },
    ];
    const out = collect<{ user: string; clicks: number; pages: string[]; at: number }>();
    await pipeline('state')
      .from(fromArray(clicks))
      .timestamps((c) => c.t)
      .keyBy((c) => c.user)
      .process<{ user: string; clicks: number; pages: string[]; at: number }>({
        async onRecord(c, ctx) {
          const n = ctx.value<number>('clicks');
          const seen = (await n.get()) ?? 0;
          n.set(seen + 1);
          const pages = ctx.map<number>('pages');
          await pages.set(c.page, ((await pages.get(c.page)) ?? 0) + 1);
          // A report one second after the key's first click.
          if (seen === 0) ctx.timers.atEventTime(ctx.timestamp + 1000);
        },
        async onTimer(timer, ctx) {
          const pages = (await ctx.map<number>('pages').entries()).map(([p]) => p).sort();
          ctx.emit({ user: String(ctx.key), clicks: (await ctx.value<number>('clicks').get()) ?? 0, pages, at: timer.time });
          ctx.value<number>('clicks').clear();
          ctx.map('pages').clear();
        },
      })
      .to(out.sink)
      .run({ readBatch: 1 });
    // Both timers (1000, 1100) fire when the click at 5000 moves the watermark to 4999 — after that click was
    // counted, since the watermark follows the record.
    expect(out.values).toEqual([
      { user: 'u1', clicks: 3, pages: ['/a', '/b'], at: 1000 },
      { user: 'u2', clicks: 2, pages: ['/a', '/c'], at: 1100 },
    ]);
  });

  it('deleted timers do not fire; a rolling reduce emits running values per key', async () => {
    const out = collect<string>();
    await pipeline('timers')
      .from(fromArray([1, 2, 3, 4, 5, 6], { eventTime: (n) => n * 10 }))
      .keyBy((n) => (n % 2 === 0 ? 'even' : 'odd'))
      .process<string>({
        onRecord(n, ctx) {
          ctx.timers.atEventTime(1000);
          if (n === 6) ctx.timers.deleteEventTime(1000);
        },
        onTimer(t, ctx) {
          ctx.emit(`${ctx.key}@${t.time}`);
        },
      })
      .to(out.sink)
      .run();
    expect(out.values).toEqual(['odd@1000']);

    const totals = collect<{ n: number }>();
    await pipeline('rolling')
      .from(fromArray([1, 2, 3, 4].map((n) => ({ n }))))
      .keyBy((v) => (v.n % 2 === 0 ? 'even' : 'odd'))
      .reduce((a, b) => ({ n: a.n + b.n }))
      .to(totals.sink)
      .run();
    expect(totals.values).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }, { n: 6 }]);
  });

  it('processing-time timers fire when the clock passes them, while the job runs', async () => {
    let now = 1_000;
    const out = collect<string>();
    const job = pipeline('ptimers')
      .from(generator({ seed: 1, rate: 200, make: (i) => `k${i % 2}` }))
      .keyBy((k) => k)
      .process<string>({
        async onRecord(_k, ctx) {
          const armed = ctx.value<boolean>('armed');
          if (await armed.get()) return;
          armed.set(true);
          ctx.timers.atProcessingTime(ctx.now() + 500);
        },
        onTimer(t, ctx) {
          ctx.emit(`${ctx.key}@${t.time}`);
        },
      })
      .to(out.sink)
      .start({ clock: () => now, tickInterval: '10ms', pollInterval: '10ms' });
    await vi.waitFor(() => expect(job.metrics.stages[1]!.in).toBeGreaterThan(4));
    expect(out.values).toEqual([]);
    now = 1_500;
    await vi.waitFor(() => expect(out.values).toEqual(['k0@1500', 'k1@1500']));
    const result = await job.stop();
    expect(result.state).toBe('stopped');
  });

  it('chains keyed stages: keyBy → window → keyBy → window', async () => {
    // Per user and second: clicks; then per second: how many users clicked at least twice.
    const clicks = [
      ['u1', 100],
      ['u1', 200],
      ['u2', 300],
      ['u3', 400],
      ['u3', 900],
      ['u1', 1100],
      ['u2', 1200],
      ['u2', 1300],
    ] as const;
    const out = collect<string>();
    await pipeline('chain')
      .from(fromArray(clicks.map(([user, t]) => ({ user, t }))))
      .timestamps((c) => c.t)
      .keyBy((c) => c.user)
      .window(tumbling('1s'))
      .aggregate(count())
      .filter((r) => r.value >= 2)
      .keyBy((r) => r.window.start)
      .window(tumbling('1s'))
      .aggregate(count())
      .map((r) => `${r.key}: ${r.value}`)
      .to(out.sink)
      .run({ mode: 'batch', trigger: 'count=3' });
    expect(out.values).toEqual(['0: 2', '1000: 1']);
  });
});

describe('timers at the end of input', () => {
  it('fire once; a timer that re-arms itself does not loop forever', async () => {
    const out = collect<string>();
    await pipeline('rearm')
      .from(fromArray(['a', 'b'], { eventTime: () => 0 }))
      .keyBy((k) => k)
      .process<string>({
        onRecord(_v, ctx) {
          ctx.timers.atEventTime(100);
          ctx.timers.atProcessingTime(ctx.now() + 60_000);
        },
        onTimer(t, ctx) {
          ctx.emit(`${ctx.key} ${t.domain}`);
          if (t.domain === 'event') ctx.timers.atEventTime(t.time + 100);
          else ctx.timers.atProcessingTime(t.time + 60_000);
        },
      })
      .to(out.sink)
      .run();
    expect(out.values).toEqual(['a event', 'b event', 'a processing', 'b processing']);
  });
});
