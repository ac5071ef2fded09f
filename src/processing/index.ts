/**
 * The processing layer: the pipeline API, its logical plan, the local runner (stream and batch modes, triggers,
 * checkpoints), state backends, and the connectors this layer owns (files, generator, stdout, memory, HTTP ingest,
 * Redis Streams, NATS JetStream, storage namespace, webhook). See docs/ARCHITECTURE.md, "The path of a record".
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, global, count } from 'shardflow';
 * const out = collect<{ word: string; count: number }>();
 * await pipeline('wc')
 *   .from(fromArray(['To be, or not to be', 'that is the question'])) // or textLines('books/*.txt')
 *   .flatMap((line) => line.split(/[^\p{L}\p{Nd}]+/u).filter(Boolean).map((w) => w.toLowerCase()))
 *   .keyBy((w) => w)
 *   .window(global())
 *   .aggregate(count())
 *   .map((r) => ({ word: r.key, count: r.value }))
 *   .to(out.sink) // or ndjsonFile('counts.ndjson')
 *   .run({ mode: 'batch', trigger: 'count=10k' });
 * out.values; // [{ word: 'be', count: 2 }, { word: 'is', count: 1 }, ...]: in word order
 * ```
 *
 * @module
 */
export { pipeline, Stream, KeyedStream, WindowedStream, Pipeline, count, sum } from './pipeline.js';
export { tumbling, sliding, session, global, assignWindows, type Window, type WindowSpec, type WindowOptions, type TimeDomain } from './windows.js';
export type {
  LogicalPlan,
  Stage,
  StatelessStage,
  KeyedStage,
  ChainOp,
  Key,
  Aggregator,
  WindowResult,
  LateRecord,
  DeadLetter,
  KeyedContext,
  ProcessHandler,
  FiredTimer,
  ValueState,
  MapState,
  Timers,
} from './plan.js';
export { startJob, runJob, type JobRunOptions, type JobHandle, type JobResult, type Mode } from './runner.js';
export { parseTrigger, BatchTrigger, type TriggerSpec, type TriggerInput } from './triggers.js';
export { parseDuration, parseBytes, parseCount, type Duration } from './units.js';
export { MemoryStateBackend, type StateBackend, type JobState, type Checkpoint, type StateEntry } from './state.js';
export { StorageStateBackend, type StorageStateOptions, type StateStoreClient } from './storage-state.js';
export { JobMetrics, type MetricsSnapshot, type StageMetrics, type LatencySummary } from './metrics.js';
export { deadLetterLog } from './outputs.js';
export { defineJob, loadJob, parseJobArgs, runJobModule, runIfMain, type JobArgs, type JobModule } from './job.js';
export { files, textLines, ndjson, csv, ndjsonFile, parseCsvRow, type FilesOptions, type FileFormat } from './connectors/files.js';
export { generator, rngFor, type GeneratorOptions, type Rng } from './connectors/generator.js';
export { stdout } from './connectors/stdout.js';
export { fromArray, collect } from './connectors/memory.js';
export { httpIngest, type HttpIngestOptions } from './connectors/http-ingest.js';
export { redisStreams, type RedisStreamsOptions } from './connectors/redis-streams.js';
export { jetStreamSource, type JetStreamOptions } from './connectors/jetstream.js';
export { namespaceSink, type NamespaceSinkOptions } from './connectors/namespace-sink.js';
export { webhook, type WebhookOptions } from './connectors/webhook.js';
export type * from './connectors/types.js';
