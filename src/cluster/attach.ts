/**
 * A cluster directory for a cluster that runs elsewhere: `shardflow attach` writes the coordinator's address and a
 * copy of the cluster secret into a directory and starts nothing, so every command that takes `--dir` (`status`,
 * `kv`, `rebalance`, `run`, `jobs`, `autoscale` …) works from this host against nodes on others (docs/deploy.md).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { openCoordinator } from '../client/index.js';
import { MEMBERS_PREFIX } from '../coordination/index.js';
import { ClusterDir, type CoordinatorAddress } from '../config/cluster-dir.js';
import { ConfigError, UnavailableError } from '../errors/index.js';
import { readSecretFile } from '../wire/index.js';

export interface AttachOptions {
  dir: string;
  coordinator: CoordinatorAddress;
  /** The cluster secret (64 hex digits, mode 0600), copied into the directory. */
  secretFile: string;
  /** Check that the coordinator answers (default true); the directory is not kept when it does not. */
  check?: boolean;
}

/**
 * Makes (or confirms) a cluster directory for the cluster at `coordinator`; returns how many nodes are registered.
 * @throws ConfigError if the secret file is unusable, or the directory belongs to another cluster (another
 *   coordinator or another secret); UnavailableError if the coordinator does not answer.
 *
 * @example
 * ```ts
 * await attachClusterDir({ dir: 'prod', coordinator: { kind: 'etcd', endpoints: ['http://10.0.0.1:2379'] }, secretFile: '/etc/shardflow/secret' });
 * const client = await connect({ dir: 'prod' });
 * ```
 */
export async function attachClusterDir(options: AttachOptions): Promise<{ dir: string; members: number | undefined }> {
  const secret = await readSecretFile(options.secretFile);
  const dir = new ClusterDir(options.dir);
  const fresh = !existsSync(dir.clusterFile);
  if (!fresh) {
    const existing = await dir.readCluster();
    if (JSON.stringify(existing.coordinator) !== JSON.stringify(options.coordinator))
      throw new ConfigError(`${dir.root} already belongs to a cluster with another coordinator`, { details: { coordinator: existing.coordinator } });
  }
  if (existsSync(dir.secretFile)) {
    const mine = (await readFile(dir.secretFile, 'utf8')).trim().toLowerCase();
    if (mine !== secret.toString('hex')) throw new ConfigError(`${dir.root} already holds another cluster secret`);
  }
  await mkdir(dir.root, { recursive: true, mode: 0o700 });
  const secretIsNew = !existsSync(dir.secretFile);
  if (secretIsNew) await writeFile(dir.secretFile, secret.toString('hex') + '\n', { mode: 0o600 });
  if (fresh) await dir.writeCluster({ version: 1, coordinator: options.coordinator, createdAt: new Date().toISOString() });
  if (options.check === false) return { dir: dir.root, members: undefined };
  try {
    const { coordinator } = await openCoordinator({ dir: dir.root });
    try {
      return { dir: dir.root, members: (await coordinator.list(MEMBERS_PREFIX)).length };
    } finally {
      await coordinator.close();
    }
  } catch (cause) {
    // Only what this call wrote goes: the directory may hold other things.
    if (fresh) await rm(dir.clusterFile, { force: true });
    if (secretIsNew) await rm(dir.secretFile, { force: true });
    throw new UnavailableError(`the coordinator does not answer: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
