/**
 * The keyed half of the fluent pipeline API: a stream grouped by key ({@link KeyedStream}, made by `Stream.keyBy`),
 * windowed ({@link WindowedStream}), and the built-in aggregators {@link count} and {@link sum}. See pipeline.ts for
 * the stream and the finished pipeline.
 */
import { InvalidArgumentError } from '../errors/index.js';
import type { Sink } from './connectors/types.js';
import type { Aggregator, Key, KeyedContext, LateRecord, ProcessHandler, WindowResult } from './plan.js';
import { parseDuration, type Duration } from './units.js';
import type { WindowSpec } from './windows.js';
import { Stream, type Draft } from './pipeline.js';

/**
 * Records grouped by a key of type `K`, made by {@link Stream.keyBy}. Each key's records reach the next stage in
 * order, with state of their own: end it with {@link KeyedStream.window}, a rolling {@link KeyedStream.reduce} or
 * {@link KeyedStream.process}.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<{ user: string; n: number }>();
 * const byUser = pipeline('totals')
 *   .from(fromArray([{ user: 'a', n: 1 }, { user: 'b', n: 5 }, { user: 'a', n: 2 }]))
 *   .keyBy((o) => o.user); // a KeyedStream<{ user: string; n: number }, string>
 * await byUser.reduce((a, b) => ({ user: a.user, n: a.n + b.n })).to(out.sink).run();
 * out.values.filter((o) => o.user === 'a'); // [{ user: 'a', n: 1 }, { user: 'a', n: 3 }]
 * ```
 */
export class KeyedStream<T, K extends Key> {
  /** @internal */
  constructor(
    private readonly draft: Draft,
    private readonly keyFn: (value: T) => K,
  ) {}

  /**
   * Puts each key's records into windows.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, sliding, collect } from 'shardflow';
   * const out = collect<{ start: number; max: number }>();
   * await pipeline('max-temp')
   *   .from(fromArray([{ sensor: 's1', temp: 3 }, { sensor: 's1', temp: 7 }, { sensor: 's1', temp: 5 }], { eventTime: (_, i) => i * 4_000 }))
   *   .keyBy((r) => r.sensor)
   *   .window(sliding('10s', '5s')) // the records at 0s, 4s, 8s
   *   .reduce((a, b) => (a.temp >= b.temp ? a : b))
   *   .map((r) => ({ start: r.window.start, max: r.value.temp }))
   *   .to(out.sink)
   *   .run();
   * out.values; // [{ start: -5000, max: 7 }, { start: 0, max: 7 }, { start: 5000, max: 5 }]
   * ```
   */
  window(spec: WindowSpec): WindowedStream<T, K> {
    return new WindowedStream<T, K>(this.draft, this.keyFn, spec, 0, undefined);
  }

  /**
   * A rolling reduce, no window: emits the key's updated value for every record.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect } from 'shardflow';
   * const out = collect<number>();
   * await pipeline('running-total').from(fromArray([1, 2, 3])).keyBy(() => 'total').reduce((a, b) => a + b).to(out.sink).run();
   * out.values; // [1, 3, 6]
   * ```
   */
  reduce(fn: (a: T, b: T) => T): Stream<T> {
    return this.process<T>({
      async onRecord(value, ctx) {
        const acc = ctx.value<{ v: T }>('reduce');
        const prev = await acc.get();
        const next = prev ? fn(prev.v, value) : value;
        acc.set({ v: next });
        ctx.emit(next);
      },
    });
  }

