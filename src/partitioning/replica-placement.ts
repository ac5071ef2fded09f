/**
 * Where a partition's extra copies go: rendezvous (highest random weight) hashing of the partition over the nodes,
 * skipping the leader and any node already holding a copy. Each node's score for a partition is fixed, so adding a
 * node takes over only the copies for which it now scores highest — about k/(n+1) of them — and removing one moves
 * only its own copies. Pure and deterministic: the same input gives the same answer in any order.
 *
 * @module
 */
import { hash64 } from './hash.js';
import { InvalidArgumentError } from '../errors/index.js';

const encoder = new TextEncoder();

/** A node's rendezvous score for a partition (higher wins). */
export function rendezvousScore(partition: number, node: string): bigint {
  return hash64(encoder.encode(`${partition}\u0000${node}`));
}

/**
 * The nodes that should receive `needed` more copies of `partition`, best first.
 *
 * @param partition partition id
 * @param nodes the candidate node ids (ready storage nodes)
 * @param holders nodes that already hold a copy (the leader and its in-sync followers): never chosen
 * @param needed how many to choose (fewer come back if there are not enough candidates)
 *
 * @example
 * ```ts
 * replicaTargets(17, ['s1', 's2', 's3', 's4'], ['s2'], 2); // e.g. ['s4', 's1']
 * ```
 */
export function replicaTargets(partition: number, nodes: readonly string[], holders: readonly string[], needed: number): string[] {
  if (!Number.isInteger(needed) || needed < 0) throw new InvalidArgumentError(`needed must be a non-negative integer, not ${needed}`);
  if (needed === 0) return [];
  const taken = new Set(holders);
  const candidates = [...new Set(nodes)].filter((n) => !taken.has(n));
  const scored = candidates.map((n) => ({ n, s: rendezvousScore(partition, n) }));
  scored.sort((a, b) => (a.s === b.s ? (a.n < b.n ? -1 : 1) : a.s > b.s ? -1 : 1));
  return scored.slice(0, needed).map((x) => x.n);
}

/**
 * How many copies must hold a write before it is acknowledged: a majority of the configured copies (1 of 1, 2 of 2,
 * 2 of 3, 3 of 5). A partition with fewer in-sync copies than this refuses writes rather than acknowledge one that
 * the loss of a node could take away.
 */
export function minInSync(copies: number): number {
  return Math.floor(copies / 2) + 1;
}
