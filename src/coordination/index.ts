/**
 * Cluster metadata: the {@link Coordinator} interface, its two implementations (the embedded coordinator and
 * etcd), leader election, and membership.
 *
 * @example
 * ```ts
 * import { createCoordinator, registerNode, watchMembers } from './coordination/index.js';
 * const coordinator = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port: 2380, secret });
 * const me = await registerNode(coordinator, { id: 'n1', role: 'storage', address: '127.0.0.1:7000', capacity: 1 });
 * ```
 */
import { InvalidArgumentError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import type { Coordinator } from './coordinator.js';
import { RemoteCoordinator } from './embedded-client.js';

export type { CasResult, Coordinator, Entry, Lease, Leadership, Watch, WatchEvent } from './coordinator.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export { EmbeddedCoordinatorServer, type EmbeddedCoordinatorServerOptions } from './embedded-server.js';
export { RemoteCoordinator, type RemoteCoordinatorOptions } from './embedded-client.js';
export type { EtcdCoordinator, EtcdCoordinatorOptions } from './etcd-coordinator.js';
export { campaign, leader } from './election.js';
export {
  registerNode,
  watchMembers,
  type MemberChanges,
  type MemberEvent,
  type MemberInfo,
  type MemberRole,
  type MemberState,
  type MembershipWatch,
  type NodeInfo,
  type NodeRegistration,
  type RegisterOptions,
} from './membership.js';
export * from './keys.js';
export { MAX_KEY_BYTES, MAX_VALUE_BYTES, MIN_TTL_MS, MAX_TTL_MS } from './validate.js';

/** Where the coordinator is: the embedded one (our wire protocol) or etcd. */
export type CoordinatorConfig =
  | { kind: 'embedded'; host: string; port: number; secret: Uint8Array; name?: string; logger?: Logger }
  | { kind: 'etcd'; endpoints: string[]; prefix?: string; logger?: Logger };

/**
 * Makes the coordinator client a config names. Connections open lazily: an unreachable coordinator shows as a
 * `CoordinatorError` from the first call, not from here.
 *
 * @example
 * ```ts
 * const etcd = await createCoordinator({ kind: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/c1' });
 * ```
 */
export async function createCoordinator(config: CoordinatorConfig): Promise<Coordinator> {
  switch (config.kind) {
    case 'embedded': {
      const { kind: _kind, ...options } = config;
      return new RemoteCoordinator(options);
    }
    case 'etcd': {
      const { kind: _kind, ...options } = config;
      // Loaded on use: the etcd client (gRPC, protobuf) costs every process ~0.4 s of start-up otherwise.
      const { EtcdCoordinator } = await import('./etcd-coordinator.js');
      return new EtcdCoordinator(options);
    }
    default:
      throw new InvalidArgumentError(`unknown coordinator kind ${String((config as { kind: unknown }).kind)}`);
  }
}
