/**
 * The logical plan: what a pipeline built with {@link pipeline} turns into, and all a runner needs. It is plain data
 * plus the user's functions — no threads, queues or connections — so the same plan can run in this process
 * ({@link startJob}) or, later, spread over compute nodes: stateless stages on any node, keyed stages routed by the
 * key's slot (`keySlot`, 4096 slots) to the worker that owns it, their state in a {@link StateBackend}.
 *
 * A plan is `source → stateless → keyed → stateless → keyed → … → stateless → sink`: stateless stages (a chain of
 * map / filter / flatMap / validate / timestamps, possibly empty) alternate with keyed stages (a window or a process
 * function on records grouped by key).
 */
import type { Sink, Source } from './connectors/types.js';
import type { Json } from './connectors/types.js';
import type { Window, WindowSpec } from './windows.js';

/**
 * A record key: records with the same key go to the same slot and see the same state, in order. Keys compare as
 * strings, so `1` and `'1'` are one key.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type Key } from 'shardflow';
 * const byBucket = (n: number): Key => Math.floor(n / 10); // 0-9 → 0, 10-19 → 1, ...
 * await pipeline('buckets').from(fromArray([3, 14, 7])).keyBy(byBucket).reduce((a, b) => a + b).to(collect<number>().sink).run();
 * ```
 */
export type Key = string | number;

/**
 * One step of a stateless chain, as the builder records it in the plan. Functions may return a promise.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type ChainOp, type StatelessStage } from 'shardflow';
 * const p = pipeline('ops').from(fromArray(['1'])).map(Number).filter((n) => n > 0).to(collect<number>().sink);
 * const ops: ChainOp[] = (p.plan.stages[0] as StatelessStage).ops;
 * ops.map((op) => op.kind); // ['map', 'filter']
 * ```
 */
export type ChainOp =
  | { kind: 'map'; fn: (value: any) => unknown }
  | { kind: 'filter'; fn: (value: any) => unknown }
  | { kind: 'flatMap'; fn: (value: any) => unknown }
  | { kind: 'validate'; fn: (value: any) => unknown; reason: string }
  | { kind: 'timestamps'; fn: ((value: any, sourceTime: number) => number) | undefined; outOfOrdernessMs: number };

/**
 * A stage of map / filter / flatMap / validate / timestamps steps (possibly none) run per record.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type StatelessStage } from 'shardflow';
 * const p = pipeline('s').from(fromArray([1, 2])).map((n) => n * 2).to(collect<number>().sink);
 * const [stage] = p.plan.stages as StatelessStage[];
 * [stage.kind, stage.id, stage.ops.length]; // ['stateless', 'chain-0', 1]
 * ```
 */
export interface StatelessStage {
  kind: 'stateless';
  id: string;
  ops: ChainOp[];
}

/**
 * `create` → `add` per record → `result` when the window fires; `merge` joins two (session windows need it).
 * The accumulator is window state: keep it JSON-like. Without `result`, the accumulator is the result.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, global, collect, type Aggregator } from 'shardflow';
 * const distinct: Aggregator<string, string[], number> = {
 *   create: () => [],
 *   add: (seen, v) => (seen.includes(v) ? seen : [...seen, v]),
 *   merge: (a, b) => [...new Set([...a, ...b])],
 *   result: (seen) => seen.length,
 * };
 * const out = collect<number>();
 * await pipeline('distinct').from(fromArray(['a', 'b', 'a'])).keyBy(() => 'all').window(global()).aggregate(distinct).map((r) => r.value).to(out.sink).run();
 * out.values; // [2]
 * ```
 */
export interface Aggregator<T, A, R> {
  create(): A;
  add(acc: A, value: T): A;
  merge?(a: A, b: A): A;
  result?(acc: A): R;
}

/**
 * What a window stage emits for each key and window that fires (again, for a late update in allowed lateness).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, tumbling, count, collect, type WindowResult } from 'shardflow';
 * const out = collect<WindowResult<string, number>>();
 * await pipeline('w').from(fromArray(['a', 'a'], { eventTime: () => 5_000 })).keyBy((s) => s).window(tumbling('10s')).aggregate(count()).to(out.sink).run();
 * out.values; // [{ key: 'a', window: { start: 0, end: 10000 }, value: 2 }]
 * ```
 */
export interface WindowResult<K, R> {
  key: K;
  window: Window;
  value: R;
}

