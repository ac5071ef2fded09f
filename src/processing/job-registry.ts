/**
 * Running jobs as records in the coordinator, so any terminal can list them (`shardflow jobs`) and stop one
 * (`shardflow stop JOB`). Two folders (coordination/keys.ts):
 *
 * - `/shardflow/jobs/<id>`: one record per running job — file, mode, trigger, pid, host, start time, state, and the
 *   latest metrics — attached to the running process's lease and refreshed about once a second. When the process dies
 *   its lease expires and the record goes with it; a job that ends writes its final state, then revokes the lease.
 * - `/shardflow/job-requests/<id>`: a request to the job (`stop`), naming the pid and start time of the run it is
 *   meant for, so a request left over from an earlier run with the same id is ignored. The job watches it and
 *   deletes it as it exits.
 *
 * A stop is: `stop` watches the job's record, writes the request; the job sees it, writes state `stopping`, stops
 * reading, takes a final checkpoint, writes state `stopped` with its last metrics and checkpoint, and revokes its
 * lease; `stop` reports what it saw.
 *
 * @example
 * ```ts
 * const reg = await JobRegistration.register(coordinator, { id: 'clicks', file: 'examples/clicks.ts', mode: 'stream', trigger: null });
 * reg.onStopRequest(() => void handle.stop());
 * setInterval(() => void reg.update({ metrics: handle.metrics.snapshot(), live }), 1000);
 * // elsewhere: for (const j of await listJobs(coordinator)) console.log(j.id, j.state);
 * ```
 */
