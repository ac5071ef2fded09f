/**
 * The cluster's state as one plain object: what `shardflow status` prints and, later, what a dashboard reads.
 * Field names are part of the interface (`status --json`).
 */
import { ClusterDir, compareIds } from '../config/cluster-dir.js';
import { connect } from '../client/index.js';
import { Peer } from '../wire/index.js';
import { splitAddress } from '../client/index.js';
import { formatAutoscaler, readAutoscalerStates, type AutoscalerTierState } from './autoscale-state.js';
import { formatMigrations, readMigrationsStatus, type MigrationsStatus } from './status-migrations.js';
import { formatJobs, readJobsStatus, type JobStatus } from './status-jobs.js';
import { formatReplicas, summariseReplicas, type FollowerLink, type ReplicaSummary } from './status-replicas.js';

export interface NodeStatus {
  id: string;
  role: 'storage' | 'compute';
  /** `up` (registered and ready), `leaving`, or `down` (known here but not registered). */
  state: string;
  address: string | null;
  pid: number | null;
  capacity: number;
  /** Storage nodes only. */
  partitions?: number;
  keys?: number;
  bytes?: number;
  /** Compute nodes only: the services announced, calls running now, calls completed per second. */
  services?: string[];
  inFlight?: number;
  callsPerSec?: number;
}

/** A namespace with its copies: counts for every namespace, followers, lag and the per-partition list if replicated. */
export interface NamespaceStatus extends ReplicaSummary {
  name: string;
  scheme: 'hash' | 'range';
  epoch: number;
  partitions: number;
}

export interface ClusterStatus {
  dir: string;
  coordinator: string;
  nodes: NodeStatus[];
  namespaces: NamespaceStatus[];
  /** The autoscaler's last decision and recent actions per tier (empty if it never ran). */
  autoscaler: AutoscalerTierState[];
  /** Moves in flight (and stuck ones, with why) and the running rebalance, if any. */
  migrations: MigrationsStatus;
  /** The processing jobs running now (what `shardflow jobs` lists), with the node that runs each. */
  jobs: JobStatus[];
}

/** Reads membership and the catalog, and asks each storage node for its numbers. */
export async function clusterStatus(dirPath?: string): Promise<ClusterStatus> {
  const dir = new ClusterDir(dirPath);
  const cluster = await dir.readCluster();
  const secret = await dir.readSecret();
  const local = await dir.listNodes();
  const client = await connect({ dir: dir.root, timeoutMs: 3000 });
  try {
    const members = client.members.all();
    const ids = new Set([...members.map((m) => m.id), ...local.map((n) => n.id)]);
    // Each follower's view of its leaders, for the replicas' lag; a node that does not answer is left out.
    const following: Record<string, Record<string, FollowerLink>> = {};
    const nodes = await Promise.all(
      [...ids].sort(compareIds).map(async (id): Promise<NodeStatus> => {
        const m = client.members.get(id);
        const l = local.find((n) => n.id === id);
        const status: NodeStatus = {
          id,
          role: m?.role ?? l?.role ?? 'storage',
          state: m ? (m.state === 'ready' ? 'up' : m.state) : 'down',
          address: m?.address ?? null,
          pid: m?.pid ?? null,
          capacity: m?.capacity ?? l?.capacity ?? 1,
        };
        if (status.role === 'storage') {
          Object.assign(status, { partitions: 0, keys: 0, bytes: 0 });
          const s = m && m.state === 'ready' ? await storageStats(m.address, secret) : undefined;
          if (s) {
            Object.assign(status, { partitions: s.partitions, keys: s.keys, bytes: s.bytes });
            if (s.following) following[id] = s.following;
          }
        } else {
          Object.assign(status, { services: Array.isArray(m?.services) ? m.services : [], inFlight: 0, callsPerSec: 0 });
          if (m) Object.assign(status, await computeStats(m.address, secret));
        }
        return status;
      }),
    );
    const namespaces = client.namespaces().map((name): NamespaceStatus => {
      const t = client.catalog.table(name);
      return { name, scheme: t.scheme, epoch: t.epoch, partitions: t.partitions().length, ...summariseReplicas(t, following) };
    });
    const c = cluster.coordinator;
    const coordinator = c.kind === 'embedded' ? `embedded ${c.host}:${c.port}` : `etcd ${c.endpoints.join(',')}`;
    const autoscaler = await readAutoscalerStates(client.coordinator).catch(() => []);
    const migrations = await readMigrationsStatus(client.coordinator, client.catalog, client.members);
    const jobs = await readJobsStatus(client.coordinator, nodes);
    return { dir: dir.root, coordinator, nodes, namespaces, autoscaler, migrations, jobs };
  } finally {
    await client.close();
  }
}

/** Asks one node for its `node.stats`; undefined if it does not answer in time. */
async function nodeStats<T>(address: string, secret: Uint8Array): Promise<T | undefined> {
  const [host, port] = splitAddress(address);
  const peer = new Peer({ host, port, secret, name: 'status', connectTimeoutMs: 2000 });
  try {
    return await peer.call<T>('node.stats', null, { timeoutMs: 3000 });
  } catch {
    return undefined;
  } finally {
    peer.close();
  }
}

function storageStats(address: string, secret: Uint8Array) {
  return nodeStats<{ partitions: number; keys: number; bytes: number; following?: Record<string, FollowerLink> }>(address, secret);
}

async function computeStats(address: string, secret: Uint8Array): Promise<Partial<NodeStatus>> {
  const s = await nodeStats<{ inFlight: number; callsPerSec: number }>(address, secret);
  return s ? { inFlight: s.inFlight, callsPerSec: s.callsPerSec } : {};
}

/** The status as an aligned text table; `partitions` lists every partition of replicated namespaces. */
export function formatStatus(status: ClusterStatus, options: { partitions?: boolean } = {}): string {
  const header = ['ID', 'ROLE', 'STATE', 'ADDRESS', 'PID', 'PARTITIONS', 'KEYS', 'BYTES', 'IN-FLIGHT', 'CALLS/S', 'SERVICES'];
  const rows = status.nodes.map((n) => [
    n.id,
    n.role,
    n.state,
    n.address ?? '-',
    n.pid === null ? '-' : String(n.pid),
    n.partitions === undefined ? '-' : String(n.partitions),
    n.keys === undefined ? '-' : String(n.keys),
    n.bytes === undefined ? '-' : formatBytes(n.bytes),
    n.inFlight === undefined ? '-' : String(n.inFlight),
    n.callsPerSec === undefined ? '-' : n.callsPerSec.toFixed(1),
    n.services === undefined ? '-' : n.services.join(',') || '(none)',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [`cluster ${status.dir} (coordinator: ${status.coordinator})`, line(header), ...rows.map(line)];
  if (status.namespaces.length > 0) {
    out.push('', 'namespaces:');
    for (const ns of status.namespaces) {
      out.push(`  ${ns.name}  ${ns.scheme}  ${ns.partitions} partitions  epoch ${ns.epoch}`);
      out.push(...formatReplicas(ns, { all: options.partitions }));
    }
  }
  if (status.autoscaler?.length) out.push('', ...formatAutoscaler(status.autoscaler));
  const moving = formatMigrations(status.migrations);
  if (moving.length) out.push('', ...moving);
  if (status.jobs?.length) out.push('', ...formatJobs(status.jobs));
  return out.join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
