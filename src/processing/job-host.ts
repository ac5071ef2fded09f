/**
 * Jobs run by the compute tier: `shardflow run --on-cluster` writes a job spec under `/shardflow/job-specs/<id>`;
 * every compute node's JobHost campaigns for it (one coordinator election per job), and the winner runs it with its
 * keyed state and checkpoints in the storage tier. When that node dies its lease goes, another node wins the
 * election and resumes the job from its last checkpoint: nothing is restarted by hand, no record is lost or counted
 * twice in state (sinks are at-least-once; idempotent ones, like a namespace, end exact).
 *
 * This is the first step of distributed execution: a job runs whole on one compute node at a time. Spreading one
 * job's stages over several nodes (keyed stages by slot) builds on the same specs and state.
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
import type { Coordinator, Lease, Leadership, Watch } from '../coordination/coordinator.js';
import { JOB_SPECS_PREFIX, jobSpecKey } from '../coordination/index.js';
import { BusyError, InvalidArgumentError } from '../errors/index.js';
import { createLogger } from '../util/logger.js';
import { loadJob, parseJobArgs } from './job.js';
import { Pipeline } from './pipeline.js';
import { startJob, type JobHandle } from './runner.js';
import { StorageStateBackend, type StateStoreClient } from './storage-state.js';
import { checkJobId, JobRegistration, liveFigures } from './job-registry.js';
import type { MetricsSnapshot } from './metrics.js';

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

interface Hosted {
  spec: JobSpec;
  abort: AbortController;
  handle?: JobHandle;
}

export class JobHost {
  private readonly hosted = new Map<string, Hosted>();
  private watch: Watch | undefined;
  private stopped = false;
  private readonly log;

  private constructor(
    private readonly options: { nodeId: string; coordinator: Coordinator; client: StateStoreClient; clusterDir?: string },
    private readonly lease: Lease,
  ) {
    this.log = createLogger(`jobs:${options.nodeId}`);
  }

  static async start(options: { nodeId: string; coordinator: Coordinator; client: StateStoreClient; clusterDir?: string; leaseTtlMs?: number }): Promise<JobHost> {
    const lease = await options.coordinator.grantLease(options.leaseTtlMs ?? 3000);
    const host = new JobHost(options, lease);
    // Watch first, then list: a spec written in between is seen by one or the other (adopt is idempotent).
    host.watch = await options.coordinator.watch(JOB_SPECS_PREFIX, (e) => {
      if (e.type === 'put' && e.value) host.adopt(JSON.parse(e.value) as JobSpec);
      else if (e.type === 'delete') host.drop(e.key.slice(JOB_SPECS_PREFIX.length));
    });
    for (const e of await options.coordinator.list(JOB_SPECS_PREFIX)) host.adopt(JSON.parse(e.value) as JobSpec);
    return host;
  }

  /** Campaigns for a job; runs it when elected. */
  private adopt(spec: JobSpec): void {
    if (this.stopped || this.hosted.has(spec.id)) return;
    const h: Hosted = { spec, abort: new AbortController() };
    this.hosted.set(spec.id, h);
    void this.campaignAndRun(h).catch((err: unknown) => {
      if (!h.abort.signal.aborted) this.log.warn('job failed on this node', { job: spec.id, error: String(err) });
    });
  }

  private drop(id: string): void {
    const h = this.hosted.get(id);
    if (!h) return;
    this.hosted.delete(id);
    h.abort.abort();
    void h.handle?.stop();
  }

  private async campaignAndRun(h: Hosted): Promise<void> {
    const { coordinator, client, nodeId } = this.options;
    const leadership: Leadership = await coordinator.campaign(`job:${h.spec.id}`, nodeId, this.lease, { signal: h.abort.signal });
    try {
      if (h.abort.signal.aborted) return;
      const spec = h.spec;
      this.log.info('running job', { job: spec.id });
      const job = await loadJob(spec.file);
      if (this.options.clusterDir) process.env.SHARDFLOW_DIR = this.options.clusterDir;
      const pipeline = await job.build(parseJobArgs(spec.args));
      if (!(pipeline instanceof Pipeline)) throw new InvalidArgumentError(`job ${spec.file} must build a pipeline`);
      const registration = await registerWhenFree(coordinator, spec, h.abort.signal);
      try {
        const handle = startJob(pipeline.plan, {
          mode: spec.mode,
          ...(spec.trigger ? { trigger: spec.trigger } : {}),
          checkpointInterval: spec.checkpointInterval ?? '2s',
          state: new StorageStateBackend(client, { prefix: `job.${spec.id}.` }),
        });
        h.handle = handle;
        void registration.update({ state: 'running' });
        handle.on('checkpoint', (c: { epoch: number }) => void registration.update({ checkpointEpoch: c.epoch }));
        registration.onStopRequest(() => void handle.stop());
        // The running record carries live figures, as `shardflow run` keeps them, for `shardflow jobs`.
        let prev: MetricsSnapshot | undefined;
        const ticker = setInterval(() => {
          const snap = handle.metrics.snapshot();
          void registration.update({ live: liveFigures(snap, prev), metrics: snap }).catch(() => undefined);
          prev = snap;
        }, 1000);
        ticker.unref();
        const result = await handle.done.finally(() => clearInterval(ticker));
        await registration.close({ state: result.state === 'finished' ? 'finished' : 'stopped' });
        // A job that ran to its end, or was asked to stop, is done: its spec goes (this node stopping is not that).
        if (!this.stopped) await coordinator.delete(jobSpecKey(spec.id));
        this.log.info('job ended', { job: spec.id, state: result.state });
      } catch (err) {
        await registration.close({ state: 'failed', error: String(err) }).catch(() => undefined);
        throw err;
      }
    } finally {
      await leadership.resign().catch(() => undefined);
      if (this.hosted.get(h.spec.id) === h) this.hosted.delete(h.spec.id);
    }
  }

  /** Stops every job this node runs after a final checkpoint (another node takes each over), and leaves. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.close().catch(() => undefined);
    const running = [...this.hosted.values()];
    for (const h of running) h.abort.abort();
    await Promise.all(running.map((h) => h.handle?.stop().catch(() => undefined)));
    await this.lease.revoke().catch(() => undefined);
  }
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
