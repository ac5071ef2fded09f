/**
 * Window assigners: which windows a record belongs to. Tumbling windows split time into equal, non-overlapping
 * spans; sliding windows overlap (a record is in `size / slide` of them); session windows close after a gap with no
 * records for the key and merge when a record bridges two; the global window holds everything and fires at the end
 * of input. Each (but global) works on event time — the record's timestamp, fired by the watermark — or on
 * processing time — the clock when the record reaches the window, fired by the clock.
 *
 * A window is `[start, end)`; its results carry the timestamp `end - 1`, so a later event-time window stage sees
 * them as on time.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, tumbling, session, count, collect, type WindowResult } from 'shardflow';
 * const clicks = fromArray([{ user: 'a', at: 0 }, { user: 'a', at: 4_000 }, { user: 'a', at: 70_000 }], { eventTime: (c) => c.at });
 * const perTenSeconds = collect<WindowResult<string, number>>();
 * const visits = collect<WindowResult<string, number>>();
 * await pipeline('clicks').from(clicks).keyBy((c) => c.user).window(tumbling('10s')).aggregate(count()).to(perTenSeconds.sink).run();
 * await pipeline('visits').from(clicks).keyBy((c) => c.user).window(session('30s')).aggregate(count()).to(visits.sink).run();
 * perTenSeconds.values.map((r) => [r.window.start, r.value]); // [[0, 2], [70000, 1]]
 * visits.values.map((r) => [r.window.start, r.value]);        // [[0, 2], [70000, 1]]
 * ```
 */
import { InvalidArgumentError } from '../errors/index.js';
import { parseDuration, type Duration } from './units.js';

/**
 * Which clock places records in windows and fires them.
 *
 * @example
 * ```ts
 * import { tumbling, type TimeDomain } from 'shardflow';
 * const time: TimeDomain = 'processing';
 * tumbling('1m', { time }); // fired by the wall clock, not by watermarks
 * ```
 */
export type TimeDomain = 'event' | 'processing';

/**
 * A window's span, `[start, end)` in ms. The global window is `[-Infinity, Infinity)`.
 *
 * @example
 * ```ts
 * import { assignWindows, tumbling, type Window } from 'shardflow';
 * const [w]: Window[] = assignWindows(tumbling('1m'), 90_000);
 * w; // { start: 60000, end: 120000 }
 * ```
 */
export interface Window {
  start: number;
  end: number;
}

/**
 * How a window stage cuts time, as {@link tumbling}, {@link sliding}, {@link session} and {@link global} make it
 * (durations in ms); what {@link KeyedStream.window} takes.
 *
 * @example
 * ```ts
 * import { sliding, type WindowSpec } from 'shardflow';
 * const spec: WindowSpec = sliding('1m', '10s');
 * spec; // { kind: 'sliding', sizeMs: 60000, slideMs: 10000, time: 'event' }
 * ```
 */
export type WindowSpec =
  | { kind: 'tumbling'; sizeMs: number; offsetMs: number; time: TimeDomain }
  | { kind: 'sliding'; sizeMs: number; slideMs: number; time: TimeDomain }
  | { kind: 'session'; gapMs: number; time: TimeDomain }
  | { kind: 'global'; time: 'event' };

/**
 * Options of the window assigners.
 *
 * @example
 * ```ts
 * import { session, type WindowOptions } from 'shardflow';
 * const byClock: WindowOptions = { time: 'processing' };
 * session('30s', byClock); // { kind: 'session', gapMs: 30000, time: 'processing' }
 * ```
 */
export interface WindowOptions {
  /** `event` (default): the record's timestamp, fired by watermarks. `processing`: the wall clock. */
  time?: TimeDomain;
}

function positive(what: string, d: Duration): number {
  const ms = parseDuration(d, what);
  if (!(ms > 0)) throw new InvalidArgumentError(`${what} must be more than zero`);
  return ms;
}

/**
 * Fixed-size, non-overlapping windows aligned to the epoch (plus `offset`).
 *
 * @example
 * ```ts
 * import { tumbling, assignWindows } from 'shardflow';
 * tumbling('1m');                                           // [0, 60000), [60000, 120000), ...
 * assignWindows(tumbling('1m'), 90_000);                    // [{ start: 60000, end: 120000 }]
 * assignWindows(tumbling('1m', { offset: '15s' }), 90_000); // [{ start: 75000, end: 135000 }]
 * tumbling(5000, { time: 'processing' });                   // by the clock
 * ```
 */
