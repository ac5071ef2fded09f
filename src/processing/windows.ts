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
 * pipeline('clicks').from(source).keyBy((c) => c.user).window(tumbling('10s')).aggregate(count());
 * pipeline('visits').from(source).keyBy((v) => v.user).window(session('30m')).aggregate(count());
 * ```
 */
import { InvalidArgumentError } from '../errors/index.js';
import { parseDuration, type Duration } from './units.js';

/** Which clock places records in windows and fires them. */
export type TimeDomain = 'event' | 'processing';

/** A window's span, `[start, end)` in ms. The global window is `[-Infinity, Infinity)`. */
export interface Window {
  start: number;
  end: number;
}

export type WindowSpec =
  | { kind: 'tumbling'; sizeMs: number; offsetMs: number; time: TimeDomain }
  | { kind: 'sliding'; sizeMs: number; slideMs: number; time: TimeDomain }
  | { kind: 'session'; gapMs: number; time: TimeDomain }
  | { kind: 'global'; time: 'event' };

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
 * tumbling('1m');                          // [0, 60000), [60000, 120000), ...
 * tumbling(5000, { time: 'processing' });  // by the clock
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
 * sliding('10s', '5s'); // a record at t=7s is in [0, 10s) and [5s, 15s)
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
 * session('30s'); // records at 0s, 10s, 50s → sessions [0, 40s) and [50s, 80s)
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
 * pipeline('wc').from(textLines('*.txt')).flatMap(words).keyBy((w) => w).window(global()).aggregate(count());
 * ```
 */
export function global(): WindowSpec {
  return { kind: 'global', time: 'event' };
}

/** The windows a record at `time` belongs to, oldest first. */
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