  /**
   * Custom per-key logic with keyed state and timers. State values must be JSON-like. Timers fire `onTimer` with
   * the same key's context; event-time timers when the watermark passes them, processing-time ones by the clock. At
   * the end of a bounded input every pending timer fires once (timers set while they fire are dropped). A handler
   * that throws sends its record to the dead-letter output; state it changed before throwing stays changed.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect } from 'shardflow';
   * const out = collect<{ user: string; total: number }>();
   * await pipeline('clicks-per-minute')
   *   .from(fromArray([{ user: 'a' }, { user: 'a' }, { user: 'b' }], { eventTime: (_, i) => i * 1_000 }))
   *   .keyBy((c) => c.user)
   *   .process<{ user: string; total: number }>({
   *     async onRecord(_click, ctx) {
   *       const total = ctx.value<number>('total');
   *       const before = (await total.get()) ?? 0;
   *       total.set(before + 1);
   *       if (before === 0) ctx.timers.atEventTime(ctx.timestamp + 60_000); // report a minute after the first
   *     },
   *     async onTimer(_t, ctx) {
   *       ctx.emit({ user: ctx.key, total: (await ctx.value<number>('total').get()) ?? 0 });
   *     },
   *   })
   *   .to(out.sink)
   *   .run();
   * out.values; // [{ user: 'a', total: 2 }, { user: 'b', total: 1 }]: pending timers fire at the end of input
   * ```
   */
  process<U>(handler: ProcessHandler<T, K, U> | ((value: T, ctx: KeyedContext<K, U>) => void | Promise<void>)): Stream<U> {
    const h = typeof handler === 'function' ? { onRecord: handler } : handler;
    if (!h || typeof h.onRecord !== 'function') throw new InvalidArgumentError('process() needs an onRecord function');
    return new Stream<T>(this.draft).closeWith({
      kind: 'keyed',
      keyFn: this.keyFn,
      operator: { kind: 'process', handler: h as unknown as ProcessHandler<unknown, Key, unknown> },
    });
  }
}

/**
 * A keyed stream cut into windows, made by {@link KeyedStream.window}; ends with {@link WindowedStream.reduce} or
 * {@link WindowedStream.aggregate}, which emit one {@link WindowResult} per key and window when the window fires.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, tumbling, count, collect } from 'shardflow';
 * const out = collect<{ user: string; start: number; clicks: number }>();
 * const clicks = [{ user: 'a', at: 1_000 }, { user: 'a', at: 2_000 }, { user: 'a', at: 11_000 }];
 * const windowed = pipeline('clicks').from(fromArray(clicks, { eventTime: (c) => c.at })).keyBy((c) => c.user).window(tumbling('10s'));
 * await windowed.aggregate(count()).map((r) => ({ user: r.key, start: r.window.start, clicks: r.value })).to(out.sink).run();
 * out.values; // [{ user: 'a', start: 0, clicks: 2 }, { user: 'a', start: 10000, clicks: 1 }]
 * ```
 */
export class WindowedStream<T, K extends Key> {
  /** @internal */
  constructor(
    private readonly draft: Draft,
    private readonly keyFn: (value: T) => K,
    private readonly spec: WindowSpec,
    private readonly latenessMs: number,
    private readonly late: Sink<LateRecord<T, K>> | undefined,
  ) {}

  /**
   * Keeps event-time windows open `lateness` past their end: a record that arrives then updates the window and its
   * result is emitted again. Later records are late (see {@link lateTo}).
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, tumbling, count, collect } from 'shardflow';
   * const out = collect<{ start: number; n: number }>();
   * await pipeline('late-updates')
   *   .from(fromArray([1_000, 12_000, 2_000], { eventTime: (t) => t })) // 2s arrives after the watermark passed 10s
   *   .keyBy(() => 'all')
   *   .window(tumbling('10s'))
   *   .allowedLateness('5s')
   *   .aggregate(count())
   *   .map((r) => ({ start: r.window.start, n: r.value }))
   *   .to(out.sink)
   *   .run({ readBatch: 1 });
   * out.values; // [{ start: 0, n: 1 }, { start: 0, n: 2 }, { start: 10000, n: 1 }]
   * ```
   */
  allowedLateness(lateness: Duration): WindowedStream<T, K> {
    if (this.spec.time !== 'event') throw new InvalidArgumentError('allowedLateness applies to event-time windows');
    return new WindowedStream(this.draft, this.keyFn, this.spec, parseDuration(lateness, 'allowedLateness'), this.late);
  }

  /**
   * Sends records too late for every window they belong to to `sink` (a side output) instead of dropping them.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, tumbling, count, collect, type LateRecord } from 'shardflow';
   * const late = collect<LateRecord<number, string>>();
   * await pipeline('late')
   *   .from(fromArray([1_000, 12_000, 2_000], { eventTime: (t) => t }))
   *   .keyBy(() => 'all')
   *   .window(tumbling('10s'))
   *   .lateTo(late.sink)
   *   .aggregate(count())
   *   .to(collect<unknown>().sink)
   *   .run({ readBatch: 1 }); // one record per read: the watermark passes 10s before 2s comes
   * late.values; // [{ key: 'all', value: 2000, timestamp: 2000, watermark: 11999 }]
   * ```
   */
  lateTo(sink: Sink<LateRecord<T, K>>): WindowedStream<T, K> {
    return new WindowedStream(this.draft, this.keyFn, this.spec, this.latenessMs, sink);
  }

