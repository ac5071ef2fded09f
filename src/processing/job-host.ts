/**
 * Jobs run by the compute tier: `shardflow run --on-cluster` writes a job spec under `/shardflow/job-specs/<id>`;
 * every compute node's JobHost campaigns for it (one coordinator election per job). The winner leads the job
 * (processing/job-leader.ts): it runs it in generations of workers, one on every ready compute node
 * (processing/cluster-worker.ts), with keyed state and checkpoints in the storage tier. Every JobHost also hosts the
 * workers its node is given, and carries their calls: `job.worker.start / stop / kill`, `job.exchange` (records
 * between workers), `job.report` (an epoch ready, to the leader), `job.worker.failed`.
 *
 * When the leader's node dies its lease goes, another node wins the election and resumes the job from its last
 * checkpoint; when a worker's node dies, the leader starts the next generation from it; when compute nodes join or
 * leave, it stops the generation at a checkpoint and starts the next on the new set. Nothing is restarted by hand,
 * no record is lost or counted twice in state (sinks are at-least-once; idempotent ones, like a namespace, end exact).
 *
 * @example
 * ```ts
 * const host = await JobHost.start({ nodeId: 'c1', coordinator, client, clusterDir: '.shardflow' });
 * await submitJob(coordinator, { id: 'clicks', file: 'examples/clicks.ts', args: ['--count', '1000'] });
 * // ... later
 * await host.stop();
 * ```
 */
