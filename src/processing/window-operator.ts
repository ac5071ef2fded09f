/**
 * The window operator of a keyed stage. Per key it keeps the open windows and their accumulators in state (`w`),
 * and sets a timer at each window's last timestamp (fire) and, with allowed lateness, one at last timestamp +
 * lateness (drop the window). Flink's semantics:
 *
 * - a record is late for a window once `maxTimestamp(window) + allowedLateness <= watermark`; late for all of its
 *   windows, it goes to the late output (or is counted and dropped);
 * - a record for a window that already fired but is within allowed lateness updates it and the window fires again;
 * - a record that opens a window already complete (within allowed lateness) fires it at once, and only then — no
 *   fire timer is set behind the watermark; later records within the lateness fire it again, once each;
 * - session windows start as `[t, t + gap)` and merge with every window of the key they overlap.
 *
 * Results are `{ key, window, value }` with timestamp `end - 1`.
 */
import type { Json } from './connectors/types.js';
import type { RecordEl } from './elements.js';
import type { KeyedOperator, KeyScope } from './keyed-stage.js';
import type { FiredTimer, KeyedOperatorSpec } from './plan.js';
import { assignWindows, maxTimestamp, type Window } from './windows.js';

interface OpenWindow {
  start: number;
  end: number;
  acc: Json;
}

const STATE = 'w';

export class WindowOperator implements KeyedOperator {
  constructor(private readonly spec: KeyedOperatorSpec & { kind: 'window' }) {}

  async onRecord(value: unknown, record: RecordEl, scope: KeyScope): Promise<void> {
    const { window: w, aggregator: agg } = this.spec;
    const time = w.time === 'event' ? record.ts : scope.now();
    const open = ((await scope.getState(STATE)) as OpenWindow[] | undefined) ?? [];
    const fireNow: OpenWindow[] = [];
    let placed = false;
    if (w.kind === 'session') {
      const fresh = assignWindows(w, time)[0]!;
      if (!this.isLate(fresh, scope)) {
        placed = true;
        let merged: OpenWindow = { start: fresh.start, end: fresh.end, acc: agg.add(agg.create(), value) as Json };
        for (let i = open.length - 1; i >= 0; i--) {
          const x = open[i]!;
          if (x.start < merged.end && merged.start < x.end) {
            merged = { start: Math.min(x.start, merged.start), end: Math.max(x.end, merged.end), acc: agg.merge!(x.acc, merged.acc) as Json };
            open.splice(i, 1);
          }
        }
        open.push(merged);
        // Timers of the windows merged away stay set; they find no window ending there and do nothing.
        this.setTimers(merged, scope);
        if (w.time === 'event' && maxTimestamp(merged) <= scope.watermark) fireNow.push(merged);
      }
    } else {
      for (const win of assignWindows(w, time)) {
        if (this.isLate(win, scope)) continue;
        placed = true;
        let x = open.find((o) => o.start === win.start && o.end === win.end);
        if (!x) {
          open.push((x = { start: win.start, end: win.end, acc: agg.create() as Json }));
          this.setTimers(x, scope);
        }
        x.acc = agg.add(x.acc, value) as Json;
        if (w.time === 'event' && maxTimestamp(x) <= scope.watermark) fireNow.push(x);
      }
    }
    if (!placed) {
      scope.late(value, time);
      return;
    }
    scope.putState(STATE, open as unknown as Json);
    for (const x of fireNow) this.emit(x, scope);
  }

  async onTimer(timer: FiredTimer, scope: KeyScope): Promise<void> {
    const open = ((await scope.getState(STATE)) as OpenWindow[] | undefined) ?? [];
    const lateness = this.spec.window.time === 'event' ? this.spec.allowedLatenessMs : 0;
    const keep: OpenWindow[] = [];
    for (const x of open) {
      const last = maxTimestamp(x);
      if (timer.time === last) this.emit(x, scope);
      if (timer.time >= last + lateness) continue;
      keep.push(x);
    }
    if (keep.length === open.length && !open.some((x) => maxTimestamp(x) === timer.time)) return;
    if (keep.length === 0) scope.deleteState(STATE);
    else scope.putState(STATE, keep as unknown as Json);
  }

  private isLate(win: Window, scope: KeyScope): boolean {
    return this.spec.window.time === 'event' && maxTimestamp(win) + this.spec.allowedLatenessMs <= scope.watermark;
  }

  /**
   * The fire timer at the window's last timestamp, and with allowed lateness the cleanup timer at last + lateness.
   * A window that opens (or merges) with its last timestamp already at or behind the watermark fires on arrival
   * instead: a fire timer there would be due at the next watermark and fire it a second time. Its cleanup timer is
   * still ahead of the watermark (else the record was late) and drops it once the lateness has passed.
   */
  private setTimers(x: Window, scope: KeyScope): void {
    const domain = this.spec.window.time;
    const last = maxTimestamp(x);
    if (domain !== 'event' || last > scope.watermark) scope.setTimer(domain, last);
    if (domain === 'event' && this.spec.allowedLatenessMs > 0) scope.setTimer('event', last + this.spec.allowedLatenessMs);
  }

  private emit(x: OpenWindow, scope: KeyScope): void {
    const agg = this.spec.aggregator;
    const value = agg.result ? agg.result(x.acc as never) : x.acc;
    scope.emit({ key: scope.key, window: { start: x.start, end: x.end }, value }, Math.min(maxTimestamp(x), Number.MAX_SAFE_INTEGER));
  }
}