import { hostname } from 'node:os';
import type { Coordinator, Lease, Watch } from '../coordination/coordinator.js';
import { jobKey, jobRequestKey, JOBS_PREFIX } from '../coordination/keys.js';
import { BusyError, InvalidArgumentError, TimeoutError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import type { MetricsSnapshot } from './metrics.js';

/** Where a running job is. `starting`: registered, not yet reading; the last three are final. */
export type RunningJobState = 'starting' | 'running' | 'stopping' | 'finished' | 'stopped' | 'failed';

/** The figures a live view shows, derived from two metrics snapshots about a second apart. */
export interface LiveFigures {
  recordsIn: number;
  recordsOut: number;
  inPerSec: number;
  outPerSec: number;
  /** Latencies measured so far (p50 and p99 mean nothing before the first). */
  latencySamples: number;
  p50Ms: number;
  p99Ms: number;
  /** Records read but not yet taken by the first step, plus elements waiting in the queues between steps. */
  backlog: number;
  /** Whether the source waits on backpressure. */
  waiting: boolean;
  /** Time since the last checkpoint committed; null before the first. */
  checkpointAgeMs: number | null;
  checkpointEpoch: number | null;
  deadLetters: number;
  late: number;
  elapsedMs: number;
}

/** The stored record (JSON). Field names are part of the interface (`shardflow jobs --json`). */
export interface RunningJobRecord {
  id: string;
  /** The job module, as given to `shardflow run` (absolute path). */
  file: string;
  mode: 'stream' | 'batch';
  /** The batch trigger spec as given; null in stream mode or when the default is used. */
  trigger: string | null;
  pid: number;
  host: string;
  startedAt: string;
  updatedAt: string;
  state: RunningJobState;
  /** Why it failed (state `failed`). */
  error?: string;
  /** The last checkpoint's epoch, once there is one. */
  checkpointEpoch?: number;
  live?: LiveFigures;
  metrics?: MetricsSnapshot;
  /** A job on the compute tier: its current generation and the compute nodes of its workers, in worker order. */
  generation?: number;
  workers?: string[];
}

/** What a stop request says. */
export interface JobRequest {
  action: 'stop';
  /** The run it is meant for. */
  pid: number;
  startedAt: string;
  /** Who asked (e.g. `shardflow stop (pid 123)`). */
  by: string;
  at: string;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checks a job id: letters, digits, `.`, `_`, `-`; at most 128. */
export function checkJobId(id: string): string {
  if (!ID_RE.test(id))
    throw new InvalidArgumentError(`job id ${JSON.stringify(id)} must be letters, digits, ".", "_" or "-" (at most 128); give --id`, {
      details: { id },
    });
  return id;
}

/** Derives the live figures from a snapshot and the previous one (for the rates). */
export function liveFigures(now: MetricsSnapshot, prev: MetricsSnapshot | undefined): LiveFigures {
  const dt = prev ? (now.elapsedMs - prev.elapsedMs) / 1000 : now.elapsedMs / 1000;
  const rate = (a: number, b: number) => (dt > 0 ? Math.max(0, (a - b) / dt) : 0);
  const firstIn = now.stages[0]?.in;
  const unread = firstIn === undefined ? 0 : Math.max(0, now.source.records - firstIn);
  const queued = now.queues.slice(1).reduce((a, b) => a + b, 0);
  return {
    recordsIn: now.source.records,
    recordsOut: now.sink.records,
    inPerSec: rate(now.source.records, prev?.source.records ?? 0),
    outPerSec: rate(now.sink.records, prev?.sink.records ?? 0),
    latencySamples: now.latency.count,
    p50Ms: now.latency.p50Ms,
    p99Ms: now.latency.p99Ms,
    // Unread at the source too (a consumer's lag), where the source can tell.
    backlog: unread + queued + (now.source.pending ?? 0),
    waiting: now.source.waiting,
    checkpointAgeMs: now.checkpoints.lastAt === undefined ? null : Math.max(0, Date.now() - now.checkpoints.lastAt),
    checkpointEpoch: now.checkpoints.lastEpoch ?? null,
    deadLetters: now.deadLetters,
    late: now.late,
    elapsedMs: now.elapsedMs,
  };
}

/** The running side: one job's record on this process's lease, and the requests to it. */
export class JobRegistration {
  private record: RunningJobRecord;
  private lease: Lease | undefined;
  private watch: Watch | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private stopListeners: Array<(req: JobRequest) => void> = [];
  private stopSeen = false;
  private readonly log;

  private constructor(
    private readonly coordinator: Coordinator,
    record: RunningJobRecord,
    private readonly ttlMs: number,
  ) {
    this.record = record;
    this.log = createLogger(`job:${record.id}`);
  }

  /**
   * Registers a job (state `starting`). Refuses with a {@link BusyError} when a job with the same id is running.
   */
  static async register(
    coordinator: Coordinator,
    info: { id: string; file: string; mode: 'stream' | 'batch'; trigger: string | null },
    options: { ttlMs?: number } = {},
  ): Promise<JobRegistration> {
    checkJobId(info.id);
    const now = new Date().toISOString();
    const record: RunningJobRecord = { ...info, pid: process.pid, host: hostname(), startedAt: now, updatedAt: now, state: 'starting' };
    const reg = new JobRegistration(coordinator, record, options.ttlMs ?? 3000);
    const lease = await coordinator.grantLease(reg.ttlMs);
    try {
      const created = await coordinator.compareAndSet(jobKey(info.id), 0, JSON.stringify(record), { lease });
      if (!created.ok) {
        const other = parseRecord(created.current?.value);
        throw new BusyError(
          `job ${info.id} is running already${other ? ` (pid ${other.pid} on ${other.host}, ${other.file})` : ''}: stop it with 'shardflow stop ${info.id}' or give another --id`,
          { details: { id: info.id } },
        );
      }
      reg.lease = lease;
      lease.onLost((err) => reg.leaseLost(lease, err));
      reg.watch = await coordinator.watch(jobRequestKey(info.id), (e) => {
        if (e.key === jobRequestKey(info.id) && e.type === 'put') reg.request(e.value);
      });
      // A request written before the watch began (it cannot be older than the record, or it names another run).
      reg.request((await coordinator.get(jobRequestKey(info.id)))?.value);
    } catch (err) {
      await reg.watch?.close().catch(() => undefined);
      await lease.revoke().catch(() => undefined);
      throw err;
    }
    return reg;
  }

  get id(): string {
    return this.record.id;
  }

  get current(): RunningJobRecord {
    return { ...this.record };
  }

  /** Calls `listener` once, when a stop request for this run arrives. */
  onStopRequest(listener: (req: JobRequest) => void): void {
    this.stopListeners.push(listener);
  }

  /** Writes the record with these changes (one write at a time; the last one wins). */
  update(changes: Partial<Pick<RunningJobRecord, 'state' | 'live' | 'metrics' | 'error' | 'checkpointEpoch' | 'generation' | 'workers'>>): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.record = { ...this.record, ...changes, updatedAt: new Date().toISOString() };
    return this.enqueue(() => this.put());
  }

  /** Writes the final record, then removes it (revokes the lease) and the request. */
  async close(final?: Partial<Pick<RunningJobRecord, 'state' | 'live' | 'metrics' | 'error' | 'checkpointEpoch'>>): Promise<void> {
    if (this.closed) return;
    if (final) await this.update(final).catch((err: unknown) => this.log.debug('final record write failed', { error: String(err) }));
    this.closed = true;
    await this.queue;
    await this.watch?.close().catch(() => undefined);
    const req = await this.coordinator.get(jobRequestKey(this.id)).catch(() => undefined);
    if (req && this.matches(parseRequest(req.value))) await this.coordinator.compareAndDelete(req.key, req.revision).catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }

  private async put(): Promise<void> {
    if (!this.lease) {
      // The lease was lost (the coordinator was unreachable for longer than its TTL): take a new one.
      const lease = await this.coordinator.grantLease(this.ttlMs);
      lease.onLost((err) => this.leaseLost(lease, err));
      this.lease = lease;
    }
    await this.coordinator.put(jobKey(this.id), JSON.stringify(this.record), { lease: this.lease });
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work);
    this.queue = run.catch((err: unknown) => this.log.debug('job record write failed', { error: String(err) }));
    return run;
  }

  private leaseLost(lease: Lease, err: Error): void {
    if (this.closed || lease !== this.lease) return;
    this.log.warn('job record lease lost; registering again', { error: err.message });
    this.lease = undefined;
    void this.update({}).catch(() => undefined);
  }

  private matches(req: JobRequest | undefined): boolean {
    return req !== undefined && req.pid === this.record.pid && req.startedAt === this.record.startedAt;
  }

  private request(value: string | undefined): void {
    const req = parseRequest(value);
    if (!this.matches(req) || req!.action !== 'stop' || this.stopSeen) return;
    this.stopSeen = true;
    this.log.info('stop requested', { by: req!.by });
    for (const l of this.stopListeners) l(req!);
  }
}

