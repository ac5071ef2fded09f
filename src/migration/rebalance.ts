/**
 * Rebalance: the planner's fewest moves that restore balance over the ready storage nodes, for every namespace,
 * carried out by {@link movePartition} a few at a time.
 */
import { planAssignment, type Move } from '../partitioning/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { movePartition, type MoveContext, type MoveResult } from './mover.js';

export interface PlannedMove extends Move {
  namespace: string;
}

/**
 * The moves that balance every namespace over `nodes` (default: the ready storage nodes). Pass the nodes that will
 * remain to plan a drain.
 */
export function planRebalance(ctx: MoveContext, nodes?: { id: string; capacity: number }[]): PlannedMove[] {
  const over = nodes ?? ctx.members.ready('storage').map((m) => ({ id: m.id, capacity: m.capacity }));
  if (over.length === 0) throw new InvalidArgumentError('no storage node to balance over');
  const moves: PlannedMove[] = [];
  for (const name of ctx.catalog.names()) {
    const table = ctx.catalog.table(name);
    const plan = planAssignment(table.assignment(), table.partitions(), over);
    for (const m of plan.moves) moves.push({ ...m, namespace: name });
  }
  return moves;
}

/** Carries out moves, `concurrency` at a time; resolves with every result, rejects on the first failure. */
export async function runMoves(
  ctx: MoveContext,
  moves: PlannedMove[],
  options: { concurrency?: number; onMoved?: (r: MoveResult, done: number, total: number) => void } = {},
): Promise<MoveResult[]> {
  const results: MoveResult[] = [];
  let next = 0;
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 4) }, async () => {
    while (next < moves.length) {
      const m = moves[next++]!;
      const r = await movePartition(ctx, m.namespace, m.partition, m.to);
      results.push(r);
      options.onMoved?.(r, results.length, moves.length);
    }
  });
  await Promise.all(workers);
  return results;
}
