/**
 * The cluster directory (`.shardflow` by default): what a local cluster keeps on disk, and how a client or command
 * finds a running cluster from it.
 *
 *   cluster.json           { version, coordinator: { kind: 'embedded', host, port } | { kind: 'etcd', endpoints, prefix },
 *                            services?: path of the module compute nodes host,
 *                            autoscale?: { intervalMs?, storage?: policy, compute?: policy,
 *                                          provisioner?: { kind: 'local' } | { kind: 'command', command, ... } } }
 *   secret                 the cluster secret, mode 0600
 *   coordinator/           the embedded coordinator's state file, log and pid
 *   nodes/<id>/node.json   { id, role, pid, address, capacity, startedAt } for every node started from here
 *   nodes/<id>/data/       the node's LMDB files (storage nodes)
 *   nodes/<id>/node.log    the node's log
 */
import { readFile, writeFile, rename, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClusterNotRunningError, ConfigError } from '../errors/index.js';
import { readSecretFile } from '../wire/index.js';

export type CoordinatorAddress =
  | { kind: 'embedded'; host: string; port: number }
  | { kind: 'etcd'; endpoints: string[]; prefix?: string };

export interface ClusterFile {
  version: 1;
  coordinator: CoordinatorAddress;
  createdAt: string;
  /** The services module (absolute path) local compute nodes host, if any. */
  services?: string;
  /**
   * How `shardflow autoscale` scales the cluster: a scale policy per tier (autoscale/policy-config.ts), the sampling
   * interval, and the provisioner. Kept as written; checked, with errors naming the field, by
   * `parseAutoscaleConfig` (cluster/autoscale-config.ts) when the autoscaler starts.
   *
   * @example
   * ```json
   * "autoscale": {
   *   "intervalMs": 5000,
   *   "storage": { "metric": "bytes", "target": 1073741824, "highWatermark": 1.2, "lowWatermark": 0.5,
   *                "minNodes": 3, "maxNodes": 12, "scaleOutCooldownMs": 300000, "scaleInCooldownMs": 3600000,
   *                "stabilizationMs": 60000 },
   *   "provisioner": { "kind": "command", "command": ["./my-scaler.sh", "{tier}", "{count}", "{nodes}"] }
   * }
   * ```
   */
  autoscale?: Record<string, unknown>;
}

export type NodeRole = 'storage' | 'compute';

export interface LocalNodeFile {
  id: string;
  role: NodeRole;
  pid?: number;
  address?: string;
  capacity: number;
  startedAt?: string;
}

export const DEFAULT_CLUSTER_DIR = '.shardflow';

/** Paths inside one cluster directory. */
export class ClusterDir {
  readonly root: string;
  constructor(dir: string = DEFAULT_CLUSTER_DIR) {
    this.root = resolve(dir);
  }
  get clusterFile(): string {
    return join(this.root, 'cluster.json');
  }
  get secretFile(): string {
    return join(this.root, 'secret');
  }
  get coordinatorDir(): string {
    return join(this.root, 'coordinator');
  }
  get nodesDir(): string {
    return join(this.root, 'nodes');
  }
  nodeDir(id: string): string {
    return join(this.nodesDir, id);
  }
  nodeFile(id: string): string {
    return join(this.nodeDir(id), 'node.json');
  }
  nodeDataDir(id: string): string {
    return join(this.nodeDir(id), 'data');
  }
  nodeLog(id: string): string {
    return join(this.nodeDir(id), 'node.log');
  }

  /** Reads cluster.json; {@link ClusterNotRunningError} if there is none. */
  async readCluster(): Promise<ClusterFile> {
    let text: string;
    try {
      text = await readFile(this.clusterFile, 'utf8');
    } catch (cause) {
      throw new ClusterNotRunningError(`no cluster in ${this.root} (run 'shardflow up' first)`, { cause });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new ConfigError(`${this.clusterFile} is not valid JSON`, { cause });
    }
    const c = parsed as Partial<ClusterFile>;
    if (c.version !== 1 || typeof c.coordinator !== 'object' || c.coordinator === null) {
      throw new ConfigError(`${this.clusterFile} is not a shardflow cluster file`);
    }
    return c as ClusterFile;
  }

  async writeCluster(file: ClusterFile): Promise<void> {
    await writeJsonAtomic(this.clusterFile, file);
  }

  readSecret(): Promise<Buffer> {
    return readSecretFile(this.secretFile);
  }

  async readNode(id: string): Promise<LocalNodeFile | undefined> {
    try {
      return JSON.parse(await readFile(this.nodeFile(id), 'utf8')) as LocalNodeFile;
    } catch {
      return undefined;
    }
  }

  async writeNode(node: LocalNodeFile): Promise<void> {
    await writeJsonAtomic(this.nodeFile(node.id), node);
  }

  /** Every node this directory has started, in id order. */
  async listNodes(): Promise<LocalNodeFile[]> {
    let ids: string[];
    try {
      ids = await readdir(this.nodesDir);
    } catch {
      return [];
    }
    const nodes = await Promise.all(ids.map((id) => this.readNode(id)));
    return nodes.filter((n): n is LocalNodeFile => n !== undefined).sort((a, b) => compareIds(a.id, b.id));
  }
}

/** Orders `s2` before `s10`. */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}
