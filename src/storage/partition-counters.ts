/**
 * Keys and bytes per partition, kept by the engine as writes commit (exact for hash partitions; range namespaces
 * are recounted by range once the node knows its ranges). Planning, status and cheap emptiness checks read them.
 */
import type { Location } from './engine.js';

export interface PartitionCounters {
  keys: number;
  bytes: number;
}

/** The map key of a partition: also how the engine names a captured partition. */
export function counterKey(location: Location): string {
  return `${location.namespace}\u0000${location.partition}`;
}

export class CounterTable {
  private readonly counters = new Map<string, PartitionCounters>();

  get(location: Location): PartitionCounters {
    return this.counters.get(counterKey(location)) ?? { keys: 0, bytes: 0 };
  }

  set(location: Location, counters: PartitionCounters): void {
    this.counters.set(counterKey(location), counters);
  }

  clear(): void {
    this.counters.clear();
  }

  /** One key changed: it held `beforeBytes` (undefined: it was absent) and now holds `afterBytes` (undefined: gone). */
  count(location: Location, beforeBytes: number | undefined, afterBytes: number | undefined): void {
    const ck = counterKey(location);
    let c = this.counters.get(ck);
    if (!c) this.counters.set(ck, (c = { keys: 0, bytes: 0 }));
    if (beforeBytes !== undefined) {
      c.keys -= 1;
      c.bytes -= beforeBytes;
    }
    if (afterBytes !== undefined) {
      c.keys += 1;
      c.bytes += afterBytes;
    }
  }

  /** Hash namespaces: the partitions (slots) of `namespace` that hold keys. */
  hashPartitionsWithKeys(namespace: string): number[] {
    const out: number[] = [];
    const prefix = `${namespace}\u0000`;
    for (const [k, c] of this.counters) if (c.keys > 0 && k.startsWith(prefix)) out.push(Number(k.slice(prefix.length)));
    return out;
  }
}
