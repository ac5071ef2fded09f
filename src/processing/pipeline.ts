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
  ChainOp,
  DeadLetter,
  FiredTimer,
  Key,
  KeyedStage,
  LogicalPlan,
  Stage,
} from './plan.js';
import { runJob, startJob, type JobHandle, type JobResult, type JobRunOptions } from './runner.js';
import { parseDuration, type Duration } from './units.js';
import { KeyedStream, WindowedStream, count, sum } from './keyed-stream.js';

export { KeyedStream, WindowedStream, count, sum };

/** A pipeline being built: what `Stream` and `KeyedStream` carry from step to step. */
export interface Draft {
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
