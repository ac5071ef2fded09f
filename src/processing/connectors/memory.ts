/**
 * In-memory connectors for tests, examples and small jobs: {@link fromArray} reads a list, {@link collect} keeps what
 * a job writes.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<number>();
 * await pipeline('double').from(fromArray([1, 2, 3])).map((n) => n * 2).to(out.sink).run();
 * out.values; // [2, 4, 6]
 * ```
 */
import { ClosedError } from '../../errors/index.js';
import type { Json, ReadBatch, Sink, SinkWriter, Source, SourceReader, SourceRecord } from './types.js';

/**
 * A bounded source over `values`; `eventTime` gives each an event time. Split `k` of `splits` holds every
 * `splits`-th value from `k`.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<number>();
 * const source = fromArray([{ at: 5 }, { at: 1 }], { eventTime: (v) => v.at, splits: 2 });
 * await pipeline('t').from(source).map((v) => v.at).to(out.sink).run({ parallelism: 2 });
 * out.values.sort(); // [1, 5]: one record from each split
 * ```
 */
export function fromArray<T>(values: readonly T[], options: { eventTime?: (value: T, index: number) => number; splits?: number } = {}): Source<T> {
  const n = options.splits ?? 1;
  return {
    name: `array(${values.length})`,
    bounded: true,
    async splits() {
      return Array.from({ length: n }, (_, k) => ({ id: `array-${k}`, spec: k }));
    },
    async open(split, from?: Json): Promise<SourceReader<T>> {
      let i = typeof from === 'number' ? from : (split.spec as number);
      return {
        async read(max: number): Promise<ReadBatch<T>> {
          const records: SourceRecord<T>[] = [];
          for (; records.length < max && i < values.length; i += n) {
            const value = values[i]!;
            const r: SourceRecord<T> = { value, bytes: JSON.stringify(value)?.length ?? 0 };
            if (options.eventTime) r.eventTime = options.eventTime(value, i);
            records.push(r);
          }
          return { records, bad: [], position: i, done: i >= values.length };
        },
        async close() {},
      };
    },
  };
}

/**
 * A sink that keeps every record written in `values`, in order.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect } from 'shardflow';
 * const out = collect<string>();
 * await pipeline('t').from(fromArray(['a'])).to(out.sink).run();
 * out.values; // ['a']
 * ```
 */
export function collect<T>(): { sink: Sink<T>; values: T[] } {
  const values: T[] = [];
  const sink: Sink<T> = {
    name: 'collect',
    idempotent: false,
    manyWriters: true,
    async open(): Promise<SinkWriter<T>> {
      let closed = false;
      return {
        async write(records) {
          if (closed) throw new ClosedError('the collect writer is closed');
          values.push(...records);
        },
        async flush() {},
        async close() {
          closed = true;
        },
      };
    },
  };
  return { sink, values };
}
