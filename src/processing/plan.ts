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

/** A record key: records with the same key go to the same slot and see the same state, in order. */
export type Key = string | number;

/** One step of a stateless chain. Functions may return a promise. */
export type ChainOp =
  | { kind: 'map'; fn: (value: any) => unknown }
  | { kind: 'filter'; fn: (value: any) => unknown }
  | { kind: 'flatMap'; fn: (value: any) => unknown }
  | { kind: 'validate'; fn: (value: any) => unknown; reason: string }
  | { kind: 'timestamps'; fn: ((value: any, sourceTime: number) => number) | undefined; outOfOrdernessMs: number };

export interface StatelessStage {
  kind: 'stateless';
  id: string;
  ops: ChainOp[];
}

/** `create` → `add` per record → `result` when the window fires; `merge` joins two (session windows need it). */
export interface Aggregator<T, A, R> {
  create(): A;
  add(acc: A, value: T): A;
  merge?(a: A, b: A): A;
  result?(acc: A): R;
}

/** What a window stage emits for each key and window that fires. */
export interface WindowResult<K, R> {
  key: K;
  window: Window;
  value: R;
}

/** A record that arrived after its windows closed (watermark past `end - 1 + allowedLateness`). */
export interface LateRecord<T, K = Key> {
  key: K;
  value: T;
  timestamp: number;
  watermark: number;
}

/** One value of state per key. Values must be JSON-like (they go to the state backend). */
export interface ValueState<S> {
  get(): Promise<S | undefined>;
  set(value: S): void;
  clear(): void;
}

/** A map of state per key (stored as one value per key; keep it small). */
export interface MapState<V> {
  get(field: string): Promise<V | undefined>;
  set(field: string, value: V): Promise<void>;
  delete(field: string): Promise<void>;
  entries(): Promise<Array<[string, V]>>;
  clear(): void;
}

/** Timers of the current key: event time fires when the watermark passes, processing time by the clock. */
export interface Timers {
  atEventTime(time: number): void;
  atProcessingTime(time: number): void;
  deleteEventTime(time: number): void;
  deleteProcessingTime(time: number): void;
}

/** What a process function sees for one record or timer of one key. */
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

/** A timer that fired. */
export interface FiredTimer {
  time: number;
  domain: 'event' | 'processing';
}

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

export interface KeyedStage {
  kind: 'keyed';
  /** Stable id: names the stage's state. Changing the pipeline's shape changes ids. */
  id: string;
  keyFn: (value: any) => unknown;
  operator: KeyedOperatorSpec;
}

export type Stage = StatelessStage | KeyedStage;

export interface LogicalPlan {
  name: string;
  source: Source<unknown>;
  /** Starts and ends with a stateless stage; stateless and keyed alternate. */
  stages: Stage[];
  sink: Sink<unknown>;
  deadLetters: Sink<DeadLetter> | undefined;
}

/** A record the job could not process, with why. */
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
