export { movePartition, type MoveContext, type MoveResult } from './mover.js';
export { planRebalance, runMoves, type PlannedMove } from './rebalance.js';
