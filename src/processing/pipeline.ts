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
 * const p = pipeline('wordcount').from(textLines('books/*.txt')).flatMap(words).to(stdout());
 * await p.run();
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
 * rejected promise, sends the record to the dead-letter output and the job goes on.
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
   * stream.map((line: string) => line.length)
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
   * stream.filter((n: number) => n % 2 === 0)
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
   * stream.flatMap((line: string) => line.split(' '))
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
   * pipeline('j').from(ndjson('in/*.ndjson'))
   *   .validate((v): v is { user: string } => typeof (v as any)?.user === 'string', 'needs a string user')
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
   * stream.timestamps((e: { at: number }) => e.at, { outOfOrderness: '2s' })
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
   * stream.keyBy((c: { user: string }) => c.user).window(tumbling('1m')).aggregate(count())
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
   * stream.deadLetters(ndjsonFile('dead.ndjson'))
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
   * const job = stream.to(stdout());
   * await job.run({ mode: 'batch', trigger: 'count=1000' });
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

/** Records grouped by a key of type `K`. */
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
   * keyed.window(sliding('1m', '10s')).reduce((a, b) => ({ ...a, n: a.n + b.n }))
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
   * keyed.reduce((a: { n: number }, b) => ({ n: a.n + b.n })) // running totals
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
   * keyed.process<{ user: string; total: number }>({
   *   async onRecord(click, ctx) {
   *     const total = ctx.value<number>('total');
   *     total.set(((await total.get()) ?? 0) + 1);
   *     ctx.timers.atEventTime(ctx.timestamp + 60_000); // report a minute later
   *   },
   *   async onTimer(_t, ctx) {
   *     ctx.emit({ user: String(ctx.key), total: (await ctx.value<number>('total').get()) ?? 0 });
   *   },
   * })
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

/** A keyed stream cut into windows; ends with reduce or aggregate. */
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
   * keyed.window(tumbling('10s')).allowedLateness('5s')
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
   * keyed.window(tumbling('10s')).lateTo(ndjsonFile('late.ndjson'))
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
   * keyed.window(tumbling('1m')).reduce((a: number, b: number) => Math.max(a, b))
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
   * keyed.window(session('30s')).aggregate({
   *   create: () => ({ n: 0, sum: 0 }),
   *   add: (a, v: { ms: number }) => ({ n: a.n + 1, sum: a.sum + v.ms }),
   *   merge: (a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum }),
   *   result: (a) => a.sum / a.n,
   * })
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
 * keyed.window(tumbling('10s')).aggregate(count()) // WindowResult<K, number>
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
 * keyed.window(tumbling('1m')).aggregate(sum((o: { amount: number }) => o.amount))
 * ```
 */
export function sum<T>(fn: (value: T) => number): Aggregator<T, number, number> {
  return { create: () => 0, add: (n, v) => n + fn(v), merge: (a, b) => a + b };
}

/**
 * A finished pipeline: its logical plan, and shortcuts to run it in this process.
 *
 * @example
 * ```ts
 * const p = pipeline('copy').from(ndjson('in/*.ndjson')).to(ndjsonFile('out.ndjson'));
 * p.plan.stages.length;             // 1: one (empty) stateless stage
 * await p.run({ mode: 'batch', trigger: 'interval=1s,count=10k' });
 * ```
 */
export class Pipeline {
  constructor(readonly plan: LogicalPlan) {}

  get name(): string {
    return this.plan.name;
  }

  /** Runs to completion (bounded sources) in this process. See {@link runJob}. */
  run(options: JobRunOptions = {}): Promise<JobResult> {
    return runJob(this.plan, options);
  }

  /** Starts in this process and returns a handle (metrics, stop, kill). See {@link startJob}. */
  start(options: JobRunOptions = {}): JobHandle {
    return startJob(this.plan, options);
  }
}

export type { FiredTimer };
