/**
 * A local cluster: one embedded coordinator process and N storage + M compute node processes on this host, all
 * described by one cluster directory. `shardflow up` and `down` are thin wrappers over this; tests and benchmarks
 * use it directly.
 *
 * Starting again on an existing directory restarts the same nodes on their data (ids and files are kept), which is
 * how a cluster survives `down` / `up` and how a test restarts killed nodes.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import {
  ClusterDir,
  compareIds,
  type ClusterFile,
  type CoordinatorAddress,
  type LocalNodeFile,
  type NodeRole,
} from '../config/cluster-dir.js';
import { ConfigError, InvalidArgumentError } from '../errors/index.js';
import { generateSecretFile } from '../wire/index.js';
import { join, resolve } from 'node:path';
import { connect } from '../client/index.js';
import { checkNamespaceName } from '../keyspace/names.js';
import { MAX_COPIES } from '../keyspace/routing-table.js';
import { isAlive, spawnShardflow, terminate } from './spawn.js';
import { assertLocalTier } from './local-only.js';

export interface UpOptions {
  dir?: string;
  storage: number;
  compute: number;
  /** Namespace created when the cluster is first started (default `default`, hash). */
  defaultNamespace?: string | false;
  /** Copies of the default namespace's partitions (default: 3 with 3 or more storage nodes, else 1). */
  copies?: number;
  /**
   * An external coordinator (etcd) for a new cluster directory; without it the cluster runs its own embedded
   * coordinator process.
   */
  coordinator?: CoordinatorAddress;
  /** The services module compute nodes host (kept in cluster.json for later starts and `scale`). */
  services?: string;
}

export interface LocalCluster {
  dir: ClusterDir;
  /** The embedded coordinator's process (absent with etcd). */
  coordinatorPid?: number;
  nodes: LocalNodeFile[];
}

/** Most nodes of one role `up` will start on one host. */
export const MAX_LOCAL_NODES = 64;