export function tumbling(size: Duration, options: WindowOptions & { offset?: Duration } = {}): WindowSpec {
  const sizeMs = positive('window size', size);
  const offsetMs = options.offset === undefined ? 0 : parseDuration(options.offset, 'window offset') % sizeMs;
  return { kind: 'tumbling', sizeMs, offsetMs, time: options.time ?? 'event' };
}

/**
 * Windows of `size` starting every `slide`; a record belongs to every window that covers it.
 *
 * @example
 * ```ts
 * import { sliding, assignWindows } from 'shardflow';
 * assignWindows(sliding('10s', '5s'), 7_000); // [{ start: 0, end: 10000 }, { start: 5000, end: 15000 }]
 * ```
 */
export function sliding(size: Duration, slide: Duration, options: WindowOptions = {}): WindowSpec {
  const sizeMs = positive('window size', size);
  const slideMs = positive('window slide', slide);
  if (slideMs > sizeMs) throw new InvalidArgumentError('window slide must not exceed its size');
  return { kind: 'sliding', sizeMs, slideMs, time: options.time ?? 'event' };
}

/**
 * Per-key activity sessions: a session lasts until `gap` passes without a record for its key.
 *
 * @example
 * ```ts
 * import { session, assignWindows } from 'shardflow';
 * assignWindows(session('30s'), 10_000); // [{ start: 10000, end: 40000 }], merged with the key's overlapping ones
 * // so records at 0s, 10s, 50s make the sessions [0, 40s) and [50s, 80s)
 * ```
 */
export function session(gap: Duration, options: WindowOptions = {}): WindowSpec {
  return { kind: 'session', gapMs: positive('session gap', gap), time: options.time ?? 'event' };
}

/**
 * One window per key holding every record; it fires when the input ends (a bounded source), never on an unbounded
 * one. What a word count over files uses.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, global, count, collect, type WindowResult } from 'shardflow';
 * const out = collect<WindowResult<string, number>>();
 * await pipeline('wc')
 *   .from(fromArray(['to be or', 'not to be']))
 *   .flatMap((line) => line.split(' '))
 *   .keyBy((w) => w)
 *   .window(global())
 *   .aggregate(count())
 *   .to(out.sink)
 *   .run();
 * out.values.map((r) => `${r.key}=${r.value}`); // ['be=2', 'not=1', 'or=1', 'to=2']: at the end of input, in key order
 * ```
 */
export function global(): WindowSpec {
  return { kind: 'global', time: 'event' };
}

/**
 * The windows a record at `time` belongs to, oldest first (for a session, the record's own window before merging).
 *
 * @example
 * ```ts
 * import { assignWindows, tumbling, sliding, global } from 'shardflow';
 * assignWindows(tumbling('10s'), 12_345);      // [{ start: 10000, end: 20000 }]
 * assignWindows(sliding('10s', '5s'), 12_345); // [{ start: 5000, end: 15000 }, { start: 10000, end: 20000 }]
 * assignWindows(global(), 12_345);             // [{ start: -Infinity, end: Infinity }]
 * ```
 */
export function assignWindows(spec: WindowSpec, time: number): Window[] {
  switch (spec.kind) {
    case 'tumbling': {
      const start = time - mod(time - spec.offsetMs, spec.sizeMs);
      return [{ start, end: start + spec.sizeMs }];
    }
    case 'sliding': {
      const out: Window[] = [];
      const last = time - mod(time, spec.slideMs);
      for (let start = last; start > time - spec.sizeMs; start -= spec.slideMs)
        out.unshift({ start, end: start + spec.sizeMs });
      return out;
    }
    case 'session':
      return [{ start: time, end: time + spec.gapMs }];
    case 'global':
      return [{ start: -Infinity, end: Infinity }];
  }
}

/** The last timestamp inside a window: when event time reaches it, the window is complete. */
export function maxTimestamp(w: Window): number {
  return w.end === Infinity ? Infinity : w.end - 1;
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}
