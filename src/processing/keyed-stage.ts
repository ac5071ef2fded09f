/**
 * Runs a keyed stage: routes each record to its key (slot = `keySlot(String(key))`), gives the operator — a window
 * or a user process function — that key's state and timers, and fires timers when the watermark (event time) or a
 * tick (processing time) passes them. Elements are handled one at a time, in order, so each key sees its records in
 * order and no two of its records at once — what a distributed runner must keep per slot.
 *
 * State goes through the job's {@link JobState} under this stage's id, tagged with the current checkpoint epoch: the
 * epoch moves on when the barrier passes this stage. Each key's timers are state too (so a restart gets them back);
 * the heap that orders them is rebuilt from state by {@link KeyedExec.restore}.
 */
import { keySlot } from '../partitioning/index.js';
import type { Json } from './connectors/types.js';
import type { Element, RecordEl } from './elements.js';
import type { StageMetrics } from './metrics.js';
import { reasonOf, type SideOutputs } from './outputs.js';
import type { FiredTimer, Key, KeyedContext, KeyedStage, MapState, Timers, ValueState } from './plan.js';
import type { JobState } from './state.js';
import { TimerQueue, type TimeDomainName } from './timers.js';
import { WindowOperator } from './window-operator.js';

const TIMERS = '\u0001timers\u0000';

/** What an operator gets for one key: state, timers, output. */
export interface KeyScope<U = unknown> extends KeyedContext<Key, U> {
  readonly keyStr: string;
  readonly slot: number;
  getState(name: string): Promise<Json | undefined>;
  putState(name: string, value: Json): void;
  deleteState(name: string): void;
  setTimer(domain: TimeDomainName, time: number): void;
  /** Sends a record too late for its windows to the late output (if any). */
  late(value: unknown, timestamp: number): void;
}

export interface KeyedOperator {
  onRecord(value: unknown, record: RecordEl, scope: KeyScope): Promise<void>;
  onTimer(timer: FiredTimer, scope: KeyScope): Promise<void>;
}

class ProcessOperator implements KeyedOperator {
  constructor(private readonly handler: KeyedStage['operator'] & { kind: 'process' }) {}

  async onRecord(value: unknown, _record: RecordEl, scope: KeyScope): Promise<void> {
    await this.handler.handler.onRecord(value, scope);
  }

  async onTimer(timer: FiredTimer, scope: KeyScope): Promise<void> {
    await this.handler.handler.onTimer?.(timer, scope);
  }
}

export class KeyedExec {
  private readonly timers = new TimerQueue();
  /** Each key's pending timers, as persisted: keyStr → { key, slot, list of [time, domain] }. */
  private readonly timersByKey = new Map<string, { key: Key; slot: number; list: Array<[number, TimeDomainName]> }>();
  private readonly operator: KeyedOperator;
  private wm = -Infinity;
  private ending = false;
  private epoch: number;

  constructor(
    private readonly stage: KeyedStage,
    private readonly state: JobState,
    private readonly metrics: StageMetrics,
    private readonly outputs: SideOutputs,
    readonly clock: () => number,
    private readonly onLate: () => void,
    /** Whether this process handles `slot` (a worker of a distributed job restores only its slots' timers). */
    private readonly owns: (slot: number) => boolean = () => true,
  ) {
    this.epoch = (state.checkpoint?.epoch ?? 0) + 1;
    const op = stage.operator;
    this.operator = op.kind === 'window' ? new WindowOperator(op) : new ProcessOperator(op);
  }

  /** Loads the timers the last checkpoint kept. */
  async restore(): Promise<void> {
    for await (const entry of this.state.scan(this.stage.id, { prefix: TIMERS })) {
      if (!this.owns(entry.slot)) continue;
      const saved = entry.value as { key: Key; list: Array<[number, TimeDomainName]> };
      const keyStr = entry.key.slice(TIMERS.length);
      this.timersByKey.set(keyStr, { key: saved.key, slot: entry.slot, list: saved.list });
      for (const [time, domain] of saved.list) this.timers.add({ time, domain, key: saved.key, keyStr, slot: entry.slot });
    }
  }