function checkCount(value: number, what: string, min: number): void {
  if (!Number.isInteger(value) || value < min || value > MAX_LOCAL_NODES) {
    throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${MAX_LOCAL_NODES}, not ${value}`);
  }
}

/**
 * Starts (or restarts) a local cluster and resolves once every node is ready.
 *
 * @example
 * ```ts
 * const cluster = await startLocalCluster({ dir: '.shardflow', storage: 3, compute: 1 });
 * const client = await connect({ dir: '.shardflow' });
 * ```
 */
export async function startLocalCluster(options: UpOptions): Promise<LocalCluster> {
  // Every argument is checked before anything is written or started: a refused `up` leaves no cluster.json behind
  // (which would make the next `up` treat the directory as an existing cluster and never create its namespace).
  checkCount(options.storage, '--storage', 1);
  checkCount(options.compute, '--compute', 0);
  if (options.copies !== undefined) {
    if (!Number.isInteger(options.copies) || options.copies < 1 || options.copies > MAX_COPIES) {
      throw new InvalidArgumentError(`--copies must be a whole number from 1 to ${MAX_COPIES}, not ${options.copies}`);
    }
    if (options.copies > options.storage) {
      throw new InvalidArgumentError(
        `--copies ${options.copies} needs at least ${options.copies} storage nodes (each copy of a partition is on another node); ` +
          `--storage is ${options.storage}: give --storage ${options.copies} or more, or fewer --copies`,
        { details: { copies: options.copies, storage: options.storage } },
      );
    }
  }
  if (typeof options.defaultNamespace === 'string') checkNamespaceName(options.defaultNamespace);
  const services = options.services === undefined ? undefined : resolve(options.services);
  if (services !== undefined && !existsSync(services)) throw new ConfigError(`services module ${services} does not exist`);
  const dir = new ClusterDir(options.dir);
  const fresh = !existsSync(dir.clusterFile);
  if (!fresh) {
    const existing = await dir.readCluster();
    if (options.coordinator && JSON.stringify(options.coordinator) !== JSON.stringify(existing.coordinator)) {
      throw new ConfigError(`${dir.root} already belongs to a cluster with another coordinator`);
    }
    if (!existsSync(dir.nodesDir) && !existsSync(dir.coordinatorDir)) {
      // Made by `shardflow attach`: its nodes run elsewhere, and local s1, s2 … would clash with theirs.
      throw new ConfigError(
        `${dir.root} points at a cluster that runs elsewhere (made by 'shardflow attach'); 'up' starts local clusters only: ` +
          `use another --dir for a local cluster, or add nodes to that cluster with 'shardflow node' on its hosts (docs/deploy.md)`,
        { details: { dir: dir.root } },
      );
    }
  }

  // What was here before, which an undo must leave alone (node data above all).
  const existed = {
    root: existsSync(dir.root),
    secret: existsSync(dir.secretFile),
    coordinator: existsSync(dir.coordinatorDir),
    nodes: new Set((await dir.listNodes().catch(() => [])).map((n) => n.id)),
  };
  try {
    return await startChecked(dir, options, fresh, services);
  } catch (err) {
    // A first start that fails leaves nothing behind: what it started stops, what it wrote goes.
    if (fresh) await undoFreshStart(dir, existed);
    throw err;
  }
}

async function startChecked(dir: ClusterDir, options: UpOptions, fresh: boolean, services: string | undefined): Promise<LocalCluster> {
  await mkdir(dir.root, { recursive: true, mode: 0o700 });
  if (fresh) {
    if (!existsSync(dir.secretFile)) await generateSecretFile(dir.secretFile);
    const file: ClusterFile = {
      version: 1,
      coordinator: options.coordinator ?? { kind: 'embedded', host: '127.0.0.1', port: 0 },
      createdAt: new Date().toISOString(),
    };
    await dir.writeCluster(file);
  }
  let cluster = await dir.readCluster();
  if (services !== undefined && cluster.services !== services) {
    cluster = { ...cluster, services };
    await dir.writeCluster(cluster);
  }
  const coordinatorPid = cluster.coordinator.kind === 'embedded' ? await ensureCoordinator(dir) : undefined;

  // Nodes this directory already knows are restarted; more are added to reach the asked-for counts.
  const known = await dir.listNodes();
  const wanted: LocalNodeFile[] = [];
  for (const [role, count, prefix] of [
    ['storage', options.storage, 's'],
    ['compute', options.compute, 'c'],
  ] as const) {
    const mine = known.filter((n) => n.role === role).sort((a, b) => compareIds(a.id, b.id));
    for (let i = 1; wanted.filter((n) => n.role === role).length < count; i++) {
      const id = `${prefix}${i}`;
      const existing = mine.find((n) => n.id === id);
      wanted.push(existing ?? { id, role: role as NodeRole, capacity: 1 });
    }
  }
  const nodes = await Promise.all(wanted.map((n) => ensureNode(dir, n, cluster.services)));

  if (fresh && options.defaultNamespace !== false) {
    const client = await connect({ dir: dir.root });
    try {
      await client.createNamespace(options.defaultNamespace ?? 'default', { scheme: 'hash', copies: options.copies });
    } finally {
      await client.close();
    }
  }
  return { dir, coordinatorPid, nodes };
}

/**
 * Stops whatever a failed first start started and removes what it wrote, so the next `up` starts afresh; the node
 * logs stay (the error may point at one), and the directory itself if it holds nothing else.
 */
async function undoFreshStart(
  dir: ClusterDir,
  existed: { root: boolean; secret: boolean; coordinator: boolean; nodes: ReadonlySet<string> },
): Promise<void> {
  if (existsSync(dir.clusterFile)) await stopLocalCluster(dir.root).catch(() => undefined);
  for (const n of await dir.listNodes()) {
    if (n.pid !== undefined && isAlive(n.pid)) await terminate(n.pid).catch(() => undefined);
    if (existed.nodes.has(n.id)) continue;
    await rm(dir.nodeFile(n.id), { force: true });
    await rm(dir.nodeDataDir(n.id), { recursive: true, force: true });
  }
  if (!existed.coordinator) await rm(dir.coordinatorDir, { recursive: true, force: true });
  await rm(dir.clusterFile, { force: true });
  if (!existed.secret) await rm(dir.secretFile, { force: true });
  if (!existed.root) {
    // Nothing but empty node directories (or their logs) left: keep it only when a log explains the failure.
    const ids = await readdir(dir.nodesDir).catch(() => [] as string[]);
    const logs = (await Promise.all(ids.map((id) => readdir(dir.nodeDir(id)).catch(() => [] as string[])))).flat();
    if (logs.length === 0) await rm(dir.root, { recursive: true, force: true });
  }
}

async function ensureCoordinator(dir: ClusterDir): Promise<number> {
  const pidFile = join(dir.coordinatorDir, 'pid');
  const running = await readPid(pidFile);
  if (running !== undefined && isAlive(running)) return running;
  const spawned = await spawnShardflow(['coordinator', '--dir', dir.root], join(dir.coordinatorDir, 'coordinator.log'));
  return spawned.pid;
}

async function ensureNode(dir: ClusterDir, node: LocalNodeFile, services: string | undefined): Promise<LocalNodeFile> {
  const current = await dir.readNode(node.id);
  if (current?.pid !== undefined && isAlive(current.pid)) return current;
  const args = ['node', '--role', node.role, '--id', node.id, '--dir', dir.root, '--capacity', String(node.capacity)];
  if (node.role === 'compute' && services) args.push('--services', services);
  const spawned = await spawnShardflow(args, dir.nodeLog(node.id));
  const started: LocalNodeFile = {
    ...node,
    pid: spawned.pid,
    address: String(spawned.ready.address),
    startedAt: new Date().toISOString(),
  };
  await dir.writeNode(started);
  return started;
}

/** Restarts one node of a local cluster that has stopped (or was killed). */
export async function restartLocalNode(dirPath: string, id: string): Promise<LocalNodeFile> {
  const dir = new ClusterDir(dirPath);
  const node = await dir.readNode(id);
  if (!node) throw new InvalidArgumentError(`no node ${id} in ${dir.root}`);
  return ensureNode(dir, node, (await dir.readCluster()).services);
}

/** Stops every node (cleanly, SIGTERM first), then the coordinator. Resolves with what happened to each. */
export async function stopLocalCluster(dirPath?: string): Promise<Record<string, string>> {
  const dir = new ClusterDir(dirPath);
  await dir.readCluster();
  const nodes = await dir.listNodes();
  const outcome: Record<string, string> = {};
  // Compute first (they hold no data), then storage, then the coordinator they all report to. Storage nodes get
  // SIGINT: stopping together, none would take another's leads (SIGTERM hands them off first).
  for (const role of ['compute', 'storage'] as const) {
    await Promise.all(
      nodes
        .filter((n) => n.role === role)
        .map(async (n) => {
          outcome[n.id] = n.pid ? await terminate(n.pid, 10_000, role === 'storage' ? 'SIGINT' : 'SIGTERM') : 'gone';
        }),
    );
  }
  const pid = await readPid(join(dir.coordinatorDir, 'pid'));
  outcome.coordinator = pid ? await terminate(pid) : 'gone';
  return outcome;
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const { readFile } = await import('node:fs/promises');
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** What {@link scaleLocalCompute} does (or, for a dry run, would do). */
export interface ComputeScale {
  /** Compute nodes running before. */
  from: number;
  to: number;
  /** Nodes started (restarted stopped ones first, then new ids). */
  started: string[];
  /** Nodes drained and stopped (the newest ids). */
  stopped: string[];
  dryRun?: boolean;
}

/**
 * Sets the number of compute nodes of a local cluster: starts new ones (ready before this resolves), or drains and
 * stops the newest ones (SIGTERM: they stop taking calls, finish what they run, then exit). With `dryRun`, only says
 * which nodes would start or stop, and changes nothing. Storage scaling moves data and comes with the migration
 * machinery.
 */
export async function scaleLocalCompute(
  dirPath: string | undefined,
  count: number,
  options: { dryRun?: boolean } = {},
): Promise<ComputeScale> {
  checkCount(count, 'compute', 0);
  const dir = new ClusterDir(dirPath);
  const cluster = await dir.readCluster();
  // Only this directory's own processes: new local ids would clash with compute nodes that run elsewhere.
  await assertLocalTier(dir.root, 'compute');
  const all = (await dir.listNodes()).filter((n) => n.role === 'compute');
  const running = all.filter((n) => isAlive(n.pid));
  const toStart: LocalNodeFile[] = [];
  let victims: LocalNodeFile[] = [];
  if (running.length < count) {
    const ids = new Set(all.map((n) => n.id));
    // Restart stopped ones first (in id order), then take new ids.
    for (const n of all) if (!isAlive(n.pid) && toStart.length + running.length < count) toStart.push(n);
    for (let i = 1; toStart.length + running.length < count; i++) {
      if (!ids.has(`c${i}`)) toStart.push({ id: `c${i}`, role: 'compute', capacity: 1 });
    }
  } else if (running.length > count) {
    victims = running.sort((a, b) => compareIds(b.id, a.id)).slice(0, running.length - count);
  }
  const outcome: ComputeScale = {
    from: running.length,
    to: count,
    started: toStart.map((n) => n.id),
    stopped: victims.map((n) => n.id),
    ...(options.dryRun ? { dryRun: true } : {}),
  };
  if (options.dryRun) return outcome;
  if (toStart.length > 0) await Promise.all(toStart.map((n) => ensureNode(dir, n, cluster.services)));
  await Promise.all(
    victims.map(async (n) => {
      await terminate(n.pid!, 60_000); // a drain may wait for long calls
      await rm(dir.nodeDir(n.id), { recursive: true, force: true }); // compute nodes keep nothing
    }),
  );
  return outcome;
}
