/**
 * The pipeline API: one typed, fluent description of a job, run as a stream or in batches by a runner.
 *
 * ```text
 * pipeline(name).from(source)
 *   .map / .filter / .flatMap / .validate / .timestamps     stateless, any number
 *   .keyBy(fn)                                              group by key (routed by the key's slot)
 *   .window(tumbling | sliding | session | global)          .allowedLateness(d) .lateTo(sink)
 *   .reduce(fn) / .aggregate(agg)                           → WindowResult { key, window, value }
 *   or .process(handler)                                    keyed state (value, map) and timers
 *   … more stateless steps and keyed stages …
 *   .to(sink)                                               → a Pipeline: .plan, .run(), .start()
 * ```
 *
 * Builders are immutable: each call returns a new one, so a partial pipeline can be reused.
 *
 * @example
 * ```ts
 * import { pipeline, generator, tumbling, count, collect } from 'shardflow';
 * const out = collect<{ user: string; clicks: number }>();
 * await pipeline('clicks')
 *   .from(generator({ count: 1000, seed: 1, make: (i, rng) => ({ user: `u${rng.int(5)}`, at: i * 100 }) }))
 *   .timestamps((c) => c.at, { outOfOrderness: '1s' })
 *   .keyBy((c) => c.user)
 *   .window(tumbling('10s'))
 *   .aggregate(count())
 *   .map((r) => ({ user: r.key, clicks: r.value }))
 *   .to(out.sink)
 *   .run({ mode: 'stream' });
 * ```
 */
import { InvalidArgumentError } from '../errors/index.js';
import type { Sink, Source } from './connectors/types.js';
import type {
  Aggregator,
  ChainOp,
  DeadLetter,
  FiredTimer,
  Key,
  KeyedContext,
  KeyedStage,
  LateRecord,
  LogicalPlan,
  ProcessHandler,
  Stage,
  WindowResult,
} from './plan.js';
import { runJob, startJob, type JobHandle, type JobResult, type JobRunOptions } from './runner.js';
import { parseDuration, type Duration } from './units.js';
import type { WindowSpec } from './windows.js';

interface Draft {
  name: string;
  source: Source<unknown>;
  stages: Stage[];
  chain: ChainOp[];
  deadLetters: Sink<DeadLetter> | undefined;
}

/**
 * Starts a pipeline named `name` (the job's name: it names its state and checkpoints, so keep it stable).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<string>();
 * const p = pipeline('words').from(fromArray(['to be', 'or not'])).flatMap((line) => line.split(' ')).to(out.sink);
 * await p.run();
 * out.values; // ['to', 'be', 'or', 'not']
 * ```
 */
export function pipeline(name: string): { from<T>(source: Source<T>): Stream<T> } {
  if (typeof name !== 'string' || name.trim() === '') throw new InvalidArgumentError('a pipeline needs a name');
  return {
    from<T>(source: Source<T>): Stream<T> {
      if (!source || typeof source.open !== 'function' || typeof source.splits !== 'function')
        throw new InvalidArgumentError(`pipeline ${name}: from() needs a Source`);
      return new Stream<T>({ name, source: source as Source<unknown>, stages: [], chain: [], deadLetters: undefined });
    },
  };
}

/**
 * Records of type `T` between stages. Stateless steps run per record; a function that throws, or returns a
 * rejected promise, sends the record to the dead-letter output and the job goes on. Made by
 * {@link pipeline}`(name).from(source)` and by every step; ended by {@link Stream.to}.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<number>();
 * const lines = pipeline('lengths').from(fromArray(['a', 'bb', 'ccc'])); // a Stream<string>
 * await lines.map((s) => s.length).filter((n) => n > 1).to(out.sink).run();
 * out.values; // [2, 3]
 * ```
 */
export class Stream<T> {
  /** @internal */
  constructor(private readonly draft: Draft) {}

  private with<U>(op: ChainOp): Stream<U> {
    return new Stream<U>({ ...this.draft, chain: [...this.draft.chain, op] });
  }

  /**
   * One output per record.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect } from 'shardflow';
   * const out = collect<number>();
   * await pipeline('len').from(fromArray(['a', 'bb'])).map((line) => line.length).to(out.sink).run();
   * out.values; // [1, 2]
   * ```
   */
  map<U>(fn: (value: T) => U | Promise<U>): Stream<U> {
    return this.with({ kind: 'map', fn });
  }

