/**
 * The assignment planner: which node serves which partition. The same code places hash slots and key ranges, since a
 * partition is only an integer id here.
 *
 * It is pure and deterministic (same input, same output, whatever the input order), balances by capacity, and moves
 * as few partitions as that balance allows.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';

/** A node that can hold partitions. */
export interface PlannerNode {
  /** Unique, non-empty node id. */
  readonly id: string;
  /** Relative weight (> 0, finite): a node of capacity 2 gets twice the partitions of a node of capacity 1. */
  readonly capacity: number;
}

/** One partition changing hands. `from` is `null` if the partition had no owner. */
export interface Move {
  partition: number;
  from: string | null;
  to: string;
}

/** The planner's output. */
export interface Plan {
  /** Every partition's owner, in ascending partition order. */
  assignment: Map<number, string>;
  /** What changed relative to `current`, in ascending partition order. */
  moves: Move[];
}

/**
 * The current owners: partition id → node id. Partitions may be missing or map to `null` (unassigned) or to a node
 * that no longer exists; entries for partitions not being planned are ignored. A plain object (for example parsed
 * JSON) works as well as a `Map`.
 */
export type CurrentAssignment =
  | ReadonlyMap<number, string | null | undefined>
  | Readonly<Record<number, string | null | undefined>>;

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new InvalidArgumentError(message, { details });
}

/** Validates nodes and returns them sorted by id (the order every tie is broken in). */
function sortedNodes(nodes: readonly PlannerNode[]): PlannerNode[] {
  if (!Array.isArray(nodes) || nodes.length === 0) fail('at least one node is needed');
  const seen = new Set<string>();
  for (const node of nodes) {
    if (typeof node?.id !== 'string' || node.id === '') fail('node id must be a non-empty string', { node });
    if (seen.has(node.id)) fail(`duplicate node id ${node.id}`, { id: node.id });
    seen.add(node.id);
    if (typeof node.capacity !== 'number' || !Number.isFinite(node.capacity) || node.capacity <= 0) {
      fail(`node ${node.id}: capacity must be a finite number > 0`, { id: node.id, capacity: node.capacity });
    }
  }
  return [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Validates partition ids and returns them in ascending order. */
function sortedPartitions(partitions: readonly number[]): number[] {
  if (!Array.isArray(partitions)) fail('partitions must be an array');
  const sorted = [...partitions].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i];
    if (typeof p !== 'number' || !Number.isSafeInteger(p)) {
      fail('partition ids must be safe integers', { partition: p });
    }
    if (i > 0 && sorted[i - 1] === p) fail(`duplicate partition id ${p}`, { partition: p });
  }
  return sorted;
}

/**
 * How many partitions each node should hold: proportional to capacity, by largest-remainder rounding. Each node gets
 * the floor of its exact share `capacity / totalCapacity * partitionCount`; the partitions left over go one each to
 * nodes whose share has a fractional part, preferring
 *
 * 1. nodes that currently hold more than their floor (per `currentCounts`), since giving the extra partition to a node
 *    that already has it saves a move;
 * 2. then the larger fractional part;
 * 3. then the smaller node id.
 *
 * So every target is the floor or the ceiling of the exact share (within one partition of it) and the targets sum to
 * `partitionCount`.
 *
 * @param currentCounts - Partitions each node holds now; leave out for plain largest remainder.
 * @throws InvalidArgumentError on bad nodes or a bad count.
 * @example
 * ```ts
 * proportionalTargets(10, [{ id: 'a', capacity: 1 }, { id: 'b', capacity: 2 }]); // Map { 'a' => 3, 'b' => 7 }
 * ```
 */