  /**
   * Combines a window's records two at a time.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, tumbling, collect } from 'shardflow';
   * const out = collect<number>();
   * await pipeline('peak')
   *   .from(fromArray([3, 9, 4], { eventTime: (_, i) => i * 1_000 }))
   *   .keyBy(() => 'all')
   *   .window(tumbling('1m'))
   *   .reduce((a, b) => Math.max(a, b))
   *   .map((r) => r.value)
   *   .to(out.sink)
   *   .run();
   * out.values; // [9]
   * ```
   */
  reduce(fn: (a: T, b: T) => T): Stream<WindowResult<K, T>> {
    const combine = (a: T[], b: T[]): T[] => (a.length === 0 ? b : b.length === 0 ? a : [fn(a[0]!, b[0]!)]);
    return this.aggregate<T[], T>({
      create: () => [],
      add: (acc, v) => combine(acc, [v]),
      merge: combine,
      result: (acc) => acc[0]!,
    });
  }

  /**
   * Folds a window's records into an accumulator (JSON-like: it is window state) and emits `result(acc)`.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, session, collect, type WindowResult } from 'shardflow';
   * const out = collect<WindowResult<string, number>>();
   * await pipeline('mean-latency')
   *   .from(fromArray([{ user: 'a', ms: 10 }, { user: 'a', ms: 30 }], { eventTime: (_, i) => i * 1_000 }))
   *   .keyBy((r) => r.user)
   *   .window(session('30s'))
   *   .aggregate({
   *     create: () => ({ n: 0, sum: 0 }),
   *     add: (a, v) => ({ n: a.n + 1, sum: a.sum + v.ms }),
   *     merge: (a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum }),
   *     result: (a) => a.sum / a.n,
   *   })
   *   .to(out.sink)
   *   .run();
   * out.values.map((r) => r.value); // [20]
   * ```
   */
  aggregate<A, R = A>(aggregator: Aggregator<T, A, R>): Stream<WindowResult<K, R>> {
    if (this.spec.kind === 'session' && !aggregator.merge)
      throw new InvalidArgumentError('session windows need an aggregator with merge()');
    return new Stream<T>(this.draft).closeWith({
      kind: 'keyed',
      keyFn: this.keyFn,
      operator: {
        kind: 'window',
        window: this.spec,
        allowedLatenessMs: this.latenessMs,
        late: this.late as Sink<LateRecord<unknown>> | undefined,
        aggregator: aggregator as unknown as Aggregator<unknown, never, unknown>,
      },
    });
  }
}

/**
 * Counts records.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, global, count, collect, type WindowResult } from 'shardflow';
 * const out = collect<WindowResult<string, number>>();
 * await pipeline('count').from(fromArray(['a', 'b', 'a'])).keyBy((w) => w).window(global()).aggregate(count()).to(out.sink).run();
 * out.values.map((r) => `${r.key}=${r.value}`); // ['a=2', 'b=1']
 * ```
 */
export function count<T = unknown>(): Aggregator<T, number, number> {
  return { create: () => 0, add: (n) => n + 1, merge: (a, b) => a + b };
}

/**
 * Sums `fn(record)`.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, global, sum, collect, type WindowResult } from 'shardflow';
 * const out = collect<WindowResult<string, number>>();
 * const orders = fromArray([{ shop: 's1', amount: 5 }, { shop: 's1', amount: 7 }]);
 * await pipeline('revenue').from(orders).keyBy((o) => o.shop).window(global()).aggregate(sum((o: { amount: number }) => o.amount)).to(out.sink).run();
 * out.values.map((r) => r.value); // [12]
 * ```
 */
export function sum<T>(fn: (value: T) => number): Aggregator<T, number, number> {
  return { create: () => 0, add: (n, v) => n + fn(v), merge: (a, b) => a + b };
}