  async handle(el: Element, out: Element[]): Promise<void> {
    switch (el.t) {
      case 'r':
        this.metrics.in++;
        await this.onRecord(el, out);
        return;
      case 'w':
        if (el.wm > this.wm) {
          this.wm = el.wm;
          await this.fire('event', el.wm, el.readAt, out);
        }
        out.push(el);
        return;
      case 'p':
        await this.fire('processing', el.now, performance.now(), out);
        out.push(el);
        return;
      case 'b':
        // Whatever this stage writes from now on belongs to the next checkpoint.
        this.epoch = el.epoch + 1;
        out.push(el);
        return;
      case 'e':
        // Every pending timer fires once; one set while they fire is dropped (a timer that re-arms itself would
        // otherwise fire forever once time is at its end).
        this.ending = true;
        this.wm = Infinity;
        await this.fire('event', Infinity, el.readAt, out);
        await this.fire('processing', Infinity, el.readAt, out);
        out.push(el);
        return;
      default:
        out.push(el);
    }
  }

  private async onRecord(el: RecordEl, out: Element[]): Promise<void> {
    let key: unknown;
    try {
      key = this.stage.keyFn(el.value);
    } catch (err) {
      this.outputs.dead(this.stage.id, `keyBy failed: ${reasonOf(err)}`, el.value);
      return;
    }
    if (typeof key !== 'string' && !(typeof key === 'number' && Number.isFinite(key))) {
      this.outputs.dead(this.stage.id, `keyBy gave ${typeof key}, not a string or a finite number`, el.value);
      return;
    }
    const keyStr = String(key);
    const scope = this.scope(key, keyStr, this.slotOf(keyStr), el.ts, el.readAt, out);
    try {
      await this.operator.onRecord(el.value, el, scope);
    } catch (err) {
      this.outputs.dead(this.stage.id, `${this.stage.operator.kind} failed: ${reasonOf(err)}`, el.value);
    }
  }

  /** keySlot hashes the key's UTF-8 bytes; hot keys repeat, so recent answers are kept (bounded). */
  private readonly slots = new Map<string, number>();
  private slotOf(keyStr: string): number {
    let slot = this.slots.get(keyStr);
    if (slot === undefined) {
      if (this.slots.size >= 65_536) this.slots.clear();
      this.slots.set(keyStr, (slot = keySlot(keyStr)));
    }
    return slot;
  }

  private async fire(domain: TimeDomainName, upTo: number, readAt: number, out: Element[]): Promise<void> {
    // Timers set while firing (at or before `upTo`) fire in the same pass.
    for (let t = this.timers.next(domain, upTo); t; t = this.timers.next(domain, upTo)) {
      this.forget(t.keyStr, t.slot, t.time, domain);
      const scope = this.scope(t.key, t.keyStr, t.slot, t.time, readAt, out);
      try {
        await this.operator.onTimer({ time: t.time, domain }, scope);
      } catch (err) {
        this.outputs.dead(this.stage.id, `onTimer failed: ${reasonOf(err)}`, { key: t.key, time: t.time, domain });
      }
    }
  }

  private remember(key: Key, keyStr: string, slot: number, time: number, domain: TimeDomainName): void {
    if (this.ending) return;
    if (!this.timers.add({ time, domain, key, keyStr, slot })) return;
    let saved = this.timersByKey.get(keyStr);
    if (!saved) this.timersByKey.set(keyStr, (saved = { key, slot, list: [] }));
    saved.list.push([time, domain]);
    this.state.put(this.stage.id, slot, TIMERS + keyStr, { key, list: saved.list }, this.epoch);
  }

  private forget(keyStr: string, slot: number, time: number, domain: TimeDomainName): void {
    const saved = this.timersByKey.get(keyStr);
    if (!saved) return;
    saved.list = saved.list.filter(([t, d]) => t !== time || d !== domain);
    if (saved.list.length === 0) {
      this.timersByKey.delete(keyStr);
      this.state.delete(this.stage.id, slot, TIMERS + keyStr, this.epoch);
    } else {
      this.state.put(this.stage.id, slot, TIMERS + keyStr, { key: saved.key, list: saved.list }, this.epoch);
    }
  }

  private scope(key: Key, keyStr: string, slot: number, timestamp: number, readAt: number, out: Element[]): KeyScope {
    return new Scope(this, key, keyStr, slot, timestamp, readAt, out);
  }

  /** @internal used by Scope */
  stateGet(slot: number, ref: string): Promise<Json | undefined> {
    return this.state.get(this.stage.id, slot, ref);
  }

  /** @internal used by Scope */
  statePut(slot: number, ref: string, value: Json | undefined): void {
    if (value === undefined) this.state.delete(this.stage.id, slot, ref, this.epoch);
    else this.state.put(this.stage.id, slot, ref, value, this.epoch);
  }

  /** @internal used by Scope */
  setTimer(key: Key, keyStr: string, slot: number, time: number, domain: TimeDomainName): void {
    this.remember(key, keyStr, slot, time, domain);
  }

