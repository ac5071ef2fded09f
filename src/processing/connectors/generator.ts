/**
 * The generator source, for tests and benchmarks: record `i` is `make(i, rng)` where `rng` is seeded from the
 * source's seed and `i` alone — so the same seed gives the same records whatever the splits, reads or restarts.
 * `count` bounds it (unbounded without), `rate` paces it (records per second per split), `eventTime` gives each
 * record an event time. With `splits: n`, split `k` produces the indices `i ≡ k (mod n)`; a position is the next
 * index of the split.
 *
 * @example
 * ```ts
 * import { pipeline, generator, collect } from 'shardflow';
 * const clicks = generator({
 *   count: 1_000, seed: 42, rate: 5_000,
 *   make: (i, rng) => ({ user: `u${rng.int(100)}`, page: rng.pick(['/', '/a', '/b']) }),
 *   eventTime: (i) => 1_700_000_000_000 + i * 10,
 * });
 * await pipeline('clicks').from(clicks).to(collect<{ user: string; page: string }>().sink).run(); // about 0.2 s at 5000/s
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '../../errors/index.js';
import type { Json, ReadBatch, Source, SourceReader, SourceRecord, SourceSplit } from './types.js';

/**
 * A small deterministic random number generator (mulberry32): what a {@link generator}'s `make` gets.
 *
 * @example
 * ```ts
 * import { rngFor, type Rng } from 'shardflow';
 * const rng: Rng = rngFor(1, 0);
 * [rng.next() < 1, rng.int(6) < 6, ['a', 'b'].includes(rng.pick(['a', 'b']))]; // [true, true, true]
 * ```
 */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  pick<V>(values: readonly V[]): V;
}

/**
 * The generator's random numbers for record `index` of a source seeded with `seed`.
 *
 * @example
 * ```ts
 * import { rngFor } from 'shardflow';
 * rngFor(42, 7).int(100) === rngFor(42, 7).int(100); // true
 * ```
 */
export function rngFor(seed: number, index: number): Rng {
  let a = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (values) => values[Math.floor(next() * values.length)]! };
}

/**
 * Options of {@link generator}.
 *
 * @example
 * ```ts
 * import { generator, type GeneratorOptions } from 'shardflow';
 * const options: GeneratorOptions<{ n: number }> = { make: (i) => ({ n: i }), count: 100, splits: 4, eventTime: (i) => i * 1_000 };
 * const source = generator(options); // split k holds the records i ≡ k (mod 4)
 * ```
 */
export interface GeneratorOptions<T> {
  make: (index: number, rng: Rng) => T;
  /** Records in all (bounded); unbounded without. */
  count?: number;
  seed?: number;
  /** Records per second per split; unpaced without. */
  rate?: number;
  eventTime?: (index: number, value: T) => number;
  /** Splits to offer (default 1). */
  splits?: number;
  /** For `bytes` triggers; default: the JSON length. */
  bytes?: (value: T) => number;
  name?: string;
}

/**
 * A deterministic source of generated records. See the module documentation.
 *
 * @example
 * ```ts
 * import { pipeline, generator, stdout } from 'shardflow';
 * await pipeline('n').from(generator({ count: 3, make: (i) => i })).to(stdout()).run(); // 0 1 2
 * ```
 */
export function generator<T>(options: GeneratorOptions<T>): Source<T> {
  const count = options.count ?? Infinity;
  const seed = options.seed ?? 1;
  const nSplits = options.splits ?? 1;
  if (!(count >= 0)) throw new InvalidArgumentError('generator count must be non-negative');
  if (!Number.isInteger(nSplits) || nSplits < 1) throw new InvalidArgumentError('generator splits must be a positive integer');
  if (options.rate !== undefined && !(options.rate > 0)) throw new InvalidArgumentError('generator rate must be positive');
  const bytes = options.bytes ?? ((v: T) => JSON.stringify(v)?.length ?? 0);
  return {
    name: options.name ?? `generator(seed=${seed})`,
    bounded: Number.isFinite(count),
    async splits(): Promise<SourceSplit[]> {
      return Array.from({ length: nSplits }, (_, k) => ({ id: `gen-${k}`, spec: k }));
    },
    async open(split: SourceSplit, from?: Json): Promise<SourceReader<T>> {
      const k = split.spec as number;
      let next = typeof from === 'number' ? from : k;
      const openedAt = Date.now();
      let produced = 0;
      let closed = false;
      const allowed = () => (options.rate === undefined ? Infinity : Math.floor(((Date.now() - openedAt) * options.rate) / 1000) + 1 - produced);
      return {
        async read(max: number, waitMs = 0): Promise<ReadBatch<T>> {
          let room = allowed();
          if (room <= 0 && waitMs > 0 && !closed) {
            await sleep(Math.min(waitMs, Math.ceil(1000 / options.rate!)));
            room = allowed();
          }
          const records: SourceRecord<T>[] = [];
          while (records.length < Math.min(max, room) && next < count) {
            const value = options.make(next, rngFor(seed, next));
            const r: SourceRecord<T> = { value, bytes: bytes(value) };
            if (options.eventTime) r.eventTime = options.eventTime(next, value);
            records.push(r);
            next += nSplits;
          }
          produced += records.length;
          // Waiting: the rest of the split unpaced; paced, what the schedule has made due and not yet read.
          const rest = next >= count ? 0 : Number.isFinite(count) ? Math.ceil((count - next) / nSplits) : undefined;
          const pending = rest === undefined || options.rate === undefined ? rest : Math.min(rest, Math.max(0, allowed()));
          return { records, bad: [], position: next, done: next >= count, ...(pending === undefined ? {} : { pending }) };
        },
        async close() {
          closed = true;
        },
      };
    },
  };
}