export function proportionalTargets(
  partitionCount: number,
  nodes: readonly PlannerNode[],
  currentCounts: ReadonlyMap<string, number> = new Map(),
): Map<string, number> {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 0) fail('partitionCount must be an integer >= 0');
  const sorted = sortedNodes(nodes);
  const total = sorted.reduce((sum, n) => sum + n.capacity, 0);
  if (!Number.isFinite(total)) fail('the sum of capacities is not finite');

  // share = floor + rem / total, with rem computed as a remainder rather than a fraction so that integer capacities
  // give exact results (and exact ties between equal nodes).
  const shares = sorted.map((node, order) => {
    const scaled = partitionCount * node.capacity;
    let floor = Math.floor(scaled / total);
    let rem = scaled - floor * total;
    if (rem < 0) [floor, rem] = [floor - 1, rem + total]; // float rounding pushed the quotient up
    if (rem >= total) [floor, rem] = [floor + 1, rem - total]; // or down
    const holding = (currentCounts.get(node.id) ?? 0) > floor;
    return { id: node.id, order, floor, rem, holding, target: floor };
  });

  const priority = [...shares].sort(
    (a, b) =>
      Number(b.rem > 0) - Number(a.rem > 0) ||
      Number(b.holding) - Number(a.holding) ||
      b.rem - a.rem ||
      a.order - b.order,
  );
  let left = partitionCount - shares.reduce((sum, s) => sum + s.floor, 0);
  // With exact arithmetic 0 <= left <= (nodes with rem > 0) and one pass suffices; the loops only guard float noise.
  for (let i = 0; left > 0; i = (i + 1) % priority.length, left--) priority[i]!.target++;
  for (let i = priority.length - 1; left < 0; i = (i - 1 + priority.length) % priority.length) {
    if (priority[i]!.target > 0) {
      priority[i]!.target--;
      left++;
    }
  }
  return new Map(shares.map((s) => [s.id, s.target]));
}

function ownerLookup(current: CurrentAssignment): (partition: number) => unknown {
  if (current === null || typeof current !== 'object') fail('current assignment must be a Map or an object');
  if (typeof (current as ReadonlyMap<number, unknown>).get === 'function') {
    const map = current as ReadonlyMap<number, unknown>;
    return (p) => map.get(p);
  }
  const record = current as Readonly<Record<number, unknown>>;
  return (p) => (Object.hasOwn(record, p) ? record[p] : undefined);
}

/**
 * Plans who serves which partition, moving as little as possible.
 *
 * Each node's target count comes from {@link proportionalTargets}. Then:
 * - partitions whose owner is missing, `null` or not among `nodes` must move;
 * - a node above its target gives up its highest-numbered partitions until it is at target;
 * - those partitions go to nodes below target (nodes in id order, partitions in ascending order);
 * - nothing else moves.
 *
 * So `moves.length` = orphaned partitions + Σ max(0, current count − target), the least any plan meeting the targets
 * can do; every node ends within one partition of its exact proportional share; and planning again on the result
 * moves nothing.
 *
 * @param current - Current owners (see {@link CurrentAssignment}).
 * @param partitions - Every partition id to place (unique safe integers).
 * @param nodes - The live nodes (at least one; unique ids; capacity > 0).
 * @throws InvalidArgumentError on any invalid input.
 * @example
 * ```ts
 * const nodes = [{ id: 'a', capacity: 1 }, { id: 'b', capacity: 1 }];
 * const first = initialAssignment([0, 1, 2, 3], nodes); // a: 0, 1; b: 2, 3
 * const next = planAssignment(first.assignment, [0, 1, 2, 3], [...nodes, { id: 'c', capacity: 2 }]);
 * next.moves; // [{ partition: 1, from: 'a', to: 'c' }, { partition: 3, from: 'b', to: 'c' }]
 * ```
 */