  /**
   * Keeps the records for which `fn` is truthy.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect } from 'shardflow';
   * const out = collect<number>();
   * await pipeline('even').from(fromArray([1, 2, 3, 4])).filter((n) => n % 2 === 0).to(out.sink).run();
   * out.values; // [2, 4]
   * ```
   */
  filter<U extends T>(fn: (value: T) => value is U): Stream<U>;
  filter(fn: (value: T) => unknown): Stream<T>;
  filter(fn: (value: T) => unknown): Stream<T> {
    return this.with({ kind: 'filter', fn });
  }

  /**
   * Zero or more outputs per record.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect } from 'shardflow';
   * const out = collect<string>();
   * await pipeline('split').from(fromArray(['a b', '', 'c'])).flatMap((line) => line.split(' ').filter(Boolean)).to(out.sink).run();
   * out.values; // ['a', 'b', 'c']
   * ```
   */
  flatMap<U>(fn: (value: T) => Iterable<U> | Promise<Iterable<U>>): Stream<U> {
    return this.with({ kind: 'flatMap', fn });
  }

  /**
   * Checks the record's type at run time: records failing `guard` go to the dead-letter output with `reason`.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect, type DeadLetter } from 'shardflow';
   * const out = collect<{ user: string }>();
   * const dead = collect<DeadLetter>();
   * await pipeline('users')
   *   .from(fromArray<unknown>([{ user: 'ada' }, { name: 'bob' }]))
   *   .validate((v): v is { user: string } => typeof (v as { user?: unknown }).user === 'string', 'needs a string user')
   *   .deadLetters(dead.sink)
   *   .to(out.sink)
   *   .run();
   * out.values; // [{ user: 'ada' }]
   * dead.values.map((d) => d.reason); // ['needs a string user']
   * ```
   */
  validate<U extends T>(guard: (value: T) => value is U, reason?: string): Stream<U>;
  validate(guard: (value: T) => boolean, reason?: string): Stream<T>;
  validate(guard: (value: T) => boolean, reason = 'wrong type'): Stream<T> {
    return this.with({ kind: 'validate', fn: guard, reason });
  }

  /**
   * Sets each record's event time (`fn(value, sourceTime)`; without `fn`, the source's event time) and generates
   * watermarks: event time minus `outOfOrderness`, taken per split and the least over splits. Records later than
   * that are late for event-time windows. Only before the first keyed stage.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, tumbling, count, collect } from 'shardflow';
   * const out = collect<{ start: number; n: number }>();
   * await pipeline('events')
   *   .from(fromArray([{ at: 1_000 }, { at: 12_000 }, { at: 3_000 }]))
   *   .timestamps((e) => e.at, { outOfOrderness: '5s' }) // 3s after 12s is within 5s: on time
   *   .keyBy(() => 'all')
   *   .window(tumbling('10s'))
   *   .aggregate(count())
   *   .map((r) => ({ start: r.window.start, n: r.value }))
   *   .to(out.sink)
   *   .run({ readBatch: 1 });
   * out.values; // [{ start: 0, n: 2 }, { start: 10000, n: 1 }]
   * ```
   */
  timestamps(fn?: (value: T, sourceTime: number) => number, options: { outOfOrderness?: Duration } = {}): Stream<T> {
    if (this.draft.stages.length > 0)
      throw new InvalidArgumentError(`pipeline ${this.draft.name}: timestamps() must come before the first keyed stage`);
    if (this.draft.chain.some((op) => op.kind === 'timestamps'))
      throw new InvalidArgumentError(`pipeline ${this.draft.name}: timestamps() given twice`);
    const outOfOrdernessMs = parseDuration(options.outOfOrderness ?? 0, 'outOfOrderness');
    return this.with({ kind: 'timestamps', fn: fn as ((value: unknown, sourceTime: number) => number) | undefined, outOfOrdernessMs });
  }

  /**
   * Groups records by key: the next stage sees each key's records in order, with state of its own. The key's slot
   * (`keySlot(String(key))`) decides where a distributed run handles it. Keys compare as strings.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, global, count, collect } from 'shardflow';
   * const out = collect<{ user: string; clicks: number }>();
   * await pipeline('per-user')
   *   .from(fromArray([{ user: 'a' }, { user: 'b' }, { user: 'a' }]))
   *   .keyBy((c) => c.user)
   *   .window(global())
   *   .aggregate(count())
   *   .map((r) => ({ user: r.key, clicks: r.value }))
   *   .to(out.sink)
   *   .run();
   * out.values; // [{ user: 'a', clicks: 2 }, { user: 'b', clicks: 1 }]: a global window fires at the end, keys in order
   * ```
   */
  keyBy<K extends Key>(fn: (value: T) => K): KeyedStream<T, K> {
    return new KeyedStream<T, K>(this.draft, fn);
  }

