/**
 * The moves in flight, for `shardflow status`: each job's partitions, step and progress, and for a move that is
 * stuck, why and what will end it. Read from the routing records' move entries (which decide) and the job records
 * on the drivers' leases (which say a driver is alive), so it needs no node to answer.
 */
import type { Coordinator } from '../coordination/coordinator.js';
import type { Catalog } from '../keyspace/index.js';
import type { MemberView } from '../client/index.js';
import { MigrationDriver, readJobs, type LockHolder, type MoveStep } from '../migration/index.js';
import { formatBytes } from './status.js';

/** A job with no progress for this long is shown as stuck. */
const STALLED_MS = 30_000;

export interface MigrationStatus {
  job: string;
  namespace: string;
  partitions: number[];
  from: string | null;
  to: string;
  /** `moving`, or `stuck` with `why`. */
  state: 'moving' | 'stuck';
  step: MoveStep | null;
  driver: string | null;
  startedAt: string;
  copiedBytes: number;
  totalBytes: number;
  why?: string;
}

export interface MigrationsStatus {
  /** Who holds the rebalance lock, if a rebalance runs. */
  rebalance: LockHolder | null;
  migrations: MigrationStatus[];
}

export async function readMigrationsStatus(coordinator: Coordinator, catalog: Catalog, members: MemberView): Promise<MigrationsStatus> {
  const [jobs, holder] = await Promise.all([readJobs(coordinator), MigrationDriver.holder(coordinator)]);
  const byJob = new Map<string, MigrationStatus>();
  for (const name of catalog.names()) {
    const table = catalog.find(name);
    for (const [key, entry] of Object.entries(table?.record.migrations ?? {})) {
      const partition = Number(key);
      let m = byJob.get(entry.job);
      if (!m) {
        const r = jobs.get(entry.job);
        m = {
          job: entry.job,
          namespace: name,
          partitions: [],
          from: table!.ownerOf(partition) ?? null,
          to: entry.to,
          state: 'moving',
          step: r?.step ?? null,
          driver: r?.driver ?? null,
          startedAt: entry.startedAt,
          copiedBytes: r?.copiedBytes ?? 0,
          totalBytes: r?.totalBytes ?? 0,
        };
        const why = stuckBecause(m, r?.updatedAt, members);
        if (why) Object.assign(m, { state: 'stuck', why });
        byJob.set(entry.job, m);
      }
      m.partitions.push(partition);
    }
  }
  return { rebalance: holder ?? null, migrations: [...byJob.values()] };
}

function stuckBecause(m: MigrationStatus, updatedAt: string | undefined, members: MemberView): string | undefined {
  const down = (id: string | null) => id !== null && members.get(id)?.state !== 'ready';
  if (m.driver === null) {
    return down(m.from)
      ? `its driver is gone and the source ${m.from} is down: rolled back when ${m.from} restarts or the next rebalance starts`
      : `its driver is gone: the source ${m.from} rolls it back within seconds (or the next rebalance does)`;
  }
  if (down(m.from)) return `the source ${m.from} is down: the driver rolls the move back when its next step fails`;
  if (down(m.to)) return `the target ${m.to} is down: the driver rolls the move back when its next step fails`;
  const age = updatedAt ? Date.now() - Date.parse(updatedAt) : 0;
  if (age > STALLED_MS) return `no progress recorded for ${Math.round(age / 1000)} s (driver ${m.driver})`;
  return undefined;
}

export function formatMigrations(s: MigrationsStatus): string[] {
  if (!s.rebalance && s.migrations.length === 0) return [];
  const out = ['migrations:'];
  if (s.rebalance) out.push(`  rebalance running: ${s.rebalance.driver} since ${s.rebalance.since}`);
  for (const m of s.migrations) {
    const parts = m.partitions.length <= 4 ? m.partitions.join(',') : `${m.partitions.slice(0, 3).join(',')},… (${m.partitions.length})`;
    const progress = m.totalBytes > 0 ? ` ${formatBytes(m.copiedBytes)}/${formatBytes(m.totalBytes)}` : '';
    out.push(`  ${m.state.toUpperCase()}  ${m.namespace}/${parts}  ${m.from ?? '?'} -> ${m.to}  ${m.step ?? '-'}${progress}  since ${m.startedAt}`);
    if (m.why) out.push(`    why: ${m.why}`);
  }
  if (s.migrations.length === 0) out.push('  no partition moving right now');
  return out;
}