function parseRecord(value: string | undefined): RunningJobRecord | undefined {
  if (value === undefined) return undefined;
  try {
    const r = JSON.parse(value) as RunningJobRecord;
    return typeof r.id === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

function parseRequest(value: string | undefined): JobRequest | undefined {
  if (value === undefined) return undefined;
  try {
    const r = JSON.parse(value) as JobRequest;
    return typeof r.action === 'string' && typeof r.pid === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every running job's record, by id (records that do not parse are skipped).
 *
 * @example
 * ```ts
 * for (const j of await listJobs(coordinator)) console.log(j.id, j.state, j.live?.inPerSec);
 * ```
 */
export async function listJobs(coordinator: Coordinator): Promise<RunningJobRecord[]> {
  const out: RunningJobRecord[] = [];
  for (const e of await coordinator.list(JOBS_PREFIX)) {
    const r = parseRecord(e.value);
    if (r) out.push(r);
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** One running job's record, if it runs. */
export async function getJob(coordinator: Coordinator, id: string): Promise<RunningJobRecord | undefined> {
  return parseRecord((await coordinator.get(jobKey(id)))?.value);
}

const FINAL: ReadonlySet<RunningJobState> = new Set(['finished', 'stopped', 'failed']);

/**
 * Asks a running job to stop and waits until it has: it stops reading, takes a final checkpoint and ends. Resolves
 * with its last record (state `stopped`, or `finished`/`failed` if it ended otherwise meanwhile). Refuses an unknown
 * id with an {@link InvalidArgumentError} listing the running ones; a job that does not end in `timeoutMs` is a
 * {@link TimeoutError}.
 *
 * @example
 * ```ts
 * const last = await requestStop(coordinator, 'clicks', { onStopping: () => console.log('stopping...') });
 * console.log(last.state, last.checkpointEpoch);
 * ```
 */
export async function requestStop(
  coordinator: Coordinator,
  id: string,
  options: { timeoutMs?: number; by?: string; onStopping?: (r: RunningJobRecord) => void } = {},
): Promise<RunningJobRecord> {
  const key = jobKey(id);
  let last: RunningJobRecord | undefined;
  let settle: (r: RunningJobRecord) => void = () => {};
  let ended = false;
  const done = new Promise<RunningJobRecord>((resolve) => (settle = resolve));
  const finish = () => {
    if (ended || !last) return;
    ended = true;
    settle(last);
  };
  let stoppingSeen = false;
  const watch = await coordinator.watch(key, (e) => {
    if (e.key !== key) return;
    if (e.type === 'delete') return finish();
    const r = parseRecord(e.value);
    if (!r || (last && (r.pid !== last.pid || r.startedAt !== last.startedAt))) return;
    last = r;
    if (r.state === 'stopping' && !stoppingSeen) {
      stoppingSeen = true;
      options.onStopping?.(r);
    }
    if (FINAL.has(r.state)) finish();
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const current = await getJob(coordinator, id);
    if (!current) {
      const running = (await listJobs(coordinator)).map((j) => j.id);
      throw new InvalidArgumentError(
        `no job ${JSON.stringify(id)} is running${running.length ? `; running: ${running.join(', ')}` : ' (no jobs are running)'}`,
        { details: { id, running } },
      );
    }
    last ??= current;
    if (FINAL.has(current.state)) return current;
    const req: JobRequest = {
      action: 'stop',
      pid: current.pid,
      startedAt: current.startedAt,
      by: options.by ?? `shardflow stop (pid ${process.pid})`,
      at: new Date().toISOString(),
    };
    await coordinator.put(jobRequestKey(id), JSON.stringify(req));
    // The record may have gone between the read and the watch taking effect: look once more.
    if (!(await coordinator.get(key))) finish();
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`job ${id} did not stop within ${timeoutMs} ms (state ${last?.state}, pid ${current.pid})`, { details: { id } })),
        timeoutMs,
      );
    });
    return await Promise.race([done, timeout]);
  } finally {
    if (timer) clearTimeout(timer);
    await watch.close().catch(() => undefined);
  }
}
