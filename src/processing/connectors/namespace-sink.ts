/**
 * A sink into a shardflow namespace: materialised results, readable with the client (`get`, `scan`) and
 * `shardflow kv get/scan --ns NAME`. Each record is stored under a key taken from it, so writing it again (a replay
 * after a failure) overwrites the same key with the same value: **idempotent by key**. `write` resolves once the
 * storage nodes acknowledged the batch (durable as the nodes' durability setting says). A record whose key or value
 * cannot be had or stored (the key function throws, a key too long) is refused ({@link BadRecordsError}), the rest stored.
 */
import type { ShardflowClient } from '../../client/index.js';
import { ClosedError, ConfigError, InvalidArgumentError, TooLargeError } from '../../errors/index.js';
import { checkKey, checkValue } from '../../keyspace/limits.js';
import type { NamespaceOptions } from '../../keyspace/index.js';
import { BadRecordsError, eachRecord } from './bad-records.js';
import type { Sink, SinkWriter } from './types.js';

/**
 * Options of {@link namespaceSink}: where to store (`namespace`, and a `client` or a cluster `dir`), under which key,
 * and what.
 *
 * @example
 * ```ts
 * import { connect, pipeline, fromArray, namespaceSink, type NamespaceSinkOptions } from 'shardflow';
 * const client = await connect({ dir: '.shardflow' });
 * const options: NamespaceSinkOptions<{ user: string; count: number }> = {
 *   namespace: 'click-counts',
 *   key: (r) => `user:${r.user}`,
 *   value: (r) => r.count,
 *   client, // shared: the sink does not close it
 *   create: { scheme: 'range' },
 *   batchSize: 200,
 * };
 * await pipeline('counts').from(fromArray([{ user: 'u1', count: 3 }])).to(namespaceSink(options)).run();
 * await client.get('click-counts', 'user:u1'); // 3
 * await client.close();
 * ```
 */
export interface NamespaceSinkOptions<T> {
  namespace: string;
  /** The record's key: a field name, or a function. */
  key: string | ((record: T) => string);
  /** What to store (default the record itself). */
  value?: (record: T) => unknown;
  /** A client to share (not closed by the sink); or `dir`, a cluster directory, for one client per writer. */
  client?: ShardflowClient;
  dir?: string;
  /** Creates the namespace when missing (default `{ scheme: 'hash' }`); `false` to require it. */
  create?: NamespaceOptions | false;
  /** Records per storage batch (default 500). */
  batchSize?: number;
}

/**
 * A namespace sink.
 *
 * @example
 * ```ts
 * import { namespaceSink } from 'shardflow';
 * const counts = namespaceSink<{ user: string; count: number }>({ namespace: 'clicks', key: 'user', dir: '.shardflow' });
 * const writer = await counts.open({ job: 'clicks', worker: 'w0' });
 * await writer.write([{ user: 'u1', count: 3 }]);
 * await writer.close();
 * // shardflow kv get u1 --ns clicks   →   {"user":"u1","count":3}
 * ```
 */
export function namespaceSink<T>(options: NamespaceSinkOptions<T>): Sink<T> {
  if (!options.client && options.dir === undefined) throw new ConfigError('namespaceSink needs a client or a cluster dir');
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new ConfigError(`batchSize must be an integer from 1 to 10000, not ${options.batchSize}`);
  }
  const keyOf =
    typeof options.key === 'function'
      ? options.key
      : (r: T) => {
          const k = (r as Record<string, unknown> | null)?.[options.key as string];
          if (typeof k === 'string') return k;
          if (typeof k === 'number' && Number.isFinite(k)) return String(k);
          throw new InvalidArgumentError(`record has no string key in field "${options.key as string}"`, {
            details: { record: JSON.stringify(r)?.slice(0, 200) },
          });
        };
  return {
    name: `namespace(${options.namespace})`,
    idempotent: true,
    manyWriters: true,
    async open() {
      let client = options.client;
      const owned = !client;
      if (!client) {
        const { connect } = await import('../../client/index.js');
        client = await connect({ dir: options.dir, name: 'namespace-sink' });
      }
      try {
        if (options.create !== false && !client.namespaces().includes(options.namespace)) {
          await client.createNamespace(options.namespace, options.create ?? { scheme: 'hash' });
        }
      } catch (err) {
        if (owned) await client.close().catch(() => undefined);
        throw err;
      }
      return new NamespaceWriter<T>(client, owned, options.namespace, keyOf, options.value, batchSize);
    },
  };
}

class NamespaceWriter<T> implements SinkWriter<T> {
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly client: ShardflowClient,
    private readonly ownsClient: boolean,
    private readonly namespace: string,
    private readonly keyOf: (r: T) => string,
    private readonly valueOf: ((r: T) => unknown) | undefined,
    private readonly batchSize: number,
  ) {}

  write(records: T[]): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`the writer of namespace ${this.namespace} is closed`));
    const work = this.put(records);
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  private async put(records: T[]): Promise<void> {
    const { ok, rejected } = eachRecord(records, 'key or value failed', (r) => ({
      op: 'put' as const,
      key: this.keyOf(r),
      value: this.valueOf ? this.valueOf(r) : r,
    }));
    // One batch after another: a key written twice in one call ends with its later value.
    for (let i = 0; i < ok.length; i += this.batchSize) {
      const batch = ok.slice(i, i + this.batchSize);
      try {
        await this.client.batch(this.namespace, batch.map((o) => o.value));
      } catch (err) {
        // The client checks every op before sending any: a bad key or value there means nothing was stored.
        if (!(err instanceof InvalidArgumentError || err instanceof TooLargeError)) throw err;
        const checked = eachRecord(batch, 'refused by the store', (o) => {
          checkKey(o.value.key);
          checkValue(o.value.value);
          return o;
        });
        if (checked.rejected.length === 0) throw err;
        for (const r of checked.rejected) rejected.push({ index: batch[r.index]!.index, reason: r.reason });
        if (checked.ok.length > 0) await this.client.batch(this.namespace, checked.ok.map((o) => o.value.value));
      }
    }
    if (rejected.length > 0) throw new BadRecordsError(rejected, `namespace(${this.namespace})`);
  }

  /** Every `write` resolves only once stored, so flushing is waiting for those still going. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      await this.flush();
      if (this.ownsClient) await this.client.close();
    })();
    return this.closing;
  }
}