  /**
   * Where records the job cannot process go (source bad records, throwing functions, wrong types), each as a
   * {@link DeadLetter}. Default: a warning line in the log.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect, type DeadLetter } from 'shardflow';
   * const out = collect<number>();
   * const dead = collect<DeadLetter>();
   * await pipeline('parse')
   *   .from(fromArray(['1', 'x', '3']))
   *   .map((s) => JSON.parse(s) as number) // 'x' throws: a dead letter, and the job goes on
   *   .deadLetters(dead.sink)
   *   .to(out.sink)
   *   .run();
   * out.values; // [1, 3]
   * dead.values.map((d) => [d.stage, d.record]); // [['chain-0', 'x']]
   * ```
   */
  deadLetters(sink: Sink<DeadLetter>): Stream<T> {
    return new Stream<T>({ ...this.draft, deadLetters: sink });
  }

  /**
   * Ends the pipeline at `sink`.
   *
   * @example
   * ```ts
   * import { pipeline, fromArray, collect } from 'shardflow';
   * const out = collect<string>();
   * const job = pipeline('upper').from(fromArray(['a', 'b'])).map((s) => s.toUpperCase()).to(out.sink); // a Pipeline
   * await job.run({ mode: 'batch', trigger: 'count=1000' });
   * out.values; // ['A', 'B']
   * ```
   */
  to(sink: Sink<T>): Pipeline {
    if (!sink || typeof sink.open !== 'function') throw new InvalidArgumentError(`pipeline ${this.draft.name}: to() needs a Sink`);
    const stages = [...this.draft.stages, { kind: 'stateless' as const, id: `chain-${this.draft.stages.length}`, ops: this.draft.chain }];
    return new Pipeline({
      name: this.draft.name,
      source: this.draft.source,
      stages,
      sink: sink as Sink<unknown>,
      deadLetters: this.draft.deadLetters,
    });
  }

  /** @internal */
  closeWith(keyed: Omit<KeyedStage, 'id'>): Stream<any> {
    const n = this.draft.stages.length;
    const stages: Stage[] = [
      ...this.draft.stages,
      { kind: 'stateless', id: `chain-${n}`, ops: this.draft.chain },
      { ...keyed, id: `keyed-${n + 1}` },
    ];
    return new Stream({ ...this.draft, stages, chain: [] });
  }
}

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

/**
 * A finished pipeline, made by {@link Stream.to}: its logical plan, and shortcuts to run it in this process.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<number>();
 * const p = pipeline('copy').from(fromArray([1, 2, 3])).to(out.sink);
 * p.plan.stages.length; // 1: one (empty) stateless stage
 * await p.run({ mode: 'batch', trigger: 'interval=1s,count=10k' });
 * out.values; // [1, 2, 3]
 * ```
 */
export class Pipeline {
  constructor(readonly plan: LogicalPlan) {}

  /** The job's name, as given to {@link pipeline}. */
  get name(): string {
    return this.plan.name;
  }

  /**
   * Runs to completion (bounded sources) in this process and resolves with the job's result. See {@link runJob}.
   *
   * @example
   * ```ts
   * import { pipeline, generator, collect } from 'shardflow';
   * const p = pipeline('squares').from(generator({ count: 100, make: (i) => i * i })).to(collect<number>().sink);
   * const result = await p.run({ mode: 'batch', trigger: 'count=10' });
   * result.state; // 'finished'
   * result.metrics.sink.records; // 100
   * ```
   */
  run(options: JobRunOptions = {}): Promise<JobResult> {
    return runJob(this.plan, options);
  }

  /**
   * Starts in this process and returns a handle (metrics, stop, kill). See {@link startJob}.
   *
   * @example
   * ```ts
   * import { pipeline, generator, collect } from 'shardflow';
   * const job = pipeline('ticks').from(generator({ rate: 1_000, make: (i) => i })).to(collect<number>().sink).start(); // unbounded
   * await new Promise((resolve) => setTimeout(resolve, 200));
   * job.metrics.snapshot().source.records; // about 200 so far
   * const result = await job.stop(); // takes a final checkpoint
   * result.state; // 'stopped'
   * ```
   */
  start(options: JobRunOptions = {}): JobHandle {
    return startJob(this.plan, options);
  }
}

export type { FiredTimer };
