/**
 * Where a shardflow rebalance spends its time, seen from outside: a watch on the coordinator timestamps each move's
 * steps as the driver records them, and a probe times one coordinator write every 200 ms.
 *
 * A move (src/migration/mover.ts) writes, in order: its job record (`planned`), the migration entry in the routing
 * record (CAS), the job record again (`copying`, after the source began the export), then — after the copy, the fence
 * and the catch-up — the cutover (CAS: new owner, entry cleared), and finally deletes the job record. Watch events
 * arrive once the coordinator has published each change, so the gaps between them are:
 *
 *   record   planned → entry      the routing CAS (with its retries when other moves changed the record meanwhile)
 *   begin    entry → copying      mig.export.begin on the source + the job record write
 *   copy     copying → cutover    the copy, fence, catch-up and the cutover CAS
 *   finish   cutover → deleted    mig.export.end, mig.import.finish and the job record delete
 */
import { performance } from 'node:perf_hooks';
import { connect, openCoordinator, PeerPool, type ShardflowClient } from '../../../src/client/index.js';
import { ClusterDir } from '../../../src/config/cluster-dir.js';
import type { Coordinator, Watch, WatchEvent } from '../../../src/coordination/index.js';
import { median } from '../load.js';

const ROOT = '/shardflow/';
const PROBE_KEY = '/shardflow-bench/probe';

interface Move {
  planned?: number;
  entry?: number;
  copying?: number;
  cutover?: number;
  deleted?: number;
}

export interface TimelineSummary {
  moves: number;
  /** Median ms per step over the completed moves. */
  recordMs: number;
  beginMs: number;
  copyMs: number;
  finishMs: number;
  totalMs: number;
  /** Mean moves in flight over the window. */
  inFlight: number;
  /** Coordinator changes in the window, by key class, and per second in all. */
  changes: Record<string, number>;
  changesPerSec: number;
  /** Coordinator write latency (probe), ms: before the window and during it. */
  probeBefore: { p50: number; max: number; n: number };
  probeDuring: { p50: number; max: number; n: number };
  /** Round trip of a `node.ping` to each storage node every 100 ms during the window, ms (max and p99 per node). */
  nodePing: Record<string, { p99: number; max: number }>;
  /** Milestones, ms after the window began: the rebalance lock taken, the new node ready, the first and last move. */
  lockMs?: number;
  newNodeReadyMs?: number;
  firstMoveMs?: number;
  lastMoveEndMs?: number;
}

function classOf(key: string): string {
  const rest = key.slice(ROOT.length);
  return rest.slice(0, rest.indexOf('/') >= 0 ? rest.indexOf('/') : undefined) || 'other';
}

export class MoveTimeline {
  private readonly moves = new Map<string, Move>();
  private readonly inRecord = new Set<string>();
  private readonly changes = new Map<string, number>();
  private windowStart: number | undefined;
  private windowEnd: number | undefined;
  private readonly probes: { t: number; ms: number }[] = [];
  private probing = true;
  private lockAt: number | undefined;
  private readyAt = new Map<string, number>();
  private probeLoop: Promise<void> | undefined;
  private pingLoop: Promise<void> | undefined;
  private readonly pings = new Map<string, { t: number; ms: number }[]>();
  private pinger: { client: ShardflowClient; pool: PeerPool } | undefined;

  private constructor(
    private readonly coordinator: Coordinator,
    private watch: Watch | undefined,
  ) {}

  static async open(dir: string): Promise<MoveTimeline> {
    const { coordinator } = await openCoordinator({ dir });
    const timeline = new MoveTimeline(coordinator, undefined);
    timeline.watch = await coordinator.watch(ROOT, (e) => timeline.onEvent(e));
    timeline.probeLoop = timeline.probe();
    const client = await connect({ dir, name: 'bench-ping' });
    timeline.pinger = { client, pool: new PeerPool(client.members, await new ClusterDir(dir).readSecret(), 'bench-ping') };
    timeline.pingLoop = timeline.ping();
    return timeline;
  }

