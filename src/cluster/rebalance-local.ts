/**
 * Rebalancing and scaling the storage tier of a cluster from this host: take the rebalance lock, plan with the
 * planner, show the plan with sizes and an estimate, check every node involved answers, carry it out with live
 * progress, and for scale-in drain the leaving nodes before their processes stop. Any refusal (another rebalance
 * running, a node that does not answer, a bad count) comes before anything changes.
 */
import { rm } from 'node:fs/promises';
import { ClusterDir, compareIds, type LocalNodeFile } from '../config/cluster-dir.js';
import { connect, PeerPool } from '../client/index.js';
import { MigrationDriver, planMerges, runMerges, type MoveResult, type PlannedMove } from '../migration/index.js';
import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { assertLocalTier } from './local-only.js';
import { isAlive, terminate } from './spawn.js';
import { startLocalCluster, MAX_LOCAL_NODES } from './local-cluster.js';
import { formatPlan, RebalanceProgress, estimateSeconds, type SizedMove } from './rebalance-progress.js';

export interface RebalanceOutput {
  dryRun?: boolean;
  json?: boolean;
  /** Partitions moved at once (default 4). */
  concurrency?: number;
  /** Total copy rate limit, bytes per second. */
  maxBytesPerSec?: number;
  /** Back off when foreground p99 passes this multiple of its baseline (default 3; 0: never). */
  maxP99Ratio?: number;
  /** Where lines go (default stdout). */
  write?: (line: string) => void;
}

/** What a run did: the plan and each move's result (as `--json` prints it). */
export interface RebalanceReport {
  moves: SizedMove[];
  totalBytes: number;
  estimatedSeconds: number;
  results?: MoveResult[];
  ms?: number;
  /** Each change of the copy rate the back-off made: ms after the moves began, the rate (undefined: unlimited), why. */
  rateChanges?: { atMs: number; bytesPerSec?: number; reason: string }[];
  /** Pairs of small ranges put on one node and merged (rebalance only). */
  merges?: { namespace: string; left: number; right: number; merged: boolean; reason?: string }[];
}

interface Session {
  driver: MigrationDriver;
  sizes(moves: PlannedMove[]): Promise<SizedMove[]>;
}

async function withDriver<T>(dirPath: string, work: (s: Session) => Promise<T>): Promise<T> {
  const dir = new ClusterDir(dirPath);
  const client = await connect({ dir: dir.root, name: 'rebalance' });
  const pool = new PeerPool(client.members, await dir.readSecret(), 'rebalance');
  try {
    const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
    try {
      const sizes = async (moves: PlannedMove[]): Promise<SizedMove[]> => {
        const byNode = new Map<string, Record<string, [number, number, number][]>>();
        // Nodes report the partitions they lead: a follower copy's size is its leader's.
        const sourceOf = (m: PlannedMove) => (m.role === 'follower' ? client.catalog.find(m.namespace)?.ownerOf(m.partition) : m.from) ?? undefined;
        for (const id of new Set(moves.filter((m) => m.role !== 'lead').map(sourceOf).filter((f): f is string => f !== undefined))) {
          // Sizes only inform the plan: a node that cannot say counts as empty (preflight refuses a real run).
          const sizes = await pool
            .get(id, Date.now() + 3000)
            .then((peer) => peer.call<Record<string, [number, number, number][]>>('node.partitions', null, { timeoutMs: 10_000 }))
            .catch(() => ({}));
          byNode.set(id, sizes);
        }
        return moves.map((m) => {
          if (m.role === 'lead') return { ...m, keys: 0, bytes: 0 }; // the lead passes; no data moves
          const source = sourceOf(m);
          const row = source ? byNode.get(source)?.[m.namespace]?.find((r) => r[0] === m.partition) : undefined;
          return { ...m, keys: row?.[1] ?? 0, bytes: row?.[2] ?? 0 };
        });
      };
      return await work({ driver, sizes });
    } finally {
      await driver.close();
    }
  } finally {
    pool.close();
    await client.close();
  }
}

