export { movePartition, moveBatch, type MoveBatch, type MoveContext, type MoveOptions, type MoveResult } from './mover.js';
export { planRebalance, runMoves, batchMoves, type PlannedMove, type RunOptions } from './rebalance.js';
export { MigrationDriver, type DriverDeps, type DriverOptions, type LockHolder } from './driver.js';
export { JobLedger, readJobs, type JobRecord, type MoveStep } from './jobs.js';
export { planMerges, runMerges, mergeAfterMove, type PlannedMerge, type MergeResult } from './range-merge.js';
export { ReplicaController, failover, REPLICA_ELECTION, type ReplicaControllerOptions, type ControllerRound } from './replica-controller.js';
export { handOffLeads, canHandOff, type LeadBatch } from './lead-handoff.js';
export { handOffAllLeads, planHandoffs, type ShutdownHandoffs } from './controlled-shutdown.js';