  /** A stalled event loop on a node (a long synchronous commit, say) shows as a slow ping. */
  private async ping(): Promise<void> {
    const { client, pool } = this.pinger!;
    while (this.probing) {
      await Promise.all(
        client.members.ready('storage').map(async (m) => {
          const t0 = performance.now();
          try {
            const peer = await pool.get(m.id, Date.now() + 1000);
            await peer.call('node.ping', null, { timeoutMs: 10_000 });
          } catch {
            return;
          }
          let list = this.pings.get(m.id);
          if (!list) this.pings.set(m.id, (list = []));
          list.push({ t: t0, ms: performance.now() - t0 });
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async probe(): Promise<void> {
    for (let i = 0; this.probing; i++) {
      const t0 = performance.now();
      try {
        await this.coordinator.put(PROBE_KEY, String(i));
        this.probes.push({ t: t0, ms: performance.now() - t0 });
      } catch {
        // A failed probe says nothing about the rebalance.
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private onEvent(e: WatchEvent): void {
    const now = performance.now();
    if (this.windowStart !== undefined && this.windowEnd === undefined) {
      const c = classOf(e.key);
      this.changes.set(c, (this.changes.get(c) ?? 0) + 1);
    }
    if (e.key.startsWith(`${ROOT}locks/`) && e.type === 'put') this.lockAt ??= now;
    if (e.key.startsWith(`${ROOT}members/`) && e.type === 'put') {
      try {
        const m = JSON.parse(e.value ?? '{}') as { id?: string; state?: string };
        if (m.id && m.state === 'ready' && !this.readyAt.has(m.id)) this.readyAt.set(m.id, now);
      } catch {
        // Not a member record we can read.
      }
    }
    if (e.key.startsWith(`${ROOT}migrations/`)) {
      const job = e.key.slice(`${ROOT}migrations/`.length);
      const m = this.moves.get(job) ?? {};
      this.moves.set(job, m);
      if (e.type === 'delete') m.deleted ??= now;
      else {
        try {
          const step = (JSON.parse(e.value ?? '{}') as { step?: string }).step;
          if (step === 'planned') m.planned ??= now;
          if (step === 'copying') m.copying ??= now;
        } catch {
          // Not a job record we can read.
        }
      }
    } else if (e.key.startsWith(`${ROOT}namespaces/`) && e.type === 'put') {
      let jobs: string[] = [];
      try {
        const migrations = (JSON.parse(e.value ?? '{}') as { migrations?: Record<string, { job: string }> }).migrations ?? {};
        jobs = Object.values(migrations).map((x) => x.job);
      } catch {
        return;
      }
      const present = new Set(jobs);
      for (const job of present) {
        if (this.inRecord.has(job)) continue;
        this.inRecord.add(job);
        const m = this.moves.get(job) ?? {};
        this.moves.set(job, m);
        m.entry ??= now;
      }
      for (const job of [...this.inRecord]) {
        if (present.has(job)) continue;
        this.inRecord.delete(job);
        const m = this.moves.get(job);
        if (m) m.cutover ??= now;
      }
    }
  }

  begin(): void {
    this.windowStart = performance.now();
  }

  end(): void {
    this.windowEnd = performance.now();
  }

  /** Milestones for the node that joined (by id). */
  summary(newNode?: string): TimelineSummary {
    const start = this.windowStart ?? 0;
    const end = this.windowEnd ?? performance.now();
    const done = [...this.moves.values()].filter(
      (m): m is Required<Move> =>
        m.planned !== undefined && m.entry !== undefined && m.copying !== undefined && m.cutover !== undefined && m.deleted !== undefined,
    );
    const med = (f: (m: Required<Move>) => number) => (done.length ? median(done.map(f)) : 0);
    const busy = done.reduce((a, m) => a + (m.deleted - m.planned), 0);
    const probeStats = (list: { ms: number }[]) => ({
      p50: list.length ? median(list.map((p) => p.ms)) : 0,
      max: list.length ? Math.max(...list.map((p) => p.ms)) : 0,
      n: list.length,
    });
    const after = (t: number | undefined) => (t === undefined || !Number.isFinite(t) || t < start ? undefined : t - start);
    const changes = Object.fromEntries([...this.changes].sort((a, b) => b[1] - a[1]));
    return {
      moves: done.length,
      recordMs: med((m) => m.entry - m.planned),
      beginMs: med((m) => m.copying - m.entry),
      copyMs: med((m) => m.cutover - m.copying),
      finishMs: med((m) => m.deleted - m.cutover),
      totalMs: med((m) => m.deleted - m.planned),
      inFlight: busy / Math.max(1, end - start),
      changes,
      changesPerSec: [...this.changes.values()].reduce((a, b) => a + b, 0) / Math.max(0.001, (end - start) / 1000),
      probeBefore: probeStats(this.probes.filter((p) => p.t < start)),
      probeDuring: probeStats(this.probes.filter((p) => p.t >= start && p.t < end)),
      nodePing: Object.fromEntries(
        [...this.pings]
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([id, list]) => {
            const inWindow = list.filter((p) => p.t >= start && p.t < end).map((p) => p.ms).sort((a, b) => a - b);
            return [id, { p99: inWindow[Math.floor(inWindow.length * 0.99)] ?? 0, max: inWindow[inWindow.length - 1] ?? 0 }];
          }),
      ),
      lockMs: after(this.lockAt),
      newNodeReadyMs: after(newNode === undefined ? undefined : this.readyAt.get(newNode)),
      firstMoveMs: after(Math.min(...[...this.moves.values()].map((m) => m.planned ?? Infinity))),
      lastMoveEndMs: after(Math.max(...[...this.moves.values()].map((m) => m.deleted ?? -Infinity))),
    };
  }

  async close(): Promise<void> {
    this.probing = false;
    await this.probeLoop;
    await this.pingLoop;
    this.pinger?.pool.close();
    await this.pinger?.client.close();
    await this.coordinator.delete(PROBE_KEY).catch(() => undefined);
    await this.watch?.close().catch(() => undefined);
    await this.coordinator.close();
  }
}

export function describeTimeline(s: TimelineSummary): string {
  const r = (x: number) => Math.round(x);
  const at = (x: number | undefined) => (x === undefined ? '?' : `${(x / 1000).toFixed(2)} s`);
  return (
    `after the start: lock taken ${at(s.lockMs)}, new node ready ${at(s.newNodeReadyMs)}, first move ${at(s.firstMoveMs)}, ` +
    `last move done ${at(s.lastMoveEndMs)}; ` +
    `per move (median of ${s.moves}): ${r(s.totalMs)} ms = record ${r(s.recordMs)} + begin ${r(s.beginMs)} + ` +
    `copy/fence/cutover ${r(s.copyMs)} + finish ${r(s.finishMs)} ms; ${s.inFlight.toFixed(1)} moves in flight on average; ` +
    `coordinator changes ${Math.round(s.changesPerSec)}/s (${Object.entries(s.changes).map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
    `one coordinator write (probe) p50 ${s.probeBefore.p50.toFixed(1)} ms before, ${s.probeDuring.p50.toFixed(1)} ms during ` +
    `(max ${s.probeDuring.max.toFixed(0)} ms); node.ping during, p99/max: ` +
    Object.entries(s.nodePing).map(([id, p]) => `${id} ${r(p.p99)}/${r(p.max)} ms`).join(', ')
  );
}
