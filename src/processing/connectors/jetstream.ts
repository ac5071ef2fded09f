/**
 * NATS JetStream as a source: one split per stream, read by an ordered (ephemeral, flow-controlled) pull consumer
 * that starts at a stream sequence. The position is the **stream sequence** of the last message a batch covered
 * (`{ seq: 42 }`). The brief spoke of the consumer sequence; the stream sequence is what stays meaningful across
 * consumers (an ordered consumer is recreated at every open and its own sequence restarts at 1), and reopening at
 * `seq` starts a new consumer at `seq + 1`, so a checkpoint resumes exactly after what it covered. Nothing is
 * acknowledged on the server: positions live in the job's checkpoints. A stream whose retention removed messages past
 * a checkpoint loses them.
 *
 * Values: the message payload parsed as JSON (text that is not JSON is a BadRecord), or `decode`. Event time is the
 * time the server stored the message unless `eventTime` says otherwise.
 */
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { ClosedError, ConfigError, ConnectionError } from '../../errors/index.js';
import { truncateRaw } from './ingest-log.js';
import type { BadRecord, Json, ReadBatch, Source, SourceReader, SourceRecord, SourceSplit } from './types.js';

/**
 * Options of {@link jetStreamSource}.
 *
 * @example
 * ```ts
 * import { jetStreamSource, type JetStreamOptions } from 'shardflow';
 * const options: JetStreamOptions<string> = {
 *   servers: 'nats://127.0.0.1:4222', streams: ['LOGS'], filterSubject: 'logs.error', decode: (data) => new TextDecoder().decode(data),
 * };
 * const errors = jetStreamSource(options); // payloads as text, not JSON
 * ```
 */
export interface JetStreamOptions<T> {
  /** e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Other connection options (user, pass, token, tls, ...). */
  connection?: Omit<NodeConnectionOptions, 'servers'>;
  /** Stream names, one split each. */
  streams: string[];
  /** Only messages on these subjects (default: every subject of the stream). */
  filterSubject?: string;
  /** Where a split opened without a position starts: the first message (`earliest`, default) or after the last. */
  start?: 'earliest' | 'latest';
  /** Messages a reader fetches ahead of `read` (default 256). */
  prefetch?: number;
  decode?: (data: Uint8Array, subject: string) => T;
  eventTime?: (value: T, msg: JsMsg) => number | undefined;
}

/**
 * A NATS JetStream source.
 *
 * @example
 * ```ts
 * import { jetStreamSource } from 'shardflow';
 * const orders = jetStreamSource<{ id: string }>({ servers: 'nats://127.0.0.1:4222', streams: ['ORDERS'] });
 * // nats pub orders.new '{"id":"o1"}'
 * const [split] = await orders.splits(1);
 * const reader = await orders.open(split!);
 * const batch = await reader.read(100, 500); // batch.position: { seq: N }
 * await reader.close();
 * ```
 */
export function jetStreamSource<T = unknown>(options: JetStreamOptions<T>): Source<T> {
  if (!Array.isArray(options.streams) || options.streams.length === 0) {
    throw new ConfigError('jetStreamSource needs at least one stream name');
  }
  return {
    name: `jetstream(${options.streams.join(',')})`,
    bounded: false,
    async splits() {
      return options.streams.map((stream) => ({ id: `jetstream:${stream}`, spec: { stream } }));
    },
    async open(split: SourceSplit, from?: Json) {
      const stream = (split.spec as { stream?: unknown } | null)?.stream;
      if (typeof stream !== 'string') throw new ConfigError(`not a jetstream split: ${JSON.stringify(split)}`);
      const seq = (from as { seq?: unknown } | undefined)?.seq;
      if (from !== undefined && (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0)) {
        throw new ConfigError(`not a jetstream position: ${JSON.stringify(from)}`);
      }
      const reader = new JetStreamReader<T>(stream, options);
      try {
        await reader.start(seq as number | undefined);
      } catch (err) {
        await reader.close();
        if (err instanceof ConfigError) throw err;
        throw new ConnectionError(`cannot read jetstream ${stream}: ${(err as Error).message}`, { cause: err });
      }
      return reader;
    },
  };
}

class JetStreamReader<T> implements SourceReader<T> {
  private nc: NatsConnection | undefined;
  private messages: ConsumerMessages | undefined;
  private readonly queue: JsMsg[] = [];
  private lastSeq = 0;
  private closed = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** Resolved when the queue has room again (the pump waits on it: backpressure). */
  private room: (() => void) | undefined;

  constructor(
    private readonly stream: string,
    private readonly options: JetStreamOptions<T>,
  ) {}

  async start(from: number | undefined): Promise<void> {
    this.nc = await connect({ ...this.options.connection, servers: this.options.servers });
    if (from !== undefined) this.lastSeq = from;
    else if (this.options.start === 'latest') {
      const jsm = await jetstreamManager(this.nc);
      this.lastSeq = (await jsm.streams.info(this.stream)).state.last_seq;
    }
    const js = jetstream(this.nc);
    const consumer = await js.consumers.get(this.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.lastSeq + 1,
      ...(this.options.filterSubject ? { filter_subjects: this.options.filterSubject } : {}),
    });
    const prefetch = this.options.prefetch ?? 256;
    this.messages = await consumer.consume({ max_messages: prefetch });
    void this.pump(this.messages, prefetch);
  }

  private async pump(messages: ConsumerMessages, prefetch: number): Promise<void> {
    try {
      for await (const m of messages) {
        this.queue.push(m);
        this.wake?.();
        if (this.queue.length >= prefetch) await new Promise<void>((ok) => (this.room = ok));
        if (this.closed) break;
      }
    } catch (err) {
      if (!this.closed) this.failure = err as Error;
    }
    this.wake?.();
  }

  async read(max: number, waitMs = 1000): Promise<ReadBatch<T>> {
    if (this.closed) throw new ClosedError(`the reader of jetstream ${this.stream} is closed`);
    if (this.queue.length === 0 && !this.failure && waitMs > 0) {
      await new Promise<void>((ok) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          ok();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
    if (this.queue.length === 0 && this.failure) {
      throw new ConnectionError(`reading jetstream ${this.stream} failed: ${this.failure.message}`, { cause: this.failure });
    }
    const taken = this.queue.splice(0, Math.max(1, Math.floor(max)));
    const room = this.room;
    this.room = undefined;
    room?.();
    const records: SourceRecord<T>[] = [];
    const bad: BadRecord[] = [];
    for (const m of taken) {
      this.lastSeq = m.seq;
      let value: T;
      try {
        value = this.options.decode ? this.options.decode(m.data, m.subject) : (JSON.parse(m.string()) as T);
      } catch (err) {
        bad.push({ raw: truncateRaw(m.string()), reason: `not JSON: ${(err as Error).message}`, where: `${this.stream}#${m.seq}` });
        continue;
      }
      const eventTime = this.options.eventTime
        ? this.options.eventTime(value, m)
        : Math.floor(m.info.timestampNanos / 1_000_000);
      records.push({ value, bytes: m.data.length, ...(eventTime === undefined ? {} : { eventTime }) });
    }
    // The server says with each message how many more the consumer had waiting then, those fetched since among them.
    const pending = taken.at(-1)?.info.pending ?? this.queue.length;
    return { records, bad, position: { seq: this.lastSeq }, done: false, pending };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.room?.();
    this.wake?.();
    try {
      await this.messages?.close();
    } catch {
      // Closing anyway.
    }
    await this.nc?.close().catch(() => undefined);
  }
}
