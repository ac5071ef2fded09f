/**
 * The data side of scaling the storage tier when something else starts and stops the processes (a command hook):
 * spread the data over nodes that joined, and move every partition off nodes before they leave. Moves run through
 * the migration driver, so they are online, hold the cluster-wide rebalance lock, and are refused with `BusyError`
 * while another rebalance runs.
 *
 * @module
 */
import { ClusterDir } from '../config/cluster-dir.js';
import { connect, PeerPool } from '../client/index.js';
import { MigrationDriver } from '../migration/index.js';
import { InvalidArgumentError } from '../errors/index.js';

/** Moves storage data around a change of storage nodes. */
export interface StorageData {
  /** Balances every namespace over the ready storage nodes (after nodes joined). Resolves with the moves made. */
  rebalance(): Promise<number>;
  /**
   * Moves every partition that `leaving` own to the other ready storage nodes, so they can stop without taking data
   * along. Resolves with the moves made.
   */
  drain(leaving: readonly string[]): Promise<number>;
}

/**
 * {@link StorageData} for the cluster in directory `dir` (which names its coordinator, local or etcd).
 *
 * @example
 * ```ts
 * const data = clusterStorageData('.shardflow');
 * await data.drain(['s4']); // s4 owns nothing now; stop its process
 * ```
 */
export function clusterStorageData(dir: string, options: { concurrency?: number } = {}): StorageData {
  const run = async (leaving: readonly string[]): Promise<number> => {
    const files = new ClusterDir(dir);
    const client = await connect({ dir: files.root, name: 'provisioner' });
    const pool = new PeerPool(client.members, await files.readSecret(), 'provisioner');
    try {
      const driver = await MigrationDriver.open(
        { coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool },
        { name: 'autoscale' },
      );
      try {
        let over: { id: string; capacity: number }[] | undefined;
        if (leaving.length > 0) {
          over = client.members
            .ready('storage')
            .filter((m) => !leaving.includes(m.id))
            .map((m) => ({ id: m.id, capacity: m.capacity }));
          if (over.length === 0) throw new InvalidArgumentError(`no storage node would remain to take the data of ${leaving.join(', ')}`);
        }
        const moves = driver.plan(over);
        if (moves.length === 0) return 0;
        await driver.preflight(moves);
        await driver.run(moves, { concurrency: options.concurrency });
        return moves.length;
      } finally {
        await driver.close();
      }
    } finally {
      pool.close();
      await client.close();
    }
  };
  return { rebalance: () => run([]), drain: (leaving) => run(leaving) };
}
