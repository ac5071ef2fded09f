/** Opening a client: from a cluster directory, or from a coordinator address and the secret. */
import { Catalog } from '../keyspace/index.js';
import { ClusterDir, type CoordinatorAddress } from '../config/cluster-dir.js';
import type { Coordinator } from '../coordination/coordinator.js';
import { createCoordinator } from '../coordination/index.js';
import { ShardflowClient } from './client.js';
import { MemberView } from './member-view.js';

export type ConnectOptions =
  | { dir?: string; timeoutMs?: number; name?: string }
  | { coordinator: CoordinatorAddress; secret: Uint8Array; timeoutMs?: number; name?: string };

/** Opens the coordinator a cluster directory (or an explicit address) names. */
export async function openCoordinator(options: ConnectOptions = {}): Promise<{ coordinator: Coordinator; secret: Buffer | Uint8Array }> {
  let address: CoordinatorAddress;
  let secret: Uint8Array;
  if ('coordinator' in options) {
    address = options.coordinator;
    secret = options.secret;
  } else {
    const dir = new ClusterDir(options.dir);
    address = (await dir.readCluster()).coordinator;
    secret = await dir.readSecret();
  }
  const coordinator =
    address.kind === 'embedded'
      ? await createCoordinator({ kind: 'embedded', host: address.host, port: address.port, secret })
      : await createCoordinator({ kind: 'etcd', endpoints: address.endpoints, prefix: address.prefix });
  return { coordinator, secret };
}

/**
 * Connects to a cluster.
 *
 * @example
 * ```ts
 * import { connect } from 'shardflow';
 * const client = await connect({ dir: '.shardflow' });          // a local cluster started with `shardflow up`
 * await client.put('default', 'greeting', 'hello');
 * await client.close();
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<ShardflowClient> {
  const { coordinator, secret } = await openCoordinator(options);
  try {
    const [catalog, members] = await Promise.all([Catalog.open(coordinator), MemberView.open(coordinator)]);
    return new ShardflowClient(
      { coordinator, secret, timeoutMs: options.timeoutMs, name: options.name ?? 'client' },
      catalog,
      members,
    );
  } catch (err) {
    await coordinator.close();
    throw err;
  }
}