export function planAssignment(
  current: CurrentAssignment,
  partitions: readonly number[],
  nodes: readonly PlannerNode[],
): Plan {
  const sorted = sortedNodes(nodes);
  const ids = sortedPartitions(partitions);
  const ownerOf = ownerLookup(current);

  // Split partitions into those kept where they are (so far) and the pool that must be placed.
  const kept = new Map<string, number[]>(sorted.map((n) => [n.id, []]));
  const pool: { partition: number; from: string | null }[] = [];
  for (const p of ids) {
    const owner = ownerOf(p);
    if (owner !== null && owner !== undefined && typeof owner !== 'string') {
      fail(`partition ${p}: owner must be a node id string or null`, { partition: p });
    }
    const list = owner == null ? undefined : kept.get(owner);
    if (list) list.push(p);
    else pool.push({ partition: p, from: owner ?? null });
  }

  const counts = new Map([...kept].map(([id, list]) => [id, list.length]));
  const targets = proportionalTargets(ids.length, sorted, counts);

  for (const node of sorted) {
    const list = kept.get(node.id)!;
    const excess = list.length - targets.get(node.id)!;
    // Lists are ascending, so the tail holds the highest ids.
    if (excess > 0) for (const p of list.splice(list.length - excess)) pool.push({ partition: p, from: node.id });
  }
  pool.sort((a, b) => a.partition - b.partition);

  const moves: Move[] = [];
  const ownerAfter = new Map<number, string>();
  for (const [id, list] of kept) for (const p of list) ownerAfter.set(p, id);
  let next = 0;
  for (const node of sorted) {
    // The pool's size equals the total deficit: targets sum to the partition count and no node is above target now.
    for (let deficit = targets.get(node.id)! - kept.get(node.id)!.length; deficit > 0; deficit--) {
      const { partition, from } = pool[next++]!;
      moves.push({ partition, from, to: node.id });
      ownerAfter.set(partition, node.id);
    }
  }
  moves.sort((a, b) => a.partition - b.partition);

  const assignment = new Map<number, string>();
  for (const p of ids) assignment.set(p, ownerAfter.get(p)!);
  return { assignment, moves };
}

/**
 * The first assignment of `partitions` to `nodes`: {@link planAssignment} with nothing assigned yet. With equal
 * capacities, nodes (in id order) get consecutive runs of partition ids.
 *
 * @example
 * ```ts
 * initialAssignment([0, 1, 2], [{ id: 'a', capacity: 1 }, { id: 'b', capacity: 1 }]).assignment;
 * // Map { 0 => 'a', 1 => 'a', 2 => 'b' }
 * ```
 */
export function initialAssignment(partitions: readonly number[], nodes: readonly PlannerNode[]): Plan {
  return planAssignment(new Map(), partitions, nodes);
}

/**
 * The fraction of partitions a plan moves (0 … 1); 0 when there are no partitions.
 * @throws InvalidArgumentError if `partitionCount` is not an integer >= 0.
 */
export function movedFraction(moves: readonly Move[], partitionCount: number): number {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 0) fail('partitionCount must be an integer >= 0');
  return partitionCount === 0 ? 0 : moves.length / partitionCount;
}

/**
 * `current` with `moves` applied, as a new map (only partitions with an owner appear). Checks that each move starts
 * where `current` says the partition is, so a plan made from an older assignment is not applied by mistake.
 *
 * @throws InvalidArgumentError if a move's `from` does not match the current owner.
 */
export function applyMoves(current: CurrentAssignment, moves: readonly Move[]): Map<number, string> {
  if (current === null || typeof current !== 'object') fail('current assignment must be a Map or an object');
  const entries: Iterable<[unknown, unknown]> =
    typeof (current as ReadonlyMap<number, unknown>).get === 'function'
      ? (current as ReadonlyMap<number, unknown>).entries()
      : Object.entries(current);
  const result = new Map<number, string>();
  for (const [key, owner] of entries) {
    if (typeof owner === 'string') result.set(Number(key), owner);
  }
  // Checked against the running result, so a sequence of moves of the same partition applies in order.
  for (const move of moves) {
    const owner = result.get(move.partition) ?? null;
    if (owner !== move.from) {
      fail(`move of partition ${move.partition} expects owner ${String(move.from)}, found ${String(owner)}`, {
        partition: move.partition,
      });
    }
    result.set(move.partition, move.to);
  }
  return result;
}
