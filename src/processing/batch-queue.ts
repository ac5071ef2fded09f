/**
 * What joins two steps of a batch-mode job: a queue that holds what arrives as one group and lets the next step
 * have it only when the group's trigger fires — interval (from the group's first record), count or bytes, whichever
 * first — or the input ends or stops. A group of control elements alone (ticks, marks, watermarks, barriers of an
 * idle input) goes on at once: it costs nothing and a checkpoint should not wait for records that do not come.
 *
 * A batch-mode job puts one in front of its first step and in front of every later keyed stage, so each step of a
 * pipeline collects its own input: a result of one step waits for the next step's trigger, and the waits add up
 * with the depth of the pipeline, as they do when batch jobs are chained. The order of elements is never changed,
 * so a bounded input gives the same results as in stream mode.
 */
import type { Element } from './elements.js';
import type { Inlet, Outlet } from './job-handle.js';
import { BatchTrigger, type TriggerSpec } from './triggers.js';

/** A group released: why, and how many records it held. */
export type BatchReleased = (reason: 'count' | 'bytes' | 'interval' | 'end' | 'stop' | 'control', records: number) => void;

export class BatchQueue implements Inlet, Outlet {
  private group: Element[] = [];
  private ready: Element[] = [];
  private head = 0;
  private readonly trigger: BatchTrigger;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private takers: Array<() => void> = [];
  private putters: Array<() => void> = [];

  constructor(
    spec: TriggerSpec,
    /** Released elements waiting for the next step before `put` waits (backpressure). */
    readonly capacity: number,
    private readonly onRelease: BatchReleased = () => undefined,
    clock: () => number = Date.now,
  ) {
    this.trigger = new BatchTrigger(spec, clock);
  }

  get size(): number {
    return this.group.length + this.readyCount;
  }

  async put(el: Element): Promise<boolean> {
    while (!this.closed && this.readyCount >= this.capacity) await new Promise<void>((r) => this.putters.push(r));
    if (this.closed) return false;
    this.group.push(el);
    if (el.t === 'r') {
      const first = this.trigger.pending === 0;
      this.trigger.add(el.bytes);
      const fired = this.trigger.fired();
      if (fired) this.release(fired);
      else if (first && Number.isFinite(this.trigger.msLeft())) {
        // Not unref'd: a group waiting for its interval is work still to do.
        this.timer = setTimeout(() => this.release('interval'), Math.max(0, this.trigger.msLeft()));
      }
    } else if (el.t === 'e') this.release('end');
    else if (el.t === 'b' && el.final) this.release('stop');
    else if (this.trigger.pending === 0) this.release('control');
    return true;
  }

  async take(max: number): Promise<Element[]> {
    while (!this.closed && this.readyCount === 0) await new Promise<void>((r) => this.takers.push(r));
    // A released group can be large: taken from a moving head, not by copying what is left on every take.
    const end = Math.min(this.ready.length, this.head + max);
    const out = this.ready.slice(this.head, end);
    this.head = end;
    if (this.head === this.ready.length) {
      this.ready = [];
      this.head = 0;
    }
    if (this.readyCount < this.capacity) for (const w of this.putters.splice(0)) w();
    return out;
  }

  private get readyCount(): number {
    return this.ready.length - this.head;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.takers.splice(0)) w();
    for (const w of this.putters.splice(0)) w();
  }

  private release(reason: Parameters<BatchReleased>[0]): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const records = this.trigger.pending;
    this.trigger.reset();
    if (this.group.length === 0) return;
    for (const el of this.group) this.ready.push(el);
    this.group = [];
    this.onRelease(reason, records);
    for (const w of this.takers.splice(0)) w();
  }
}

/**
 * Another outlet followed by a batch-mode group: elements move from the one into the other as they arrive, in order,
 * and the step takes released groups. A worker of a job on the cluster puts one behind an exchange, so a keyed stage
 * fed by every worker still waits for its own trigger. Closing it closes both.
 */
export class GroupedOutlet implements Outlet {
  constructor(
    private readonly input: Outlet,
    private readonly group: BatchQueue,
    /** Elements moved per take from `input`. */
    batch: number,
  ) {
    void this.pump(batch);
  }

  get size(): number {
    return this.input.size + this.group.size;
  }

  take(max: number): Promise<Element[]> {
    return this.group.take(max);
  }

  close(): void {
    this.input.close();
    this.group.close();
  }

  private async pump(batch: number): Promise<void> {
    for (;;) {
      const els = await this.input.take(batch);
      if (els.length === 0) return; // closed
      for (const el of els) if (!(await this.group.put(el))) return;
    }
  }
}
