/**
 * Exchanges: what joins two steps of a job spread over several workers (compute nodes). Before a keyed stage every
 * worker sends each record to the worker that owns its key's slot, so each key is handled in order by one worker;
 * control elements travel in band as they do in one process:
 *
 * - **records** go to one worker (the slot's owner; for a sink with one writer, worker 0);
 * - **watermarks**, **barriers** and the **end** go to every worker; ticks and marks stay on their worker.
 *
 * The receiving side ({@link ExchangeIn}) merges its inputs, one channel per sending worker, each in order:
 * - its watermark is the least of its live channels' (a channel that ended no longer holds it back);
 * - a barrier of epoch `e` blocks its channel until every live channel has delivered `e` (aligned checkpoints, as
 *   Flink's): then one barrier goes on, so everything before it belongs to `e` on every path. A barrier seen on any
 *   channel is reported (`onBarrier`) so this worker's source injects it too without waiting for its own timer;
 * - a final barrier (a stop) ends its channel once aligned; the merged barrier is final when every channel that
 *   delivered it stopped; if the last channels end with the end of their input while others stopped, what goes on is
 *   a final barrier of the next epoch, not an end — a stopped job's windows must not fire as if the input ended;
 * - the end goes on once every channel has ended.
 *
 * Backpressure: a send completes when the receiver has room for it (an aligning channel always has room, so
 * alignment cannot deadlock with a full channel), and a sender waits while any of its per-worker buffers is full.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '../errors/index.js';
import type { BarrierEl, Element, RecordEl } from './elements.js';
import type { Inlet, Outlet } from './job-handle.js';

/** Sends elements to worker `to` of this job's generation; resolves when that worker has taken them. */
export type ExchangeSend = (to: number, els: Element[]) => Promise<void>;

/**
 * Most elements and bytes (as the source measured its records) per send. One send is in flight per pair of workers,
 * and a receiver answers only between its own steps (its event loop's turn), so a send takes a round trip of a few
 * milliseconds: large sends are what lets one channel carry hundreds of thousands of records a second. The byte
 * bound keeps a send well under the wire's call size limit.
 */
const SEND_BATCH = 4096;
const SEND_BYTES = 1 << 20;

/**
 * A batch of elements as it crosses between workers: records by column (no field names repeated per record), the
 * control elements with their places in the sequence. Element times are per process (`performance.now()`): across
 * processes they travel as wall-clock times.
 */
export interface WireBatch {
  /** Elements in all. */
  n: number;
  /** The records' values, event times, read times (wall clock), sizes and splits, in order. */
  v: unknown[];
  ts: number[];
  ra: number[];
  by: number[];
  sp: number[];
  /** The other elements and their index in the sequence. */
  ctl: Array<[number, Element]>;
}

export function toWire(els: Element[]): WireBatch {
  const b: WireBatch = { n: els.length, v: [], ts: [], ra: [], by: [], sp: [], ctl: [] };
  const origin = performance.timeOrigin;
  els.forEach((el, i) => {
    if (el.t === 'r') {
      b.v.push(el.value);
      b.ts.push(el.ts);
      b.ra.push(el.readAt + origin);
      b.by.push(el.bytes);
      b.sp.push(el.split);
    } else b.ctl.push([i, 'readAt' in el ? { ...el, readAt: el.readAt + origin } : el]);
  });
  return b;
}

const CONTROL = new Set(['w', 'm', 'p', 'b', 'e']);

/** The elements of a batch another worker sent. @throws InvalidArgumentError if it is not a well-formed batch. */
export function fromWire(raw: unknown): Element[] {
  const b = raw as Partial<WireBatch> | null;
  const arrays = b && [b.v, b.ts, b.ra, b.by, b.sp];
  if (!b || typeof b.n !== 'number' || !Array.isArray(b.ctl) || !arrays!.every((a) => Array.isArray(a) && a.length === b.v!.length) || b.v!.length + b.ctl.length !== b.n)
    throw new InvalidArgumentError('an exchange batch must be { n, v, ts, ra, by, sp, ctl } with matching lengths');
  const origin = performance.timeOrigin;
  const out = new Array<Element>(b.n);
  for (const entry of b.ctl) {
    const [i, el] = Array.isArray(entry) ? entry : [];
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= b.n || typeof el !== 'object' || el === null || !CONTROL.has((el as Element).t))
      throw new InvalidArgumentError('an exchange batch holds a malformed control element');
    if ('readAt' in el) el.readAt -= origin;
    out[i] = el;
  }
  let r = 0;
  for (let i = 0; i < b.n; i++) {
    if (out[i] !== undefined) continue;
    out[i] = { t: 'r', value: b.v![r], ts: b.ts![r] as number, readAt: (b.ra![r] as number) - origin, bytes: b.by![r] as number, split: b.sp![r] as number };
    r++;
  }
  return out;
}

