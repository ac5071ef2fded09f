/**
 * Runs a stateless stage: the chain of map / filter / flatMap / validate / timestamps on each record, forwarding
 * control elements. The first stage also generates watermarks (bounded out-of-orderness): it tracks the largest
 * event time seen per split and, at the end of each source read (a mark element), emits `min over unfinished splits
 * of (max - outOfOrderness - 1)` when that has advanced. Because marks come from the reads and reads do not depend
 * on the mode, stream and batch runs see the same watermarks at the same places.
 *
 * A function that throws sends the record to the dead-letter output; the job goes on.
 */
import type { Json } from './connectors/types.js';
import type { BarrierEl, Element, RecordEl } from './elements.js';
import type { StageMetrics } from './metrics.js';
import { reasonOf, type SideOutputs } from './outputs.js';
import type { ChainOp, StatelessStage } from './plan.js';

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** Per-split largest event time and whether the split ended; what a checkpoint stores to restore watermarks. */
export interface WatermarkState {
  /** Split ids, in split order: a restart may find other splits (a file added to a glob). */
  ids: string[];
  max: number[];
  done: boolean[];
  emitted: number;
}

/** The restored state laid out for the splits of this run: by split id, new splits not yet seen. */
export function alignWatermarks(restored: WatermarkState | undefined, ids: string[]): WatermarkState {
  const at = new Map((restored?.ids ?? []).map((id, i) => [id, i]));
  return {
    ids,
    max: ids.map((id) => (at.has(id) ? restored!.max[at.get(id)!]! : -Infinity)),
    done: ids.map((id) => (at.has(id) ? restored!.done[at.get(id)!]! : false)),
    emitted: restored?.emitted ?? -Infinity,
  };
}

class WatermarkGenerator {
  constructor(
    private readonly outOfOrdernessMs: number,
    readonly state: WatermarkState,
  ) {}

  observe(split: number, ts: number): void {
    if (ts > (this.state.max[split] ?? -Infinity)) this.state.max[split] = ts;
  }

  /** The new watermark after a read of `split`, if it advanced. */
  mark(split: number, done: boolean): number | undefined {
    if (done) this.state.done[split] = true;
    let wm = Infinity;
    for (let i = 0; i < this.state.done.length; i++)
      if (!this.state.done[i]) wm = Math.min(wm, (this.state.max[i] ?? -Infinity) - this.outOfOrdernessMs - 1);
    // Every split ended: the end-of-input element moves event time to the end, not the generator.
    if (wm === Infinity || !(wm > this.state.emitted)) return undefined;
    this.state.emitted = wm;
    return wm;
  }
}

export class StatelessExec {
  private readonly generator: WatermarkGenerator | undefined;
  /** Index of the timestamps op in the chain, or -1 (then the first stage watches source event times). */
  private readonly tsIndex: number;

  constructor(
    private readonly stage: StatelessStage,
    private readonly metrics: StageMetrics,
    private readonly outputs: SideOutputs,
    watermarks: WatermarkState | undefined,
  ) {
    this.tsIndex = stage.ops.findIndex((op) => op.kind === 'timestamps');
    if (watermarks) {
      const op = stage.ops[this.tsIndex] as (ChainOp & { kind: 'timestamps' }) | undefined;
      this.generator = new WatermarkGenerator(op?.outOfOrdernessMs ?? 0, watermarks);
    }
  }

  /** The watermark generator's state (first stage only), for a checkpoint. */
  watermarkState(): Json | undefined {
    return this.generator ? (structuredClone(this.generator.state) as unknown as Json) : undefined;
  }

  async handle(el: Element, out: Element[]): Promise<void> {
    switch (el.t) {
      case 'r':
        this.metrics.in++;
        if (this.generator && this.tsIndex < 0) this.generator.observe(el.split, el.ts);
        await this.run(el, 0, el.value, el.ts, out);
        return;
      case 'm': {
        const wm = this.generator?.mark(el.split, el.done);
        if (wm !== undefined) out.push({ t: 'w', wm, readAt: el.readAt });
        return;
      }
      case 'b':
        if (this.generator) (el as BarrierEl).watermarks = this.watermarkState();
        out.push(el);
        return;
      default:
        out.push(el);
    }
  }

  private async run(src: RecordEl, from: number, value: unknown, ts: number, out: Element[]): Promise<void> {
    const ops = this.stage.ops;
    for (let i = from; i < ops.length; i++) {
      const op = ops[i]!;
      let result: unknown;
      try {
        if (op.kind === 'timestamps') {
          result = op.fn ? op.fn(value, ts) : ts;
        } else {
          result = op.fn(value);
        }
        if (isThenable(result)) result = await result;
      } catch (err) {
        this.outputs.dead(this.stage.id, `${op.kind} failed: ${reasonOf(err)}`, value);
        return;
      }
      switch (op.kind) {
        case 'map':
          value = result;
          break;
        case 'filter':
          if (!result) return;
          break;
        case 'validate':
          if (!result) {
            this.outputs.dead(this.stage.id, op.reason, value);
            return;
          }
          break;
        case 'timestamps':
          if (typeof result !== 'number' || !Number.isFinite(result)) {
            this.outputs.dead(this.stage.id, `timestamps gave ${String(result)}, not a finite number`, value);
            return;
          }
          ts = result;
          this.generator?.observe(src.split, ts);
          break;
        case 'flatMap': {
          if (result === null || typeof result !== 'object' || !(Symbol.iterator in (result as object))) {
            this.outputs.dead(this.stage.id, 'flatMap must return an iterable', value);
            return;
          }
          for (const item of result as Iterable<unknown>) await this.run(src, i + 1, item, ts, out);
          return;
        }
      }
    }
    this.metrics.out++;
    out.push({ t: 'r', value, ts, readAt: src.readAt, bytes: src.bytes, split: src.split });
  }
}
