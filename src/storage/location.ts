/** Where a partition of a namespace lives in the engine (see {@link Location}). */
import type { RoutingTable } from '../keyspace/index.js';
import type { Location } from './engine-types.js';

/**
 * A partition's location: a hash namespace's partition is its slot (stored in its keys); a range's keys are stored
 * without their range id, which only names the range's counters.
 *
 * @example
 * ```ts
 * engine.countersFor(locationOf(table, 17));
 * ```
 */
export function locationOf(table: Pick<RoutingTable, 'name' | 'scheme'>, partition: number): Location {
  return table.scheme === 'hash' ? { namespace: table.name, partition, slot: partition } : { namespace: table.name, partition };
}