async function execute(s: Session, planned: PlannedMove[], out: RebalanceOutput): Promise<RebalanceReport> {
  const say = out.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const concurrency = out.concurrency ?? 4;
  if (!out.dryRun) await s.driver.preflight(planned);
  const moves = await s.sizes(planned);
  const report: RebalanceReport = {
    moves,
    totalBytes: moves.reduce((a, m) => a + m.bytes, 0),
    estimatedSeconds: estimateSeconds(moves, concurrency, out.maxBytesPerSec),
  };
  if (!out.json) say(formatPlan(moves, concurrency, out.maxBytesPerSec));
  if (out.dryRun || moves.length === 0) {
    if (out.json) say(JSON.stringify(report, null, 2));
    return report;
  }
  const progress = out.json ? undefined : new RebalanceProgress(moves, say, out.write === undefined && process.stdout.isTTY === true);
  const started = Date.now();
  try {
    report.results = await s.driver.run(moves, {
      concurrency,
      maxBytesPerSec: out.maxBytesPerSec,
      maxP99Ratio: out.maxP99Ratio,
      onProgress: (j) => progress?.progress(j),
      onMoved: (r) => progress?.moved(r),
      onRate: (rate, why) => {
        progress?.rate(rate, why);
        (report.rateChanges ??= []).push({ atMs: Date.now() - started, ...(rate === undefined ? {} : { bytesPerSec: rate }), reason: why });
      },
    });
  } finally {
    progress?.stop();
  }
  report.ms = Date.now() - started;
  const results = report.results;
  const fences = results.map((r) => r.fenceMs).sort((a, b) => a - b);
  const p50 = fences[Math.floor(fences.length / 2)] ?? 0;
  const max = fences[fences.length - 1] ?? 0;
  const keys = results.reduce((a, r) => a + r.copied, 0);
  const partitions = results.reduce((a, r) => a + r.partitions.length, 0);
  if (out.json) say(JSON.stringify(report, null, 2));
  else {
    say(
      `moved ${partitions} partitions (${keys} keys) in ${results.length} jobs, ${report.ms} ms; ` +
        `requests held per job: median ${p50} ms, max ${max} ms`,
    );
  }
  return report;
}

/**
 * Balances the cluster's storage nodes.
 *
 * @example
 * ```ts
 * await rebalanceLocal('.shardflow', { concurrency: 8, maxBytesPerSec: 50 * 1024 * 1024 });
 * ```
 */
export async function rebalanceLocal(dirPath: string, out: RebalanceOutput = {}): Promise<RebalanceReport> {
  return withDriver(dirPath, async (s) => {
    const report = await execute(s, s.driver.plan(), out);
    // Small neighbouring ranges on different nodes: put each pair on one node (an ordinary move), then merge.
    const merges = await planMerges(s.driver.context).catch(() => []);
    if (merges.length === 0) return report;
    const say = out.write ?? ((line: string) => process.stdout.write(line + '\n'));
    if (!out.json) {
      say(`merge: ${merges.length} pair${merges.length === 1 ? '' : 's'} of small neighbouring ranges on different nodes`);
      for (const m of merges) {
        const steps = m.steps?.map((s) => `${s.role === 'lead' ? 'lead' : `${s.role} copy`} ${s.from} -> ${s.to}`).join(', ');
        say(`  ${m.namespace}: ranges ${m.left}+${m.right}, move ${m.partition} ${steps ?? `${m.from} -> ${m.to}`}`);
      }
    }
    if (out.dryRun) return report;
    const results = await runMerges(s.driver.context, merges, { concurrency: out.concurrency });
    report.merges = results.map((r) => ({ namespace: r.namespace, left: r.left, right: r.right, merged: r.merged, reason: r.reason }));
    if (!out.json) say(`merged ${results.filter((r) => r.merged).length} of ${results.length}`);
    return report;
  });
}

/**
 * Sets the number of storage nodes: new nodes start and take their share online; leaving nodes (the newest ids)
 * hand every partition to the others before their processes stop. The rebalance lock is taken first, so a refused
 * scale starts and stops nothing.
 */
