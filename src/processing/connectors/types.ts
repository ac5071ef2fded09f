/**
 * What a source and a sink are to the processing engine. Every connector (files, generator, HTTP ingest, Redis
 * Streams, NATS, storage namespace, webhook, stdout) implements one of these and passes one conformance suite
 * (test/processing/connector-conformance.ts).
 *
 * Sources are read in **splits** (a file, a byte range of a file, a stream partition) so that several workers can
 * read one source, and every split has a **position** (plain JSON) that a checkpoint stores: reopening a split at a
 * stored position resumes right after the last record the checkpoint covered, so records are neither lost nor
 * counted twice in state. A record a source cannot decode is not an error that stops the job: it is yielded as a
 * {@link BadRecord} and goes to the dead-letter output with its reason.
 *
 * @example
 * ```ts
 * import { fromArray, type Source, type Json } from 'shardflow';
 * // Any source reads this way: fromArray here, or textLines over files, with one split per file.
 * const source: Source<string> = fromArray(['a', 'b', 'c'], { splits: 2 });
 * const seen: string[] = [];
 * const positions: Record<string, Json> = {};
 * for (const split of await source.splits(2)) {
 *   const reader = await source.open(split);
 *   for (let batch = await reader.read(100); ; batch = await reader.read(100)) {
 *     for (const r of batch.records) seen.push(r.value);
 *     positions[split.id] = batch.position; // what a checkpoint would store
 *     if (batch.done) break;
 *   }
 *   await reader.close();
 * }
 * seen; // ['a', 'c', 'b']: split 0 holds 'a' and 'c', split 1 'b'
 *
 * // Reopened after one record, a split resumes right after it.
 * const [first] = await source.splits(2);
 * const reader = await source.open(first!);
 * const one = await reader.read(1);
 * await reader.close();
 * const again = await source.open(first!, one.position);
 * const rest = await again.read(100);
 * rest.records.map((r) => r.value); // ['c']
 * await again.close();
 * ```
 */

/** A JSON value: what positions, splits and dead letters are made of, so they can be stored in a checkpoint. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One part of a source that one reader reads, in order. `id` is stable across runs (a checkpoint names it). */
export interface SourceSplit {
  id: string;
  /** Whatever the source needs to open the split again (a path, a byte range, a stream name). */
  spec: Json;
}

/** A record read from a source. */
export interface SourceRecord<T> {
  value: T;
  /** Event time (ms since the epoch), when the source knows it; else the pipeline's timestamp function decides. */
  eventTime?: number;
  /** Approximate size in bytes (for `bytes` triggers and rate reporting). */
  bytes: number;
}

/** A record the source could not decode: it goes to the dead-letter output, the job goes on. */
export interface BadRecord {
  /** The raw input, truncated to a bounded size. */
  raw: string;
  reason: string;
  /** Where it was (file and line, stream id). */
  where?: string;
}

export interface ReadBatch<T> {
  records: SourceRecord<T>[];
  bad: BadRecord[];
  /** The position after the last record (or bad record) of this batch. */
  position: Json;
  /** True when a bounded split has no more records. Unbounded splits never set it. */
  done: boolean;
  /**
   * Records waiting at the source after this batch — the split's lag, as a Kafka consumer's — when the source can
   * tell (an estimate from bytes is fine). The live view's backlog counts them.
   */
  pending?: number;
}

export interface SourceReader<T> {
  /**
   * Up to `max` records. Resolves with an empty, not-done batch after waiting at most `waitMs` when an unbounded
   * source has nothing yet, so the caller can fire time-based triggers and checkpoints.
   */
  read(max: number, waitMs?: number): Promise<ReadBatch<T>>;
  /**
   * Everything up to `position` (one this reader returned) is in a committed checkpoint: the job will never reopen
   * the split before it, so the source may forget it (trim a log, acknowledge messages). Optional; best effort.
   */
  committed?(position: Json): Promise<void>;
  close(): Promise<void>;
}

export interface Source<T> {
  /** For logs, status and metrics, e.g. `files(logs/*.txt)`. */
  readonly name: string;
  /** Bounded sources end (files, a finite generator); unbounded ones do not (HTTP ingest, streams). */
  readonly bounded: boolean;
  /** Splits for `parallelism` readers (a source may return more or fewer). Same input, same splits. */
  splits(parallelism: number): Promise<SourceSplit[]>;
  /** Opens a split, at the start or right after `from` (a position a previous ReadBatch returned). */
  open(split: SourceSplit, from?: Json): Promise<SourceReader<T>>;
}

export interface SinkWriter<T> {
  /**
   * Writes records; resolves once they are accepted by the sink (durably, where the sink can say so). Records the
   * sink cannot take (not serialisable, no key) are not a failure of the batch: it writes the others and rejects
   * with a `BadRecordsError` (connectors/bad-records.ts) naming them; they go to the dead-letter output.
   */
  write(records: T[]): Promise<void>;
  /** Resolves when everything written so far is durable at the sink (called before a checkpoint commits). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Who opens a sink writer. */
export interface SinkContext {
  job: string;
  worker: string;
  /**
   * The job resumes from a checkpoint (a restart with the same state, a later generation of a cluster job): what
   * earlier runs wrote must stay (a file sink appends instead of truncating).
   */
  resumed?: boolean;
}

export interface Sink<T> {
  readonly name: string;
  /**
   * Opens a writer for one worker. Sinks are at-least-once: after a failure, records since the last checkpoint are
   * written again. A sink that can write idempotently (a keyed store, a file it rewrites) says so.
   */
  open(context: SinkContext): Promise<SinkWriter<T>>;
  readonly idempotent: boolean;
  /**
   * Whether several workers may each open a writer (a store, an HTTP endpoint). A sink without it (a file) gets one
   * writer: a job spread over compute nodes sends every record to its first worker for it.
   */
  readonly manyWriters?: boolean;
}