import { resolve } from 'node:path';
import type { MemberView, PeerPool } from '../client/index.js';
import type { Coordinator, Lease, Leadership, Watch } from '../coordination/coordinator.js';
import { JOB_SPECS_PREFIX, jobSpecKey } from '../coordination/index.js';
import { BusyError, ClosedError, InvalidArgumentError, UnavailableError, UnknownMethodError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import { ClusterWorker, type EpochReport, type WorkerPlacement } from './cluster-worker.js';
import { loadJob, parseJobArgs } from './job.js';
import { JobLeader } from './job-leader.js';
import { Pipeline } from './pipeline.js';
import { StorageStateBackend, type StateStoreClient } from './storage-state.js';
import { checkJobId, JobRegistration, liveFigures } from './job-registry.js';
import type { MetricsSnapshot } from './metrics.js';
import type { CommitRecord } from './state.js';

/** What `run --on-cluster` asks for. */
export interface JobSpec {
  id: string;
  /** Absolute path of the job module (compute nodes of a local cluster share the file system). */
  file: string;
  args: string[];
  mode: 'stream' | 'batch';
  trigger?: string;
  checkpointInterval?: string;
  submittedAt: string;
}

/** Records a job spec for the compute tier to run. @throws BusyError if a spec with that id exists. */
export async function submitJob(
  coordinator: Coordinator,
  spec: Omit<JobSpec, 'submittedAt' | 'mode'> & { mode?: 'stream' | 'batch' },
): Promise<JobSpec> {
  checkJobId(spec.id);
  const full: JobSpec = { mode: 'stream', ...spec, file: resolve(spec.file), submittedAt: new Date().toISOString() };
  const r = await coordinator.compareAndSet(jobSpecKey(spec.id), 0, JSON.stringify(full));
  if (!r.ok) throw new BusyError(`job ${spec.id} is submitted already`, { details: { id: spec.id } });
  return full;
}

/** The spec of a job, while the compute tier has it to run. */
export async function getJobSpec(coordinator: Coordinator, id: string): Promise<JobSpec | undefined> {
  const e = await coordinator.get(jobSpecKey(id));
  return e ? (JSON.parse(e.value) as JobSpec) : undefined;
}

/** What a job host needs: its node, the coordinator, a client for state, and links to the other compute nodes. */
export interface JobHostOptions {
  nodeId: string;
  coordinator: Coordinator;
  client: StateStoreClient;
  members: MemberView;
  pool: PeerPool;
  clusterDir?: string;
  leaseTtlMs?: number;
}

interface Led {
  spec: JobSpec;
  abort: AbortController;
  leader?: JobLeader;
}

/** Longest a report waits for its epoch to commit job-wide (a slow worker holds every other's). */
const REPORT_TIMEOUT_MS = 120_000;
/** Longest an exchange call waits for the worker it is for to start. */
const WORKER_WAIT_MS = 10_000;

export class JobHost {
  private readonly led = new Map<string, Led>();
  private readonly workers = new Map<string, ClusterWorker>();
  /** Stops that came before their worker (job → generation): the worker stops as soon as it starts. */
  private readonly earlyStops = new Map<string, number>();
  private readonly workerWaiters = new Set<() => void>();
  private watch: Watch | undefined;
  private stopped = false;
  private readonly log;

  private constructor(
    private readonly options: JobHostOptions,
    private lease: Lease,
  ) {
    this.log = createLogger(`jobs:${options.nodeId}`);
  }

  static async start(options: JobHostOptions): Promise<JobHost> {
    const lease = await options.coordinator.grantLease(options.leaseTtlMs ?? 3000);
    const host = new JobHost(options, lease);
    host.keepLease(lease);
    // Watch first, then list: a spec written in between is seen by one or the other (adopt is idempotent).
    host.watch = await options.coordinator.watch(JOB_SPECS_PREFIX, (e) => {
      if (e.type === 'put' && e.value) host.adopt(JSON.parse(e.value) as JobSpec);
      else if (e.type === 'delete') host.drop(e.key.slice(JOB_SPECS_PREFIX.length));
    });
    for (const e of await options.coordinator.list(JOB_SPECS_PREFIX)) host.adopt(JSON.parse(e.value) as JobSpec);
    return host;
  }

  /** The lease campaigns run on: a new one once the last lapsed (an unreachable coordinator for longer than its TTL). */
  private leaseReady!: Promise<Lease>;

  private keepLease(lease: Lease): void {
    this.lease = lease;
    this.leaseReady = Promise.resolve(lease);
    lease.onLost(() => {
      if (this.stopped) return;
      this.leaseReady = this.renewLease();
    });
  }

  private async renewLease(): Promise<Lease> {
    for (let attempt = 0; ; attempt++) {
      try {
        const lease = await this.options.coordinator.grantLease(this.options.leaseTtlMs ?? 3000);
        this.keepLease(lease);
        return lease;
      } catch (err) {
        if (this.stopped) throw err;
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  }

  /** The node's handler for `job.*` calls. */
  async handle(method: string, params: unknown): Promise<unknown> {
    if (typeof params !== 'object' || params === null) throw new InvalidArgumentError(`${method}: parameters must be an object`);
    const p = params as Record<string, unknown>;
    switch (method) {
      case 'job.exchange': {
        const worker = await this.workerFor(p.job, p.generation);
        await worker.deliver(int(p.step, 'step'), int(p.from, 'from'), p.els);
        return null;
      }
      case 'job.report':
        return this.leaderOf(p.job).report(epochReport(p));
      case 'job.worker.failed':
        this.leaderOf(p.job).workerFailed(int(p.generation, 'generation'), int(p.index, 'index'), String(p.why));
        return null;
      case 'job.worker.start':
        await this.startWorker(p.spec as JobSpec, p.placement as WorkerPlacement, String(p.leader));
        return null;
      case 'job.worker.stop': {
        const w = this.workers.get(String(p.job));
        if (w && w.placement.generation === p.generation) void w.stop();
        else this.earlyStops.set(String(p.job), int(p.generation, 'generation'));
        return null;
      }
      case 'job.worker.kill': {
        const w = this.workers.get(String(p.job));
        if (w && (p.generation === undefined || w.placement.generation <= Number(p.generation))) await w.kill();
        return null;
      }
      default:
        throw new UnknownMethodError(`unknown method ${method}`);
    }
  }

  /** Campaigns for a job; leads it when elected. */
  private adopt(spec: JobSpec): void {
    if (this.stopped || this.led.has(spec.id)) return;
    const h: Led = { spec, abort: new AbortController() };
    this.led.set(spec.id, h);
    void this.campaignAndLead(h).catch((err: unknown) => {
      if (!h.abort.signal.aborted) this.log.warn('job failed on this node', { job: spec.id, error: String(err) });
    });
  }

  private drop(id: string): void {
    const h = this.led.get(id);
    if (!h) return;
    this.led.delete(id);
    h.abort.abort();
    h.leader?.requestStop();
  }

  private async campaignAndLead(h: Led): Promise<void> {
    const { coordinator, client, nodeId, members, pool } = this.options;
    const leadership: Leadership = await coordinator.campaign(`job:${h.spec.id}`, nodeId, await this.leaseReady, { signal: h.abort.signal });
    let abandoned = false;
    try {
      if (h.abort.signal.aborted) return;
      const spec = h.spec;
      this.log.info('leading job', { job: spec.id });
      const registration = await registerWhenFree(coordinator, spec, h.abort.signal);
      try {
        // Workers of an earlier leader may still run (it died, they have not noticed yet): end them first.
        await Promise.allSettled(
          members.ready('compute').map((m) => pool.peerAt(m.id, m.address, Date.now() + 3000).call('job.worker.kill', { job: spec.id }, { timeoutMs: 5000 })),
        );
        const leader = new JobLeader({ spec, nodeId, backend: new StorageStateBackend(client), members, pool, log: this.log });
        h.leader = leader;
        leadership.onLost((reason) => {
          this.log.warn('lost the lead of a job', { job: spec.id, reason: String(reason) });
          leader.abandon(String(reason));
        });
        if (h.abort.signal.aborted) leader.requestStop();
        void registration.update({ state: 'running' });
        leader.onCheckpoint = (c) => void registration.update({ checkpointEpoch: c.epoch });
        leader.onGeneration = (generation, workers) => void registration.update({ generation, workers });
        registration.onStopRequest(() => leader.requestStop());
        // The running record carries live figures, as `shardflow run` keeps them, for `shardflow jobs`.
        let prev: MetricsSnapshot | undefined;
        const ticker = setInterval(() => {
          const snap = leader.metrics;
          if (!snap) return;
          void registration.update({ live: liveFigures(snap, prev), metrics: snap }).catch(() => undefined);
          prev = snap;
        }, 1000);
        ticker.unref();
        const outcome = await leader.run().finally(() => clearInterval(ticker));
        if (outcome === 'abandoned') {
          // Another node leads it now (or will): its record is that node's to write; campaign again behind it.
          await registration.close().catch(() => undefined);
          abandoned = true;
          return;
        }
        await registration.close({ state: outcome, ...(leader.metrics ? { metrics: leader.metrics, live: liveFigures(leader.metrics, prev) } : {}) });
        // A job that ran to its end, or was asked to stop, is done: its spec goes (this node stopping is not that).
        if (!this.stopped) await coordinator.delete(jobSpecKey(spec.id));
        this.log.info('job ended', { job: spec.id, state: outcome });
      } catch (err) {
        await registration.close({ state: 'failed', error: String(err) }).catch(() => undefined);
        throw err;
      }
    } finally {
      await leadership.resign().catch(() => undefined);
      if (this.led.get(h.spec.id) === h) this.led.delete(h.spec.id);
      if (abandoned && !this.stopped) {
        const spec = await getJobSpec(coordinator, h.spec.id).catch(() => undefined);
        if (spec) this.adopt(spec);
      }
    }
  }

  private leaderOf(job: unknown): JobLeader {
    const leader = this.led.get(String(job))?.leader;
    if (!leader) throw new UnavailableError(`this node does not lead job ${String(job)}`);
    return leader;
  }

  private async startWorker(spec: JobSpec, placement: WorkerPlacement, leaderId: string): Promise<void> {
    if (this.stopped) throw new UnavailableError(`compute node ${this.options.nodeId} is stopping`);
    const old = this.workers.get(spec.id);
    if (old) await old.kill();
    const job = await loadJob(spec.file);
    if (this.options.clusterDir) process.env.SHARDFLOW_DIR = this.options.clusterDir;
    const pipeline = await job.build(parseJobArgs(spec.args));
    if (!(pipeline instanceof Pipeline)) throw new InvalidArgumentError(`job ${spec.file} must build a pipeline`);
    const { pool, members } = this.options;
    const leaderAt = () => {
      const m = members.get(leaderId);
      if (!m) throw new UnavailableError(`the leader of job ${spec.id} (${leaderId}) is gone`);
      return pool.peerAt(m.id, m.address, Date.now() + 3000);
    };
    const worker = new ClusterWorker(
      pipeline.plan,
      {
        mode: spec.mode,
        ...(spec.trigger ? { trigger: spec.trigger } : {}),
        checkpointInterval: spec.checkpointInterval ?? '2s',
        state: new StorageStateBackend(this.options.client),
      },
      placement,
      {
        send: async (to, step, els) => {
          const w = placement.workers[to]!;
          await pool.peerAt(w.id, w.address, Date.now() + 3000).call('job.exchange', { job: spec.id, generation: placement.generation, step, from: placement.index, els }, { timeoutMs: 60_000 });
        },
        report: (r) => leaderAt().call<CommitRecord>('job.report', { job: spec.id, ...r }, { timeoutMs: REPORT_TIMEOUT_MS }),
      },
    );
    this.workers.set(spec.id, worker);
    for (const w of [...this.workerWaiters]) w();
    if ((this.earlyStops.get(spec.id) ?? -1) >= placement.generation) void worker.stop();
    this.earlyStops.delete(spec.id);
    void worker.done.then(
      (result) => this.log.info('worker ended', { job: spec.id, generation: placement.generation, index: placement.index, state: result.state }),
      (err: unknown) => {
        this.log.warn('worker failed', { job: spec.id, generation: placement.generation, error: String(err) });
        void Promise.resolve()
          .then(() => leaderAt().call('job.worker.failed', { job: spec.id, generation: placement.generation, index: placement.index, why: String(err) }))
          .catch(() => undefined);
      },
    ).finally(() => {
      if (this.workers.get(spec.id) === worker) this.workers.delete(spec.id);
    });
  }

  /** The worker of `job` at `generation`, waiting a little for one that is starting. */
  private async workerFor(job: unknown, generation: unknown): Promise<ClusterWorker> {
    const deadline = Date.now() + WORKER_WAIT_MS;
    for (;;) {
      const w = this.workers.get(String(job));
      if (w && w.placement.generation === generation) return w;
      if ((w && w.placement.generation > Number(generation)) || Date.now() >= deadline || this.stopped)
        throw new ClosedError(`no worker of job ${String(job)} generation ${String(generation)} here`);
      await new Promise<void>((r) => {
        const done = () => {
          clearTimeout(t);
          this.workerWaiters.delete(done);
          r();
        };
        const t = setTimeout(done, Math.max(1, deadline - Date.now()));
        this.workerWaiters.add(done);
      });
    }
  }

  /**
   * Stops the jobs this node leads at a checkpoint (another node takes each over) and the workers it hosts (their
   * leaders start the next generation without this node), and leaves.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.close().catch(() => undefined);
    const leading = [...this.led.values()];
    for (const h of leading) {
      h.abort.abort();
      h.leader?.requestStop();
    }
    await Promise.all([...this.workers.values()].map((w) => w.stop().catch(() => undefined)));
    await this.lease.revoke().catch(() => undefined);
  }
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
  return v;
}

function epochReport(p: Record<string, unknown>): EpochReport {
  int(p.generation, 'generation');
  int(p.index, 'index');
  int(p.epoch, 'epoch');
  if (p.kind !== 'barrier' && p.kind !== 'final' && p.kind !== 'end') throw new InvalidArgumentError('kind must be barrier, final or end');
  if (typeof p.positions !== 'object' || p.positions === null || Array.isArray(p.positions)) throw new InvalidArgumentError('positions must be an object');
  if (typeof p.metrics !== 'object' || p.metrics === null) throw new InvalidArgumentError('metrics must be an object');
  return p as unknown as EpochReport;
}


/** Registers the job's running record, waiting out a dead runner's record (it goes with that runner's lease). */
async function registerWhenFree(coordinator: Coordinator, spec: JobSpec, signal: AbortSignal): Promise<JobRegistration> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await JobRegistration.register(coordinator, { id: spec.id, file: spec.file, mode: spec.mode, trigger: spec.trigger ?? null });
    } catch (err) {
      if (!(err instanceof BusyError) || attempt >= 100 || signal.aborted) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
