/**
 * The processing jobs running on the cluster, for `shardflow status`: each job's state, mode, the node that runs it,
 * its records in and out (per second and totals) and its last checkpoint. Read from the jobs' records in the
 * coordinator (processing/job-registry.ts, the same ones `shardflow jobs` lists), so it needs no node to answer.
 */
import type { Coordinator } from '../coordination/coordinator.js';
import { listJobs, type RunningJobRecord, type RunningJobState } from '../processing/job-registry.js';

export interface JobStatus {
  id: string;
  state: RunningJobState;
  mode: 'stream' | 'batch';
  /** The batch trigger spec as given; null in stream mode or when the default is used. */
  trigger: string | null;
  /** The compute node running it (`run --on-cluster`); null when a `shardflow run` process of its own runs it. */
  node: string | null;
  pid: number;
  host: string;
  startedAt: string;
  /** From the job's last report (about once a second); null before its first. */
  inPerSec: number | null;
  outPerSec: number | null;
  recordsIn: number | null;
  recordsOut: number | null;
  /** The last checkpoint's epoch and how long ago it committed; null before the first. */
  checkpointEpoch: number | null;
  checkpointAgeMs: number | null;
}

/** The nodes as `status` found them, to tell which one runs a job. */
type NodePids = ReadonlyArray<{ id: string; role: string; pid: number | null }>;

/** Every running job's record (what `shardflow jobs` lists), with the node that runs it. */
export async function readJobsStatus(coordinator: Coordinator, nodes: NodePids): Promise<JobStatus[]> {
  const records = await listJobs(coordinator);
  const now = Date.now();
  return records.map((j) => jobStatus(j, nodes, now));
}

function jobStatus(j: RunningJobRecord, nodes: NodePids, now: number): JobStatus {
  const m = j.live;
  // A compute node runs the jobs it hosts in its own process: the record's pid is the node's.
  const node = nodes.find((n) => n.role === 'compute' && n.pid === j.pid)?.id ?? null;
  // The age was measured when the record was written: add the time since.
  const sinceUpdate = Math.max(0, now - Date.parse(j.updatedAt));
  const checkpointAgeMs = m && m.checkpointAgeMs !== null ? m.checkpointAgeMs + (Number.isFinite(sinceUpdate) ? sinceUpdate : 0) : null;
  return {
    id: j.id,
    state: j.state,
    mode: j.mode,
    trigger: j.trigger,
    node,
    pid: j.pid,
    host: j.host,
    startedAt: j.startedAt,
    inPerSec: m ? m.inPerSec : null,
    outPerSec: m ? m.outPerSec : null,
    recordsIn: m ? m.recordsIn : null,
    recordsOut: m ? m.recordsOut : null,
    checkpointEpoch: j.checkpointEpoch ?? m?.checkpointEpoch ?? null,
    checkpointAgeMs,
  };
}

export function formatJobs(jobs: readonly JobStatus[]): string[] {
  if (jobs.length === 0) return [];
  const out = ['jobs:'];
  for (const j of jobs) {
    const mode = j.mode + (j.trigger ? ` (${j.trigger})` : '');
    const where = j.node !== null ? `on ${j.node} (pid ${j.pid})` : `pid ${j.pid} on ${j.host}`;
    const flow =
      j.recordsIn === null
        ? 'no figures yet'
        : `in ${rate(j.inPerSec!)}/s (${j.recordsIn})  out ${rate(j.outPerSec!)}/s (${j.recordsOut})`;
    const ckpt =
      j.checkpointEpoch === null
        ? 'no checkpoint yet'
        : `checkpoint epoch ${j.checkpointEpoch}${j.checkpointAgeMs !== null ? `, ${(j.checkpointAgeMs / 1000).toFixed(1)}s ago` : ''}`;
    out.push(`  ${j.id}  ${j.state}  ${mode}  ${where}  ${flow}  ${ckpt}`);
  }
  return out;
}

function rate(n: number): string {
  return n >= 100 ? Math.round(n).toString() : n.toFixed(1);
}
