/**
 * Redis Streams as a source: one split per stream key, read with `XREAD` from an entry id. The position is the id of
 * the last entry a batch covered (`{ id: "1700000000000-3" }`); reopening there asks `XREAD` for entries after it,
 * so a checkpoint resumes exactly after what it covered. No consumer group is used: positions live in the job's
 * checkpoints, not on the Redis server, so several jobs can read one stream and a restarted job replays from its
 * checkpoint whatever the server thinks was delivered. Trimming a stream (`MAXLEN`) past a checkpoint loses what was
 * trimmed.
 *
 * Values: by default the entry's `data` field, parsed as JSON (an entry without it, or with text that is not JSON,
 * is a BadRecord); `field: null` gives the entry's fields as an object; or pass `decode`. Event time is the entry
 * id's milliseconds (when Redis appended it) unless `eventTime` says otherwise.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ClosedError, ConfigError, ConnectionError } from '../../errors/index.js';
import { truncateRaw } from './ingest-log.js';
import type { BadRecord, Json, ReadBatch, Source, SourceReader, SourceRecord, SourceSplit } from './types.js';

/**
 * Options of {@link redisStreams}.
 *
 * @example
 * ```ts
 * import { redisStreams, type RedisStreamsOptions } from 'shardflow';
 * const options: RedisStreamsOptions<{ user: string; at: number }> = {
 *   url: 'redis://127.0.0.1:6379', streams: ['clicks:0', 'clicks:1'], start: 'latest', eventTime: (c) => c.at,
 * };
 * const clicks = redisStreams(options); // two splits, one per stream key
 * ```
 */
export interface RedisStreamsOptions<T> {
  /** e.g. `redis://127.0.0.1:6379/0`; or `redis` for ioredis options. */
  url?: string;
  redis?: RedisOptions;
  /** Stream keys, one split each. */
  streams: string[];
  /** Where a split opened without a position starts: every entry (`earliest`, default) or only later ones. */
  start?: 'earliest' | 'latest';
  /** The field holding the JSON value (default `data`); `null` for the fields as an object. */
  field?: string | null;
  /** Turns an entry into a value; a throw makes it a BadRecord with the error's message. */
  decode?: (fields: Record<string, string>, id: string) => T;
  eventTime?: (value: T, id: string) => number | undefined;
}

/**
 * A Redis Streams source.
 *
 * @example
 * ```ts
 * import { redisStreams } from 'shardflow';
 * const clicks = redisStreams<{ user: string }>({ url: 'redis://127.0.0.1:6379', streams: ['clicks'] });
 * // redis-cli XADD clicks '*' data '{"user":"u1"}'
 * const [split] = await clicks.splits(1);
 * const reader = await clicks.open(split!);
 * const batch = await reader.read(100, 500); // batch.position: { id: '...' }, to reopen after it
 * await reader.close();
 * ```
 */
export function redisStreams<T = unknown>(options: RedisStreamsOptions<T>): Source<T> {
  if (!Array.isArray(options.streams) || options.streams.length === 0) {
    throw new ConfigError('redisStreams needs at least one stream key');
  }
  if (new Set(options.streams).size !== options.streams.length) throw new ConfigError('redisStreams: a stream key is listed twice');
  return {
    name: `redis-streams(${options.streams.join(',')})`,
    bounded: false,
    async splits() {
      return options.streams.map((key) => ({ id: `redis-stream:${key}`, spec: { key } }));
    },
    async open(split: SourceSplit, from?: Json) {
      const key = (split.spec as { key?: unknown } | null)?.key;
      if (typeof key !== 'string') throw new ConfigError(`not a redis streams split: ${JSON.stringify(split)}`);
      const id = (from as { id?: unknown } | undefined)?.id;
      if (from !== undefined && (typeof id !== 'string' || !/^\d+-\d+$/.test(id))) {
        throw new ConfigError(`not a redis streams position: ${JSON.stringify(from)}`);
      }
      const reader = new StreamReader<T>(key, options);
      try {
        await reader.start(id as string | undefined);
      } catch (err) {
        await reader.close();
        throw err;
      }
      return reader;
    },
  };
}

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

class StreamReader<T> implements SourceReader<T> {
  private readonly redis: Redis;
  private lastId = '0-0';
  private closed = false;

  constructor(
    private readonly key: string,
    private readonly options: RedisStreamsOptions<T>,
  ) {
    // RESP2: the reply shapes parsed below (and servers before Redis 6, which have no HELLO).
    const base: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 2, ...options.redis, protocol: 2 };
    // Each reader has its own connection: XREAD BLOCK holds it while it waits.
    this.redis = options.url ? new Redis(options.url, base) : new Redis(base);
    this.redis.on('error', () => undefined); // Surfaced through the failing command; ioredis reconnects.
  }

  async start(from: string | undefined): Promise<void> {
    try {
      await this.redis.connect();
      if (from !== undefined) this.lastId = from;
      else if (this.options.start === 'latest') {
        const last = (await this.redis.call('XREVRANGE', this.key, '+', '-', 'COUNT', '1')) as [string, string[]][];
        this.lastId = last[0]?.[0] ?? '0-0';
      }
    } catch (err) {
      throw new ConnectionError(`cannot read redis stream ${this.key}: ${(err as Error).message}`, { cause: err });
    }
  }

  async read(max: number, waitMs = 1000): Promise<ReadBatch<T>> {
    if (this.closed) throw new ClosedError(`the reader of redis stream ${this.key} is closed`);
    const count = Math.max(1, Math.floor(max));
    const block = Math.max(0, Math.floor(waitMs));
    let reply: XReadReply;
    try {
      // BLOCK 0 would wait forever: without a wait, do not block at all.
      const args = block > 0 ? ['COUNT', count, 'BLOCK', block] : ['COUNT', count];
      reply = (await this.redis.call('XREAD', ...args, 'STREAMS', this.key, this.lastId)) as XReadReply;
    } catch (err) {
      if (this.closed) return this.batch([], []);
      throw new ConnectionError(`reading redis stream ${this.key} failed: ${(err as Error).message}`, { cause: err });
    }
    const records: SourceRecord<T>[] = [];
    const bad: BadRecord[] = [];
    for (const [id, flat] of reply?.[0]?.[1] ?? []) {
      this.lastId = id;
      const fields: Record<string, string> = {};
      let bytes = id.length;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        fields[flat[i]!] = flat[i + 1]!;
        bytes += flat[i]!.length + flat[i + 1]!.length;
      }
      const where = `${this.key}@${id}`;
      let value: T;
      try {
        value = this.decode(fields, id);
      } catch (err) {
        bad.push({ raw: truncateRaw(JSON.stringify(fields)), reason: (err as Error).message, where });
        continue;
      }
      const eventTime = this.options.eventTime ? this.options.eventTime(value, id) : Number(id.split('-')[0]);
      records.push({ value, bytes, ...(eventTime === undefined ? {} : { eventTime }) });
    }
    return this.batch(records, bad);
  }

  private decode(fields: Record<string, string>, id: string): T {
    if (this.options.decode) return this.options.decode(fields, id);
    const field = this.options.field === undefined ? 'data' : this.options.field;
    if (field === null) return fields as T;
    const text = fields[field];
    if (text === undefined) throw new Error(`entry has no field "${field}"`);
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new Error(`field "${field}" is not JSON: ${(err as Error).message}`);
    }
  }

  private batch(records: SourceRecord<T>[], bad: BadRecord[]): ReadBatch<T> {
    return { records, bad, position: { id: this.lastId }, done: false };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.redis.disconnect(); // Also ends an XREAD BLOCK in flight.
  }
}