/**
 * A record that arrived after its windows closed (watermark past `end - 1 + allowedLateness`), as a window stage's
 * {@link WindowedStream.lateTo} output gets it.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, tumbling, count, collect, type LateRecord } from 'shardflow';
 * const late = collect<LateRecord<number, string>>();
 * await pipeline('late').from(fromArray([12_000, 2_000], { eventTime: (t) => t })).keyBy(() => 'all')
 *   .window(tumbling('10s')).lateTo(late.sink).aggregate(count()).to(collect<unknown>().sink).run({ readBatch: 1 });
 * late.values; // [{ key: 'all', value: 2000, timestamp: 2000, watermark: 11999 }]
 * ```
 */
export interface LateRecord<T, K = Key> {
  key: K;
  value: T;
  timestamp: number;
  watermark: number;
}

/**
 * One value of state per key, from {@link KeyedContext.value}. Values must be JSON-like (they go to the state
 * backend).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<string>();
 * await pipeline('first-seen').from(fromArray(['a', 'b', 'a'])).keyBy((u) => u).process<string>(async (u, ctx) => {
 *   const seen = ctx.value<boolean>('seen');
 *   if (!(await seen.get())) { seen.set(true); ctx.emit(u); }
 * }).to(out.sink).run();
 * out.values; // ['a', 'b']
 * ```
 */
export interface ValueState<S> {
  get(): Promise<S | undefined>;
  set(value: S): void;
  clear(): void;
}

/**
 * A map of state per key, from {@link KeyedContext.map} (stored as one value per key; keep it small).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<[string, number][]>();
 * await pipeline('pages').from(fromArray([{ user: 'u', page: '/a' }, { user: 'u', page: '/a' }, { user: 'u', page: '/b' }]))
 *   .keyBy((v) => v.user)
 *   .process<[string, number][]>(async (v, ctx) => {
 *     const views = ctx.map<number>('views');
 *     await views.set(v.page, ((await views.get(v.page)) ?? 0) + 1);
 *     ctx.emit(await views.entries());
 *   })
 *   .to(out.sink)
 *   .run();
 * out.values.at(-1); // [['/a', 2], ['/b', 1]]
 * ```
 */
export interface MapState<V> {
  get(field: string): Promise<V | undefined>;
  set(field: string, value: V): Promise<void>;
  delete(field: string): Promise<void>;
  entries(): Promise<Array<[string, V]>>;
  clear(): void;
}

/**
 * Timers of the current key ({@link KeyedContext.timers}): event time fires when the watermark passes, processing
 * time by the clock. A key has at most one timer per time and domain.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<number>();
 * await pipeline('timers').from(fromArray([1, 2], { eventTime: (n) => n * 1_000 })).keyBy(() => 'k').process<number>({
 *   onRecord(n, ctx) { ctx.timers.atEventTime(10_000); ctx.timers.atEventTime(20_000); if (n === 2) ctx.timers.deleteEventTime(20_000); },
 *   onTimer(t, ctx) { ctx.emit(t.time); },
 * }).to(out.sink).run();
 * out.values; // [10000]: one timer per time, and 20000 was deleted
 * ```
 */
export interface Timers {
  atEventTime(time: number): void;
  atProcessingTime(time: number): void;
  deleteEventTime(time: number): void;
  deleteProcessingTime(time: number): void;
}

/**
 * What a process function sees for one record or timer of one key.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type KeyedContext } from 'shardflow';
 * const out = collect<string>();
 * const describe = (v: number, ctx: KeyedContext<string, string>) => ctx.emit(`${ctx.key}: ${v} at ${ctx.timestamp}`);
 * await pipeline('ctx').from(fromArray([7], { eventTime: () => 1_000 })).keyBy(() => 'k').process(describe).to(out.sink).run();
 * out.values; // ['k: 7 at 1000']
 * ```
 */
export interface KeyedContext<K, U> {
  readonly key: K;
  /** The record's event time, or the timer's time. */
  readonly timestamp: number;
  /** The stage's current watermark. */
  readonly watermark: number;
  /** The processing-time clock. */
  now(): number;
  value<S>(name: string): ValueState<S>;
  map<V>(name: string): MapState<V>;
  readonly timers: Timers;
  /** Emits a result downstream, with `timestamp` (default: the record's, or the timer's). */
  emit(value: U, timestamp?: number): void;
}

/**
 * A timer that fired, as {@link ProcessHandler.onTimer} gets it.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type FiredTimer } from 'shardflow';
 * const out = collect<FiredTimer>();
 * await pipeline('fired').from(fromArray([1], { eventTime: () => 0 })).keyBy(() => 'k').process<FiredTimer>({
 *   onRecord: (_v, ctx) => ctx.timers.atEventTime(5_000),
 *   onTimer: (timer, ctx) => ctx.emit(timer),
 * }).to(out.sink).run();
 * out.values; // [{ time: 5000, domain: 'event' }]
 * ```
 */
