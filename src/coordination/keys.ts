/**
 * Where shardflow keeps its metadata in the coordinator's key space. Every key lives under {@link ROOT}, one folder
 * per kind of record, so a watch on a folder sees exactly one kind and `list(ROOT)` shows a whole cluster.
 *
 * ```
 * /shardflow/members/<nodeId>        JSON MemberInfo, attached to the node's lease
 * /shardflow/elections/<election>    the leader's candidate name, attached to the leader's lease
 * /shardflow/namespaces/<name>       JSON routing record (keyspace/routing-table.ts): owners, epoch, moves
 * /shardflow/migrations/<job>        JSON progress of one partition move, attached to its driver's lease
 * /shardflow/locks/<name>            JSON holder of a cluster-wide lock (e.g. `rebalance`), attached to its lease
 * /shardflow/autoscaler/<tier>      JSON recent decisions of the autoscaler for one tier (`storage`, `compute`)
 * /shardflow/jobs/<job>              JSON record of one running processing job (processing/job-registry.ts): file,
 *                                    mode, trigger, pid, state, latest metrics; attached to the running process's lease
 * /shardflow/job-specs/<job>         JSON spec of a job submitted to the compute tier (file, args, mode), until it ends
 * /shardflow/job-requests/<job>      JSON request to a running job (`{ action: 'stop', ... }`), written by
 *                                    `shardflow stop`, watched by the job, deleted by the job as it exits
 * ```
 *
 * Folders end with `/` so that a prefix never matches a sibling (`members/` does not match `membersX`).
 */

/** The root of every shardflow key. Isolation between clusters sharing one etcd is the etcd `prefix` option's job. */
export const ROOT = '/shardflow/';

/** Folder of the membership records. */
export const MEMBERS_PREFIX = `${ROOT}members/`;
/** Folder of the election keys. */
export const ELECTIONS_PREFIX = `${ROOT}elections/`;
/** Folder of the namespaces' routing records. */
export const NAMESPACES_PREFIX = `${ROOT}namespaces/`;

/** Folder of the migration job records. */
export const MIGRATIONS_PREFIX = `${ROOT}migrations/`;
/** Folder of the cluster-wide locks. */
export const LOCKS_PREFIX = `${ROOT}locks/`;

/** Key of one migration job's record. */
export function migrationJobKey(job: string): string {
  return MIGRATIONS_PREFIX + job;
}

/** Key of one cluster-wide lock. */
export function lockKey(name: string): string {
  return LOCKS_PREFIX + name;
}

/** Folder of the autoscaler's per-tier decision records. */
export const AUTOSCALER_PREFIX = `${ROOT}autoscaler/`;

/** Key of the autoscaler's record for one tier. */
export function autoscalerKey(tier: string): string {
  return AUTOSCALER_PREFIX + tier;
}

/** Key of one member's record. */
export function memberKey(nodeId: string): string {
  return MEMBERS_PREFIX + nodeId;
}

/** Key of one election. */
export function electionKey(election: string): string {
  return ELECTIONS_PREFIX + election;
}

/** Folder of the running processing jobs' records. */
export const JOBS_PREFIX = `${ROOT}jobs/`;
/** Folder of the requests to running jobs (stop). */
export const JOB_REQUESTS_PREFIX = `${ROOT}job-requests/`;
/** Folder of the jobs submitted to the compute tier (`run --on-cluster`), one spec per job until it ends. */
export const JOB_SPECS_PREFIX = `${ROOT}job-specs/`;

/** Key of one submitted job's spec. */
export function jobSpecKey(job: string): string {
  return JOB_SPECS_PREFIX + job;
}

/** Key of one running job's record. */
export function jobKey(job: string): string {
  return JOBS_PREFIX + job;
}

/** Key of the request to one running job. */
export function jobRequestKey(job: string): string {
  return JOB_REQUESTS_PREFIX + job;
}
