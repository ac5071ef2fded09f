/**
 * What `rebalance` and `scale storage=N` print: the plan (routes, partitions, bytes, an estimate of the time), then
 * live progress — a bar per partition in flight and one overall with MB/s and ETA on a terminal, a line every few
 * seconds otherwise — and a summary.
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { JobRecord, MoveResult, PlannedMove } from '../migration/index.js';
import { formatBytes } from './status.js';

/** A planned move with the partition's size. */
export interface SizedMove extends PlannedMove {
  keys: number;
  bytes: number;
}

/** Copy rate assumed for the estimate when no limit is given (measured by bench:rebalance on a small machine). */
const ESTIMATE_BYTES_PER_SEC = 40 * 1024 * 1024;
/** Fixed cost of one move (coordinator writes, fence, cutover), for the estimate. */
const ESTIMATE_MS_PER_MOVE = 15;

export function estimateSeconds(moves: SizedMove[], concurrency: number, maxBytesPerSec?: number): number {
  const bytes = moves.reduce((a, m) => a + m.bytes, 0);
  const rate = Math.min(maxBytesPerSec ?? Infinity, ESTIMATE_BYTES_PER_SEC);
  return bytes / rate + (moves.length * ESTIMATE_MS_PER_MOVE) / 1000 / Math.max(1, concurrency);
}

export function formatPlan(moves: SizedMove[], concurrency: number, maxBytesPerSec?: number): string {
  if (moves.length === 0) return 'balanced: nothing to move';
  const byRoute = new Map<string, { n: number; keys: number; bytes: number }>();
  for (const m of moves) {
    const k = `${m.namespace}: ${m.from ?? '(none)'} -> ${m.to}${m.role === 'follower' ? ' (follower copies)' : m.role === 'lead' ? ' (lead handoffs, no data)' : ''}`;
    const r = byRoute.get(k) ?? { n: 0, keys: 0, bytes: 0 };
    r.n++;
    r.keys += m.keys;
    r.bytes += m.bytes;
    byRoute.set(k, r);
  }
  const total = moves.reduce((a, m) => a + m.bytes, 0);
  const lines = [`plan: ${moves.length} partition${moves.length === 1 ? '' : 's'}${moves.some((m) => m.role) ? ' (copies)' : ''} to move, ${formatBytes(total)}, about ${formatDuration(estimateSeconds(moves, concurrency, maxBytesPerSec))}`];
  for (const [k, r] of byRoute) lines.push(`  ${k}  ${r.n} partition${r.n === 1 ? '' : 's'}, ${r.keys} keys, ${formatBytes(r.bytes)}`);
  return lines.join('\n');
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** Live progress of a run. */
export class RebalanceProgress {
  private readonly started = Date.now();
  private readonly totalBytes: number;
  private doneBytes = 0;
  private doneMoves = 0;
  private readonly inFlight = new Map<string, JobRecord>();
  private readonly multi: MultiBar | undefined;
  private readonly overall: SingleBar | undefined;
  private readonly bars = new Map<string, SingleBar>();
  private lastLine = 0;
  private rateNote = '';

  constructor(
    private readonly moves: SizedMove[],
    private readonly write: (line: string) => void,
    tty: boolean,
  ) {
    this.totalBytes = moves.reduce((a, m) => a + m.bytes, 0);
    if (tty) {
      this.multi = new MultiBar(
        { format: '{label} {bar} {percentage}% {detail}', hideCursor: true, clearOnComplete: false, autopadding: true },
        Presets.shades_classic,
      );
      this.overall = this.multi.create(100, 0, { label: 'overall'.padEnd(28), detail: '' });
    }
  }

  progress(job: JobRecord): void {
    if (job.step === 'switched' || job.step === 'aborting') {
      this.inFlight.delete(job.job);
      this.bars.get(job.job)?.stop();
      if (this.bars.has(job.job)) this.multi?.remove(this.bars.get(job.job)!);
      this.bars.delete(job.job);
    } else {
      this.inFlight.set(job.job, { ...job });
      if (this.multi && !this.bars.has(job.job) && this.bars.size < 8) {
        const parts = job.partitions.length === 1 ? String(job.partitions[0]) : `${job.partitions[0]}..(${job.partitions.length})`;
        const label = `${job.namespace}/${parts} ${job.from}->${job.to}`.padEnd(28);
        this.bars.set(job.job, this.multi.create(Math.max(1, job.totalKeys), 0, { label, detail: '' }));
      }
      this.bars.get(job.job)?.update(Math.min(job.copiedKeys, Math.max(1, job.totalKeys)), { detail: `${job.copiedKeys}/${job.totalKeys} keys` });
    }
    this.render();
  }

  moved(r: MoveResult): void {
    this.doneMoves += r.partitions.length;
    this.doneBytes += r.bytes;
    this.render();
  }

  rate(bytesPerSec: number | undefined, reason: string): void {
    this.rateNote = bytesPerSec === undefined ? '' : ` (rate held to ${formatBytes(bytesPerSec)}/s: ${reason})`;
    if (!this.multi) this.write(`rate: ${bytesPerSec === undefined ? 'unlimited' : `${formatBytes(bytesPerSec)}/s`} — ${reason}`);
  }

  stop(): void {
    this.render(true);
    this.multi?.stop();
  }

  private render(force = false): void {
    let bytes = this.doneBytes;
    for (const j of this.inFlight.values()) bytes += j.copiedBytes;
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const speed = bytes / secs;
    const left = Math.max(0, this.totalBytes - bytes);
    // Too early a rate says little (the first jobs are still starting): no ETA for the first two seconds.
    const eta = speed > 0 && secs >= 2 ? formatDuration(left / speed) : '?';
    const pct = this.totalBytes > 0 ? Math.min(100, Math.floor((bytes / this.totalBytes) * 100)) : Math.floor((this.doneMoves / Math.max(1, this.moves.length)) * 100);
    const detail = `${formatBytes(bytes)}/${formatBytes(this.totalBytes)}  ${(speed / 1024 / 1024).toFixed(1)} MB/s  ETA ${eta}  ${this.doneMoves}/${this.moves.length} partitions${this.rateNote}`;
    if (this.overall) {
      this.overall.update(pct, { detail });
      return;
    }
    if (force || Date.now() - this.lastLine >= 2000) {
      this.lastLine = Date.now();
      this.write(`progress: ${pct}%  ${detail}`);
    }
  }
}