export interface FiredTimer {
  time: number;
  domain: 'event' | 'processing';
}

/**
 * A process function for {@link KeyedStream.process}: `onRecord` for each record of a key, `onTimer` for each of the
 * key's timers that fires.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type ProcessHandler } from 'shardflow';
 * const dedupe: ProcessHandler<{ id: string }, string, string> = {
 *   async onRecord(v, ctx) {
 *     const seen = ctx.value<number>('seen');
 *     if ((await seen.get()) === undefined) ctx.emit(v.id);
 *     seen.set(1);
 *   },
 * };
 * const out = collect<string>();
 * await pipeline('dedupe').from(fromArray([{ id: 'a' }, { id: 'a' }, { id: 'b' }])).keyBy((v) => v.id).process(dedupe).to(out.sink).run();
 * out.values; // ['a', 'b']
 * ```
 */
export interface ProcessHandler<T, K, U> {
  onRecord(value: T, ctx: KeyedContext<K, U>): void | Promise<void>;
  onTimer?(timer: FiredTimer, ctx: KeyedContext<K, U>): void | Promise<void>;
}

export type KeyedOperatorSpec =
  | {
      kind: 'window';
      window: WindowSpec;
      allowedLatenessMs: number;
      late: Sink<LateRecord<unknown>> | undefined;
      aggregator: Aggregator<unknown, Json, unknown>;
    }
  | { kind: 'process'; handler: ProcessHandler<unknown, Key, unknown> };

/**
 * A stage on records grouped by key: a window or a process function, its state named by `id`.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, global, count, collect, type KeyedStage } from 'shardflow';
 * const p = pipeline('k').from(fromArray(['a'])).keyBy((s) => s).window(global()).aggregate(count()).to(collect<unknown>().sink);
 * const keyed = p.plan.stages[1] as KeyedStage;
 * [keyed.id, keyed.operator.kind]; // ['keyed-1', 'window']
 * ```
 */
export interface KeyedStage {
  kind: 'keyed';
  /** Stable id: names the stage's state. Changing the pipeline's shape changes ids. */
  id: string;
  keyFn: (value: any) => unknown;
  operator: KeyedOperatorSpec;
}

/**
 * A stage of a plan: stateless and keyed stages alternate, starting and ending with a stateless one.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, global, count, collect, type Stage } from 'shardflow';
 * const p = pipeline('st').from(fromArray(['a'])).keyBy((s) => s).window(global()).aggregate(count()).to(collect<unknown>().sink);
 * const stages: Stage[] = p.plan.stages;
 * stages.map((s) => s.id); // ['chain-0', 'keyed-1', 'chain-2']
 * ```
 */
export type Stage = StatelessStage | KeyedStage;

/**
 * What a pipeline is to a runner: its name, source, stages, sink and dead-letter sink ({@link Pipeline.plan}).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, runJob, type LogicalPlan } from 'shardflow';
 * const plan: LogicalPlan = pipeline('plan').from(fromArray([1, 2])).to(collect<number>().sink).plan;
 * [plan.name, plan.source.name, plan.sink.name]; // ['plan', 'array(2)', 'collect']
 * await runJob(plan, { mode: 'batch' });
 * ```
 */
export interface LogicalPlan {
  name: string;
  source: Source<unknown>;
  /** Starts and ends with a stateless stage; stateless and keyed alternate. */
  stages: Stage[];
  sink: Sink<unknown>;
  deadLetters: Sink<DeadLetter> | undefined;
}

/**
 * A record the job could not process, with why: what the dead-letter output ({@link Stream.deadLetters}) gets.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, type DeadLetter } from 'shardflow';
 * const dead = collect<DeadLetter>();
 * await pipeline('dl').from(fromArray([1, 0])).map((n) => { if (n === 0) throw new Error('zero'); return 1 / n; })
 *   .deadLetters(dead.sink).to(collect<number>().sink).run();
 * dead.values.map((d) => [d.job, d.stage, d.reason, d.record]); // [['dl', 'chain-0', 'map failed: Error: zero', 0]]
 * // each also has `at` (an ISO time) and, for a source's bad record, `where`
 * ```
 */
export interface DeadLetter {
  job: string;
  /** `source`, or the stage id (`chain-0`, `keyed-1`, ...). */
  stage: string;
  reason: string;
  /** The record (as JSON; the raw text for a source's bad record). */
  record: Json;
  where?: string;
  at: string;
}
