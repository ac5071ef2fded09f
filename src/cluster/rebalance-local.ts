/**
 * Rebalancing and scaling the storage tier of a cluster from this host: plan with the planner, show the plan, carry
 * it out with a live progress line, and for scale-in drain the leaving nodes before their processes stop.
 */
import { rm } from 'node:fs/promises';
import { SingleBar, Presets } from 'cli-progress';
import { ClusterDir, compareIds, type LocalNodeFile } from '../config/cluster-dir.js';
import { connect, PeerPool } from '../client/index.js';
import { planRebalance, runMoves, type MoveContext, type PlannedMove } from '../migration/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { isAlive, terminate } from './spawn.js';
import { startLocalCluster, MAX_LOCAL_NODES } from './local-cluster.js';

interface Output {
  dryRun?: boolean;
  json?: boolean;
  concurrency?: number;
}

async function withContext<T>(dirPath: string, work: (ctx: MoveContext) => Promise<T>): Promise<T> {
  const dir = new ClusterDir(dirPath);
  const client = await connect({ dir: dir.root, name: 'rebalance' });
  const pool = new PeerPool(client.members, await dir.readSecret(), 'rebalance');
  try {
    return await work({ catalog: client.catalog, members: client.members, pool });
  } finally {
    pool.close();
    await client.close();
  }
}

function summary(moves: PlannedMove[]): string {
  const byRoute = new Map<string, number>();
  for (const m of moves) {
    const k = `${m.namespace}: ${m.from ?? '(none)'} -> ${m.to}`;
    byRoute.set(k, (byRoute.get(k) ?? 0) + 1);
  }
  return [...byRoute].map(([k, n]) => `  ${k}  ${n} partition${n === 1 ? '' : 's'}`).join('\n');
}

async function execute(ctx: MoveContext, moves: PlannedMove[], out: Output): Promise<void> {
  const say = (s: string) => process.stdout.write(s + '\n');
  if (!out.json) say(moves.length === 0 ? 'balanced: nothing to move' : `plan: ${moves.length} partitions to move\n${summary(moves)}`);
  if (out.dryRun || moves.length === 0) {
    if (out.json) say(JSON.stringify({ moves }, null, 2));
    return;
  }
  const bar = !out.json && process.stdout.isTTY ? new SingleBar({ format: '{bar} {value}/{total} partitions  {rate}' }, Presets.shades_classic) : undefined;
  bar?.start(moves.length, 0, { rate: '' });
  const started = Date.now();
  let keys = 0;
  const results = await runMoves(ctx, moves, {
    concurrency: out.concurrency,
    onMoved: (r, done) => {
      keys += r.copied;
      bar?.update(done, { rate: `${Math.round((keys / Math.max(1, Date.now() - started)) * 1000)} keys/s` });
    },
  });
  bar?.stop();
  const fences = results.map((r) => r.fenceMs).sort((a, b) => a - b);
  const p50 = fences[Math.floor(fences.length / 2)] ?? 0;
  const max = fences[fences.length - 1] ?? 0;
  if (out.json) say(JSON.stringify({ moves, results }, null, 2));
  else say(`moved ${results.length} partitions (${keys} keys) in ${Date.now() - started} ms; requests held per partition: median ${p50} ms, max ${max} ms`);
}

/** Balances the cluster's storage nodes. */
export async function rebalanceLocal(dirPath: string, out: Output = {}): Promise<void> {
  await withContext(dirPath, async (ctx) => execute(ctx, planRebalance(ctx), out));
}

/**
 * Sets the number of storage nodes: new nodes start and take their share online; leaving nodes (the newest ids)
 * hand every partition to the others before their processes stop.
 */
export async function scaleLocalStorage(dirPath: string, count: number, out: Output = {}): Promise<void> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_LOCAL_NODES) {
    throw new InvalidArgumentError(`storage must be a whole number from 1 to ${MAX_LOCAL_NODES}: a cluster needs a storage node`);
  }
  const dir = new ClusterDir(dirPath);
  const running = (await dir.listNodes()).filter((n) => n.role === 'storage' && isAlive(n.pid)).sort((a, b) => compareIds(a.id, b.id));
  const compute = (await dir.listNodes()).filter((n) => n.role === 'compute' && isAlive(n.pid)).length;
  if (count >= running.length) {
    if (count > running.length) await startLocalCluster({ dir: dirPath, storage: count, compute });
    await rebalanceLocal(dirPath, out);
    return;
  }
  const leaving: LocalNodeFile[] = running.slice(count);
  const staying = running.slice(0, count).map((n) => ({ id: n.id, capacity: n.capacity }));
  await withContext(dirPath, async (ctx) => execute(ctx, planRebalance(ctx, staying), out));
  await Promise.all(
    leaving.map(async (n) => {
      await terminate(n.pid!);
      await rm(dir.nodeDir(n.id), { recursive: true, force: true }); // its partitions live elsewhere now
    }),
  );
  if (!out.json) process.stdout.write(`stopped ${leaving.map((n) => n.id).join(', ')} after moving their data\n`);
}