export async function scaleLocalStorage(dirPath: string, count: number, out: RebalanceOutput = {}): Promise<RebalanceReport> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_LOCAL_NODES) {
    throw new InvalidArgumentError(
      `storage must be a whole number from 1 to ${MAX_LOCAL_NODES} (and at least the copies of every replicated namespace)`,
    );
  }
  const dir = new ClusterDir(dirPath);
  // Only this directory's own processes are started and stopped: on a directory whose nodes run elsewhere (attach),
  // new local ids would clash with live remote nodes. Refused before anything starts.
  await assertLocalTier(dirPath, 'storage');
  const nodes = await dir.listNodes();
  const running = nodes.filter((n) => n.role === 'storage' && isAlive(n.pid)).sort((a, b) => compareIds(a.id, b.id));
  const compute = nodes.filter((n) => n.role === 'compute' && isAlive(n.pid)).length;
  return withDriver(dirPath, async (s) => {
    if (count >= running.length) {
      if (count > running.length) {
        // Plan over the nodes there would be: a dry run shows it; a real run first checks that every existing node
        // the plan needs answers, so a refusal comes before any process starts.
        const planned = [...running.map((n) => ({ id: n.id, capacity: n.capacity }))];
        for (let i = running.length; i < count; i++) planned.push({ id: `(new ${i - running.length + 1})`, capacity: 1 });
        const moves = s.driver.plan(planned);
        if (out.dryRun) return execute(s, moves, out);
        await s.driver.preflight(existingSides(s.driver, moves));
        const before = new Map(nodes.filter((n) => isAlive(n.pid)).map((n) => [n.id, n.pid]));
        const known = new Set(nodes.map((n) => n.id));
        try {
          await startLocalCluster({ dir: dirPath, storage: count, compute });
          await waitForStorage(s.driver, count);
          await s.driver.preflight(s.driver.plan());
        } catch (err) {
          // Refused (or failed) before any data moved: stop what this call started, so nothing is left changed.
          await stopStartedSince(dir, before, known);
          throw err;
        }
      }
      return execute(s, s.driver.plan(), out);
    }
    const leaving: LocalNodeFile[] = running.slice(count);
    const staying = running.slice(0, count).map((n) => ({ id: n.id, capacity: n.capacity }));
    const report = await execute(s, s.driver.plan(staying), out);
    if (out.dryRun) return report;
    await Promise.all(
      leaving.map(async (n) => {
        await terminate(n.pid!);
        await rm(dir.nodeDir(n.id), { recursive: true, force: true }); // its partitions live elsewhere now
      }),
    );
    if (!out.json) (out.write ?? ((l: string) => process.stdout.write(l + '\n')))(`stopped ${leaving.map((n) => n.id).join(', ')} after moving their data`);
    return report;
  });
}

/** Waits until the driver's member view shows `count` ready storage nodes (the new ones announced themselves). */
async function waitForStorage(driver: MigrationDriver, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (driver.context.members.ready('storage').length < count) {
    if (Date.now() > deadline) {
      const ready = driver.context.members.ready('storage').map((m) => m.id).sort(compareIds);
      throw new UnavailableError(
        `${ready.length} of ${count} storage nodes are registered as ready after 30 s (ready: ${ready.join(', ') || 'none'}); ` +
          `a node that is not may have lost its membership lease or failed to start (see its node.log)`,
        { details: { ready, wanted: count } },
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The moves' sides that exist already (planned new nodes are named `(new N)`), and the leader a follower copy is
 * copied from: what can be checked before any new node starts.
 */
function existingSides(driver: MigrationDriver, moves: PlannedMove[]): PlannedMove[] {
  const isNew = (id: string | null | undefined) => id === undefined || id === null || id.startsWith('(new ');
  const ids = new Set<string>();
  for (const m of moves) {
    if (!isNew(m.from)) ids.add(m.from!);
    if (!isNew(m.to)) ids.add(m.to);
    if (m.role === 'follower') {
      const leader = driver.context.catalog.find(m.namespace)?.ownerOf(m.partition);
      if (leader && !isNew(leader)) ids.add(leader);
    }
  }
  // preflight checks every from/to of the moves it is given: one pseudo-move per node to check.
  return [...ids].map((id) => ({ namespace: '', partition: -1, from: null, to: id }));
}

/** Stops the nodes this directory runs now that were not running in `before`; removes the directories of new ids. */
async function stopStartedSince(dir: ClusterDir, before: Map<string, number | undefined>, known: Set<string>): Promise<void> {
  const now = await dir.listNodes();
  await Promise.all(
    now
      .filter((n) => n.pid !== undefined && isAlive(n.pid) && before.get(n.id) !== n.pid)
      .map(async (n) => {
        await terminate(n.pid!);
        if (!known.has(n.id)) await rm(dir.nodeDir(n.id), { recursive: true, force: true }); // a new id, with nothing on it
      }),
  );
}