  /** @internal used by Scope */
  deleteTimer(keyStr: string, slot: number, time: number, domain: TimeDomainName): void {
    if (this.timers.delete(domain, time, keyStr)) this.forget(keyStr, slot, time, domain);
  }

  /** @internal used by Scope */
  output(value: unknown, ts: number, readAt: number, out: Element[]): void {
    this.metrics.out++;
    out.push({ t: 'r', value, ts, readAt, bytes: 0, split: 0 });
  }

  /** @internal used by Scope */
  lateRecord(key: Key, value: unknown, ts: number): void {
    this.onLate();
    const op = this.stage.operator;
    const sink = op.kind === 'window' ? op.late : undefined;
    if (sink) this.outputs.late.get(sink as never)?.push({ key, value, timestamp: ts, watermark: this.wm });
  }

  get watermark(): number {
    return this.wm;
  }
}

function ref(name: string, keyStr: string): string {
  if (name.includes('\0') || name.startsWith('\u0001')) throw new Error(`bad state name ${JSON.stringify(name)}`);
  return `${name}\0${keyStr}`;
}

/** One key's view for one record or timer. A class, not closures: one is made per record. */
class Scope implements KeyScope {
  readonly watermark: number;
  readonly timers: Timers;

  constructor(
    private readonly exec: KeyedExec,
    readonly key: Key,
    readonly keyStr: string,
    readonly slot: number,
    readonly timestamp: number,
    private readonly readAt: number,
    private readonly out: Element[],
  ) {
    this.watermark = exec.watermark;
    this.timers = new ScopeTimers(exec, key, keyStr, slot);
  }

  now(): number {
    return this.exec.clock();
  }

  getState(name: string): Promise<Json | undefined> {
    return this.exec.stateGet(this.slot, ref(name, this.keyStr));
  }

  putState(name: string, value: Json): void {
    this.exec.statePut(this.slot, ref(name, this.keyStr), value);
  }

  deleteState(name: string): void {
    this.exec.statePut(this.slot, ref(name, this.keyStr), undefined);
  }

  value<S>(name: string): ValueState<S> {
    return new ScopeValue<S>(this, name);
  }

  map<V>(name: string): MapState<V> {
    return new ScopeMap<V>(this, name);
  }

  setTimer(domain: TimeDomainName, time: number): void {
    this.exec.setTimer(this.key, this.keyStr, this.slot, time, domain);
  }

  emit(value: unknown, ts: number = this.timestamp): void {
    this.exec.output(value, ts, this.readAt, this.out);
  }

  late(value: unknown, timestamp: number): void {
    this.exec.lateRecord(this.key, value, timestamp);
  }
}

class ScopeTimers implements Timers {
  constructor(
    private readonly exec: KeyedExec,
    private readonly key: Key,
    private readonly keyStr: string,
    private readonly slot: number,
  ) {}

  atEventTime(time: number): void {
    this.exec.setTimer(this.key, this.keyStr, this.slot, time, 'event');
  }

  atProcessingTime(time: number): void {
    this.exec.setTimer(this.key, this.keyStr, this.slot, time, 'processing');
  }

  deleteEventTime(time: number): void {
    this.exec.deleteTimer(this.keyStr, this.slot, time, 'event');
  }

  deleteProcessingTime(time: number): void {
    this.exec.deleteTimer(this.keyStr, this.slot, time, 'processing');
  }
}

class ScopeValue<S> implements ValueState<S> {
  constructor(
    private readonly scope: Scope,
    private readonly name: string,
  ) {}

  async get(): Promise<S | undefined> {
    return (await this.scope.getState(this.name)) as S | undefined;
  }

  set(value: S): void {
    this.scope.putState(this.name, value as Json);
  }

  clear(): void {
    this.scope.deleteState(this.name);
  }
}

class ScopeMap<V> implements MapState<V> {
  constructor(
    private readonly scope: Scope,
    private readonly name: string,
  ) {}

  private async load(): Promise<Record<string, V>> {
    return ((await this.scope.getState(this.name)) ?? {}) as Record<string, V>;
  }

  async get(field: string): Promise<V | undefined> {
    return (await this.load())[field];
  }

  async set(field: string, value: V): Promise<void> {
    const m = await this.load();
    m[field] = value;
    this.scope.putState(this.name, m as Json);
  }

  async delete(field: string): Promise<void> {
    const m = await this.load();
    delete m[field];
    this.scope.putState(this.name, m as Json);
  }

  async entries(): Promise<Array<[string, V]>> {
    return Object.entries(await this.load());
  }

  clear(): void {
    this.scope.deleteState(this.name);
  }
}
