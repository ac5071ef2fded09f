/**
 * Migration jobs as durable records in the coordinator. A move is two records:
 *
 * - the routing record's migration entry (`{ to, job }`, keyspace/routing-table.ts), which decides the outcome: the
 *   cutover and the abort are each one compare-and-set on it;
 * - a job record under `/shardflow/migrations/<job>` with the move's step and progress, attached to the driver's
 *   lease. It says the driver is alive: when the driver dies its lease expires, the record vanishes, and the source
 *   node rolls the move back (storage/migration-service.ts). `shardflow status` reads both to show moves in flight and
 *   moves that are stuck, with why.
 */
import type { Coordinator, Lease } from '../coordination/coordinator.js';
import { MIGRATIONS_PREFIX, migrationJobKey } from '../coordination/index.js';

/** Where a move is: the steps of movePartition, in order. */
export type MoveStep = 'planned' | 'copying' | 'fenced' | 'switched' | 'aborting';

/** The stored job record (JSON). Field names are part of the interface (`status --json`). */
export interface JobRecord {
  job: string;
  namespace: string;
  /** The partitions the job moves together. */
  partitions: number[];
  from: string;
  to: string;
  /** Who drives the move (a process name and pid). */
  driver: string;
  step: MoveStep;
  startedAt: string;
  updatedAt: string;
  copiedKeys: number;
  copiedBytes: number;
  /** The partition's size when the move began (from the source's counters). */
  totalKeys: number;
  totalBytes: number;
}

/** The driver's side: writes job records on its lease. */
export class JobLedger {
  constructor(
    private readonly coordinator: Coordinator,
    private readonly lease: Lease,
    readonly driver: string,
  ) {}

  async write(record: JobRecord): Promise<void> {
    await this.coordinator.put(migrationJobKey(record.job), JSON.stringify({ ...record, updatedAt: new Date().toISOString() }), {
      lease: this.lease,
    });
  }

  async remove(job: string): Promise<void> {
    await this.coordinator.delete(migrationJobKey(job));
  }
}

/** Every job record, by job id (records that do not parse are skipped). */
export async function readJobs(coordinator: Coordinator): Promise<Map<string, JobRecord>> {
  const out = new Map<string, JobRecord>();
  for (const e of await coordinator.list(MIGRATIONS_PREFIX)) {
    try {
      const r = JSON.parse(e.value) as JobRecord;
      if (typeof r.job === 'string') out.set(r.job, r);
    } catch {
      // A record we cannot read tells us nothing; status shows the move as one without a live driver.
    }
  }
  return out;
}
