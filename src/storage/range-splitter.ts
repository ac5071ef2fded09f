/**
 * Splits the range partitions this node owns once they pass their namespace's size threshold. A split only changes
 * the routing table (both halves stay on this node, and range keys are stored without their range id), so it moves
 * no data; moving a half elsewhere is the rebalancer's job.
 */
import type { Catalog, RoutingTable } from '../keyspace/index.js';
import { chooseSplitKey, shouldSplit } from '../partitioning/index.js';
import type { Logger } from '../util/logger.js';
import type { StorageEngine, Location } from './engine.js';

/** Keys read from a range to pick its middle: enough for a good median, cheap enough to do often. */
const SPLIT_SAMPLE_LIMIT = 200_000;

export class RangeSplitter {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly log: Logger,
  ) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.checkAll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Recounts every owned range of a namespace from disk (at start, and after the table changes). */
  recount(table: RoutingTable): void {
    if (table.scheme !== 'range') return;
    for (const id of table.partitionsOf(this.nodeId)) {
      const r = table.range(id)!;
      this.engine.recount({ namespace: table.name, partition: id }, { start: r.start, end: r.end });
    }
  }

  /** One pass: splits each owned range over its threshold once. */
  async checkAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const name of this.catalog.names()) {
        const table = this.catalog.find(name);
        if (!table || table.scheme !== 'range') continue;
        for (const id of table.partitionsOf(this.nodeId)) {
          if (table.migrationOf(id)) continue; // never split a range while it moves
          const location: Location = { namespace: name, partition: id };
          if (shouldSplit(this.engine.countersFor(location).bytes, table.record.splitBytes!)) {
            await this.split(table, id);
          }
        }
      }
    } catch (err) {
      this.log.warn('range split failed; will retry', { error: String(err) });
    } finally {
      this.running = false;
    }
  }

  private async split(table: RoutingTable, rangeId: number): Promise<void> {
    const range = table.range(rangeId)!;
    const location: Location = { namespace: table.name, partition: rangeId };
    const keys = this.engine.keys(location, { start: range.start, end: range.end }, SPLIT_SAMPLE_LIMIT);
    const at = chooseSplitKey(keys, range);
    if (at === undefined) return;
    const next = await this.catalog.update(table.name, (current) =>
      current.ownerOf(rangeId) === this.nodeId && current.range(rangeId)?.start === range.start
        ? current.withSplit(rangeId, at)
        : undefined,
    );
    if (next.epoch === table.epoch) return;
    this.recount(next);
    this.log.info('split range', { namespace: table.name, range: rangeId, at, epoch: next.epoch });
  }
}
