/**
 * What flows between the steps of a running pipeline: records, and the control elements that travel in order with
 * them. Keeping control in band (as Flink does) is what makes results independent of how records are grouped: a
 * step sees the same sequence of records, watermarks and barriers in stream and in batch mode, only at other times.
 */
import type { Json } from './connectors/types.js';

/** A record with what the engine knows about it. */
export interface RecordEl {
  t: 'r';
  value: unknown;
  /** Event time (ms): the source's, the pipeline's timestamp function's, or a window result's `end - 1`. */
  ts: number;
  /** performance.now() when the source read it (for end-to-end latency); results inherit their trigger's. */
  readAt: number;
  bytes: number;
  /** Index of the split it came from (watermarks are kept per split). */
  split: number;
}

/** Event time has reached `wm`: no record with a timestamp at or below it is expected any more. */
export interface WatermarkEl {
  t: 'w';
  wm: number;
  readAt: number;
}

/** The end of one source read of split `split`: the watermark generator may advance here. */
export interface MarkEl {
  t: 'm';
  split: number;
  done: boolean;
  readAt: number;
}

/** Processing time has reached `now` (fires processing-time windows and timers). */
export interface TickEl {
  t: 'p';
  now: number;
}

/** Where every split stood when a checkpoint barrier was injected. */
export interface SplitPosition {
  position: Json;
  done: boolean;
}

/** A checkpoint barrier: everything before it belongs to `epoch`, everything after to the next. */
export interface BarrierEl {
  t: 'b';
  epoch: number;
  /** Absent on a barrier an exchange passes on after this process's source ended (the positions are final then). */
  positions?: Record<string, SplitPosition>;
  /** Filled in by the watermark generator on the way: its per-split state, restored with the positions. */
  watermarks?: Json;
  /** A final barrier (stop) is not followed by records. */
  final: boolean;
}

/** No more input (bounded sources): event time and processing time go to the end, so every window fires. */
export interface EndEl {
  t: 'e';
  readAt: number;
}

export type Element = RecordEl | WatermarkEl | MarkEl | TickEl | BarrierEl | EndEl;
