/**
 * shardflow: a distributed computing system for Node.js — partitioned storage nodes, stateless compute nodes, and
 * (coming) batch and stream processing on top. This is the one public entry; everything a user needs is exported
 * here, and nothing else is a stable interface.
 *
 * @example
 * ```ts
 * import { startLocalCluster, connect, stopLocalCluster } from 'shardflow';
 * await startLocalCluster({ dir: '.shardflow', storage: 3, compute: 1 });
 * const client = await connect({ dir: '.shardflow' });
 * await client.put('default', 'user:1', { name: 'Ada' });
 * console.log(await client.get('default', 'user:1'));
 * await client.close();
 * await stopLocalCluster('.shardflow');
 * ```
 *
 * @packageDocumentation
 */
export * from './errors/index.js';
export {
  connect,
  ShardflowClient,
  type ConnectOptions,
  type BatchOp,
  type Entry,
  type ScanOptions,
  type ScanEntry,
  type ServiceCallOptions,
  type ReadOptions,
} from './client/index.js';
export {
  startLocalCluster,
  stopLocalCluster,
  restartLocalNode,
  scaleLocalCompute,
  type UpOptions,
  type LocalCluster,
} from './cluster/local-cluster.js';
export { attachClusterDir, type AttachOptions } from './cluster/attach.js';
export { clusterStatus, type ClusterStatus, type NodeStatus, type NamespaceStatus } from './cluster/status.js';
export type { ReplicaSummary, PartitionReplicas, FollowerLink } from './cluster/status-replicas.js';
export { rebalanceLocal, scaleLocalStorage, type RebalanceOutput, type RebalanceReport } from './cluster/rebalance-local.js';
export { type MigrationsStatus, type MigrationStatus } from './cluster/status-migrations.js';
export { type JobStatus } from './cluster/status-jobs.js';
export {
  MigrationDriver,
  movePartition,
  moveBatch,
  planRebalance,
  planMerges,
  runMerges,
  readJobs,
  type DriverDeps,
  type DriverOptions,
  type JobRecord,
  type MoveBatch,
  type MoveResult,
  type PlannedMove,
  type RunOptions,
} from './migration/index.js';
export { AutoscaleLoop, type AutoscaleLoopOptions } from './cluster/autoscale-loop.js';
export { parseAutoscaleConfig, createProvisioner, type AutoscaleConfig, type ProvisionerConfig } from './cluster/autoscale-config.js';
export { TIER_METRICS } from './cluster/autoscale-metrics.js';
export { readAutoscalerStates, type AutoscaleDecision, type AutoscalerTierState } from './cluster/autoscale-state.js';
export {
  LocalProvisioner,
  TIERS,
  type LocalProvisionerOptions,
  type Provisioner,
  type ScaleOutcome,
  type Tier,
} from './cluster/provisioner.js';
export { CommandProvisioner, type CommandProvisionerOptions } from './cluster/provisioner-command.js';
export { Autoscaler, validatePolicy, type Decision, type ScalePolicy } from './autoscale/index.js';
export {
  createCoordinator,
  registerNode,
  watchMembers,
  EmbeddedCoordinatorServer,
  type CoordinatorConfig,
  type Coordinator,
  type Entry as CoordinatorEntry,
  type Lease,
  type Leadership,
  type Watch,
  type WatchEvent,
  type MemberEvent,
  type MemberInfo,
} from './coordination/index.js';
export { StorageNode, type StorageNodeOptions, type StorageStats } from './storage/storage-node.js';
export { ComputeNode, type ComputeNodeOptions, type ComputeStats } from './compute/compute-node.js';
export { loadServices, type ServiceContext, type ServiceDefinition, type ServiceHandler } from './compute/services.js';
export { RoutingTable, type NamespaceOptions, type Scheme } from './keyspace/index.js';
export {
  keySlot,
  hashTag,
  hash64,
  DEFAULT_SLOT_COUNT,
  RangeMap,
  compareKeys,
  planAssignment,
  initialAssignment,
  type Range,
  type Plan,
  type Move,
  type PlannerNode,
} from './partitioning/index.js';
export { createStrategy, pickByKey, InstanceHealth, STRATEGY_NAMES, type StrategyName, type Strategy } from './dispatch/index.js';
export { RpcServer, connect as connectWire, Peer, type Connection } from './wire/index.js';
// Processing (issue 5): pipeline API, local runner, state backends, and the connectors (files, generator, stdout,
// memory, HTTP ingest, Redis Streams, NATS JetStream, storage namespace, webhook).
export * from './processing/index.js';
