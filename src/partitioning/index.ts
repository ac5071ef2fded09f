/**
 * The partitioning layer: pure functions and data structures that map keys to partitions (hash slots or key ranges)
 * and partitions to nodes. No I/O; the coordinator and the nodes build on it.
 *
 * @example
 * ```ts
 * import { keySlot, initialAssignment } from './partitioning/index.js';
 * const plan = initialAssignment([...Array(4096).keys()], [{ id: 'n1', capacity: 1 }, { id: 'n2', capacity: 1 }]);
 * plan.assignment.get(keySlot('{user1}.cart')); // 'n1' or 'n2'
 * ```
 *
 * @module
 */
export { hash64, hashTag, keySlot, DEFAULT_SLOT_COUNT, MAX_SLOT_COUNT } from './hash.js';
export { replicaTargets, minInSync } from './replica-placement.js';
export { planReplicaMoves, type ReplicaSet, type ReplicaMove } from './replica-planner.js';
export { planLeaderHandoffs, type LeadHandoff } from './leader-balance.js';
export { alignReplicas, type AlignmentStep } from './replica-alignment.js';
export {
  RangeMap,
  compareKeys,
  shouldSplit,
  shouldMerge,
  chooseSplitKey,
  type Range,
  type RangeMapJSON,
} from './range-map.js';
export {
  planAssignment,
  initialAssignment,
  proportionalTargets,
  movedFraction,
  applyMoves,
  type PlannerNode,
  type Move,
  type Plan,
  type CurrentAssignment,
} from './planner.js';
export {
  observeLoad,
  chooseLoadSplitKey,
  isHot,
  chooseMerges,
  type LoadState,
  type LoadOptions,
  type RangeLoad,
  type MergeLimits,
  type MergePair,
} from './range-load.js';