/** The sending side of an exchange on one worker: a buffer per receiving worker, one send in flight to each. */
export class ExchangeOut implements Inlet {
  private readonly buffers: Element[][];
  private readonly sending: boolean[];
  private closed = false;
  private failure: Error | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly workers: number,
    private readonly self: number,
    /** The worker a record goes to. */
    private readonly route: (el: RecordEl) => number,
    private readonly send: ExchangeSend,
    readonly capacity: number,
  ) {
    this.buffers = Array.from({ length: workers }, () => []);
    this.sending = new Array<boolean>(workers).fill(false);
  }

  get size(): number {
    let n = 0;
    for (const b of this.buffers) n += b.length;
    return n;
  }

  async put(el: Element): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.closed) return false;
    if (el.t === 'r') this.enqueue(this.route(el), el);
    else if (el.t === 'p' || el.t === 'm') this.enqueue(this.self, el);
    else for (let to = 0; to < this.workers; to++) this.enqueue(to, el);
    while (!this.closed && !this.failure && this.buffers.some((b) => b.length >= this.capacity)) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
    return !this.closed;
  }

  /** Resolves once everything put so far has been sent (or the exchange failed or closed). */
  async drained(): Promise<void> {
    while (!this.closed && !this.failure && (this.size > 0 || this.sending.some(Boolean))) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  private enqueue(to: number, el: Element): void {
    this.buffers[to]!.push(el);
    if (!this.sending[to]) void this.pump(to);
  }

  private async pump(to: number): Promise<void> {
    this.sending[to] = true;
    try {
      const buffer = this.buffers[to]!;
      while (buffer.length > 0 && !this.closed) {
        let n = 0;
        for (let bytes = 0; n < buffer.length && n < SEND_BATCH && bytes < SEND_BYTES; n++) {
          const el = buffer[n]!;
          bytes += el.t === 'r' ? el.bytes + 32 : 64;
        }
        const batch = buffer.splice(0, n);
        this.wake();
        await this.send(to, batch);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.sending[to] = false;
      this.wake();
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

class Channel {
  items: Element[] = [];
  head = 0;
  /** Ended by the end of its input or by a final barrier; `stopped` says which. */
  ended = false;
  stopped = false;
  blocked: BarrierEl | undefined;
  wm = -Infinity;

  get size(): number {
    return this.items.length - this.head;
  }

  next(): Element | undefined {
    if (this.head >= this.items.length) return undefined;
    const el = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return el;
  }
}

/** The receiving side of an exchange on one worker: merges one channel per sending worker (see the module comment). */
export class ExchangeIn implements Outlet {
  private readonly channels: Channel[];
  private ready: Element[] = [];
  private closed = false;
  private takers: Array<() => void> = [];
  private accepters: Array<() => void> = [];
  private emittedWm = -Infinity;
  private lastEpoch = 0;
  private finished = false;
  private turn = 0;

  constructor(
    workers: number,
    private readonly self: number,
    private readonly capacity: number,
    /** A barrier of `epoch` arrived on some channel. */
    private readonly onBarrier: (epoch: number) => void = () => undefined,
  ) {
    this.channels = Array.from({ length: workers }, () => new Channel());
  }

  get size(): number {
    return this.ready.length + this.channels.reduce((n, c) => n + c.size, 0);
  }

  /** Takes elements sent by worker `from`, resolving once there is room for more from it. */
  async accept(from: number, els: Element[]): Promise<void> {
    const ch = this.channels[from];
    if (!ch) throw new InvalidArgumentError(`no channel for worker ${from}`);
    if (this.closed) return;
    for (const el of els) {
      ch.items.push(el);
      // Reported on arrival, not when the barrier's turn comes: the source should not wait for a full queue to drain.
      if (el.t === 'b') this.onBarrier(el.epoch);
    }
    this.pump();
    while (!this.closed && ch.size >= this.capacity && !ch.blocked && !ch.ended) await new Promise<void>((r) => this.accepters.push(r));
  }

  async take(max: number): Promise<Element[]> {
    for (;;) {
      this.pump();
      if (this.ready.length > 0 || this.closed) break;
      await new Promise<void>((r) => this.takers.push(r));
    }
    // `ready` stays about `capacity` long (pump fills it only up to that), so taking from its front is cheap.
    const out = this.ready.length <= max ? this.ready : this.ready.splice(0, max);
    if (out === this.ready) this.ready = [];
    this.pump();
    return out;
  }

  close(): void {
    this.closed = true;
    for (const w of this.takers.splice(0)) w();
    for (const w of this.accepters.splice(0)) w();
  }

  /** Moves elements from the channels to `ready`, in turn, while there is room and a channel can go on. */
  private pump(): void {
    let moved = false;
    let progress = true;
    while (progress && this.ready.length < this.capacity && !this.finished) {
      progress = false;
      for (let k = 0; k < this.channels.length && this.ready.length < this.capacity; k++) {
        const i = (this.turn + k) % this.channels.length;
        const ch = this.channels[i]!;
        for (let n = 0; n < 64 && !ch.blocked && !ch.ended; n++) {
          const el = ch.next();
          if (!el) break;
          progress = moved = true;
          this.onElement(i, ch, el);
        }
      }
      this.turn = (this.turn + 1) % this.channels.length;
    }
    if (moved) {
      for (const w of this.takers.splice(0)) w();
      for (const w of this.accepters.splice(0)) w();
    }
  }

  private onElement(i: number, ch: Channel, el: Element): void {
    switch (el.t) {
      case 'w':
        if (el.wm > ch.wm) ch.wm = el.wm;
        this.emitWatermark(el.readAt);
        return;
      case 'b':
        ch.blocked = el;
        this.align();
        return;
      case 'e':
        ch.ended = true;
        this.emitWatermark(el.readAt);
        this.align();
        this.endIfAllEnded(el.readAt);
        return;
      default:
        // Records, and this worker's own ticks and marks.
        void i;
        this.ready.push(el);
    }
  }

  private emitWatermark(readAt: number): void {
    let wm = Infinity;
    let live = 0;
    for (const c of this.channels)
      if (!c.ended) {
        live++;
        if (c.wm < wm) wm = c.wm;
      }
    if (live > 0 && wm > this.emittedWm) {
      this.emittedWm = wm;
      this.ready.push({ t: 'w', wm, readAt });
    }
  }

  /** Passes a barrier on once every live channel has delivered it. */
  private align(): void {
    const blocked = this.channels.filter((c) => c.blocked);
    if (blocked.length === 0 || this.channels.some((c) => !c.ended && !c.blocked)) return;
    const epoch = blocked[0]!.blocked!.epoch;
    const final = blocked.every((c) => c.blocked!.final);
    const own = this.channels[this.self]!.blocked;
    // This worker's own barrier carries its positions and watermark state; without it (its source ended), none.
    const merged: BarrierEl = own ? { ...own, epoch, final } : { t: 'b', epoch, final };
    for (const c of blocked) {
      if (c.blocked!.final) c.ended = c.stopped = true;
      c.blocked = undefined;
    }
    this.lastEpoch = epoch;
    this.ready.push(merged);
    if (final) this.finished = true;
    else {
      // A channel that stopped no longer holds the watermark back.
      this.emitWatermark(performance.now());
      this.endIfAllEnded(performance.now());
    }
  }

  private endIfAllEnded(readAt: number): void {
    if (this.finished || !this.channels.every((c) => c.ended) || this.channels.some((c) => c.blocked)) return;
    this.finished = true;
    // Some inputs stopped, the rest ended: the job stopped (a final barrier), it did not reach the end of its input.
    if (this.channels.some((c) => c.stopped)) this.ready.push({ t: 'b', epoch: this.lastEpoch + 1, final: true });
    else this.ready.push({ t: 'e', readAt });
  }
}
