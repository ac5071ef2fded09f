/**
 * One Redis Cluster run: 3 masters, no replicas (AOF, appendfsync everysec, as bench:kv runs them), the same data
 * loaded through ioredis, the same foreground load, then a 4th `redis-server` added with
 * `redis-cli --cluster add-node` and the slots rebalanced onto it with
 * `redis-cli --cluster rebalance --cluster-use-empty-masters`, then every key read back.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freeClusterPort, redisCli, spawnRedisMaster, startRedisCluster, stopProcess } from '../redis-cluster.js';
import { onCleanup, owned, trackDir, trackPid, untrackDir, untrackPid } from '../cleanup.js';
import { forEachIndex, loadedLine, startForeground, verifyAll, type Values } from './workload.js';
import { cpuOf, cpuSecondsBetween, waitFor } from './proc.js';
import { cpuSnapshot } from '../cpu.js';
import { monotonicUs, type RunResult } from './result.js';
import type { RebalanceOptions } from './options.js';

const run = promisify(execFile);
type Log = (message: string) => void;
const SLOTS = 16384;

/** Fails with a clear message when redis-server or redis-cli is not installed (the bench installs nothing). */
export async function checkRedisTools(): Promise<void> {
  for (const tool of ['redis-server', 'redis-cli']) {
    try {
      await run(tool, ['--version'], { timeout: 10_000 });
    } catch {
      throw new Error(
        `${tool} is not installed (or not on PATH); bench:rebalance compares with Redis Cluster and needs it. ` +
          'Install it, e.g. `apt-get install -y redis-server redis-tools`, or run with `--systems shardflow`.',
      );
    }
  }
}

async function cli(args: string[], timeout = 30_000): Promise<string> {
  return redisCli(args, timeout, 64 * 2 ** 20);
}

/** Runs a long redis-cli command, keeping the tail of its output for errors; `onLine` sees each line. */
function cliStreaming(args: string[], onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackPid(child.pid);
    const tail: string[] = [];
    let partial = '';
    const take = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        onLine(line);
        tail.push(line.length > 300 ? line.slice(0, 300) + '…' : line);
        if (tail.length > 30) tail.shift();
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', (err) => {
      untrackPid(child.pid);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      untrackPid(child.pid);
      if (code === 0) resolve();
      else {
        // eslint-disable-next-line no-control-regex
        const text = [...tail, partial].join('\n').replace(/\x1b\[[0-9;]*m/g, '');
        reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} exited with ${signal ?? code}:\n${text}`));
      }
    });
  });
}

/** Slot → owner "host:port", from CLUSTER SLOTS on one node. */
async function slotOwners(port: number): Promise<string[]> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 3 });
  try {
    await r.connect();
    const ranges = await r.cluster('SLOTS');
    const owners = new Array<string>(SLOTS).fill('');
    for (const [from, to, master] of ranges) {
      if (master) for (let s = from; s <= to; s++) owners[s] = `${master[0]}:${master[1]}`;
    }
    return owners;
  } finally {
    r.disconnect();
  }
}

async function withNode<T>(port: number, work: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 3 });
  try {
    await r.connect();
    return await work(r);
  } finally {
    r.disconnect();
  }
}

/** Starts one more cluster-enabled master with the same settings as startRedisCluster's. */
async function startExtraMaster(parent: string, taken: number[]): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(parent, 'shardflow-bench-redis4-'));
  trackDir(dir);
  const port = await freeClusterPort(taken);
  const child = spawnRedisMaster(port, dir);
  const stop = async () => {
    await stopProcess(child);
    untrackPid(child.pid);
    await rm(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  return owned('4th redis-server', stop, async (release) => {
    await waitFor(`redis-server on ${port}`, async () => (await cli(['-p', String(port), 'ping'])).trim() === 'PONG', 20_000, 10);
    return { port, pid: child.pid!, stop: release };
  });
}

export async function runRedis(
  options: RebalanceOptions,
  repeat: number,
  keys: string[],
  values: Values,
  log: Log,
): Promise<RunResult> {
  log('starting Redis Cluster: 3 masters');
  const cluster = await startRedisCluster(options.tmp, 3);
  const closers: (() => Promise<void>)[] = [];
  const dropCleanup = onCleanup('redis run', async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await cluster.stop();
  });
  try {
    // The initial load pipelines (autopipelining); the foreground and the check afterwards do not: ioredis hands the
    // caller a MOVED error when the commands of one automatic pipeline are redirected to different nodes, and refuses
    // pipelines whose keys' slots it has since seen move ("All keys in the pipeline should belong to the same slots
    // allocation group"). Without it every command follows MOVED and ASK redirections itself, as shardflow's client does.
    const connectCluster = async (enableAutoPipelining: boolean) => {
      const c = new Cluster(
        cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
        { enableAutoPipelining, enableOfflineQueue: true, lazyConnect: false },
      );
      closers.push(async () => {
        await c.quit().catch(() => c.disconnect());
      });
      await new Promise<void>((resolve, reject) => {
        if (c.status === 'ready') return resolve();
        const timer = setTimeout(() => reject(new Error('ioredis Cluster did not become ready in 20 s')), 20_000);
        c.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return c;
    };
    const loader = await connectCluster(true);
    const client = await connectCluster(false);

    const initial = values.make(0);
    const t0 = performance.now();
    let lastLog = t0;
    let loaded = 0;
    await forEachIndex(keys.length, 512, async (i) => {
      await loader.set(keys[i]!, initial);
      loaded++;
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`  loaded ${loaded.toLocaleString('en-US')} / ${keys.length.toLocaleString('en-US')} keys`);
      }
    });
    const loadSeconds = (performance.now() - t0) / 1000;
    log(loadedLine(keys.length, values, loadSeconds));

    const { fg, base } = await startForeground(
      { put: (key, value) => client.set(key, value), get: (key) => client.get(key) },
      { keys, values, concurrency: options.concurrency, rate: options.rate, writeRatio: options.writeRatio },
      options,
      closers,
    );

    const seed = cluster.ports[0]!;
    const before = await slotOwners(seed);
    const cpuBefore = cpuOf(cluster.pids);
    const hostBefore = cpuSnapshot([]);
    fg.setPhase('during');
    const startUs = monotonicUs();
    const tStart = performance.now();
    const extra = await startExtraMaster(options.tmp, cluster.ports);
    closers.push(() => extra.stop());
    const tSpawned = performance.now();
    await cli(['--cluster', 'add-node', `127.0.0.1:${extra.port}`, `127.0.0.1:${seed}`], 60_000);
    const tAdded = performance.now();
    // rebalance refuses to run until every node agrees on the configuration, can only hand slots to a node the others
    // know, and the new node refuses MIGRATE's RESTORE (CLUSTERDOWN) until it has the slot map: wait until every
    // master counts 4 known nodes and reports cluster_state:ok, and redis-cli's own check passes.
    await waitFor(
      'every master to know the new one',
      async () => {
        for (const port of [...cluster.ports, extra.port]) {
          const info = await cli(['-p', String(port), 'cluster', 'info']);
          if (!info.includes('cluster_known_nodes:4') || !info.includes('cluster_state:ok')) return false;
        }
        const out = await cli(['--cluster', 'check', `127.0.0.1:${seed}`]).catch((e: { stdout?: string }) => e.stdout ?? '');
        return out.includes('[OK] All nodes agree about slots configuration.') && /\bin 4 masters\b/.test(out);
      },
      60_000,
      20,
    );
    const tJoined = performance.now();
    log(
      `  4th master started in ${((tSpawned - tStart) / 1000).toFixed(2)} s, add-node ${((tAdded - tSpawned) / 1000).toFixed(2)} s, ` +
        `known to all and agreed ${((tJoined - tAdded) / 1000).toFixed(2)} s`,
    );
    let moving = 0;
    let lastProgress = performance.now();
    let failure: string | undefined;
    await cliStreaming(
      [
        '--cluster', 'rebalance', `127.0.0.1:${seed}`,
        '--cluster-use-empty-masters',
        '--cluster-pipeline', String(options.redisPipeline),
      ],
      (line) => {
        if (line.startsWith('Moving ')) moving++;
        if (performance.now() - lastProgress > 5000) {
          lastProgress = performance.now();
          log(`  redis-cli rebalance: ${moving} "Moving" steps so far`);
        }
      },
    ).catch((err: unknown) => {
      // Recorded, not thrown: what the failed rebalance did to the data is checked all the same.
      failure = err instanceof Error ? err.message : String(err);
      log(`  the rebalance FAILED: ${failure}`);
    });
    const tEnd = performance.now();
    const endUs = monotonicUs();
    const cpuAfter = cpuOf([...cluster.pids, extra.pid]);
    const hostAfter = cpuSnapshot([]);
    const serverCpuSeconds = cpuSecondsBetween(cpuBefore, cpuAfter);
    const benchCpuSeconds = (hostAfter.clientUs - hostBefore.clientUs) / 1e6;
    const otherCores =
      hostAfter.hostUs === undefined || hostBefore.hostUs === undefined
        ? undefined
        : Math.max(0, ((hostAfter.hostUs - hostBefore.hostUs) / 1e6 - benchCpuSeconds - serverCpuSeconds) / ((tEnd - tStart) / 1000));
    fg.setPhase('after');
    const during = fg.stats('during');
    await fg.stop();

    const after = await slotOwners(seed);
    const movedSlots: number[] = [];
    for (let s = 0; s < SLOTS; s++) if (after[s] !== before[s]) movedSlots.push(s);
    const ports = [...cluster.ports, extra.port];
    let movedKeys = 0;
    const byOwner = new Map<number, number[]>();
    for (const s of movedSlots) {
      const port = Number(after[s]!.split(':')[1]);
      let list = byOwner.get(port);
      if (!list) byOwner.set(port, (list = []));
      list.push(s);
    }
    for (const [port, slots] of byOwner) {
      const counts = await withNode(port, async (r) => {
        const pipe = r.pipeline();
        for (const s of slots) pipe.cluster('COUNTKEYSINSLOT', s);
        return ((await pipe.exec()) ?? []).map(([err, n]) => (err ? 0 : Number(n)));
      });
      movedKeys += counts.reduce((a, b) => a + b, 0);
    }
    const keysPerNode = await Promise.all(ports.map((port) => withNode(port, (r) => r.dbsize())));
    const notes = [
      `slots moved ${movedSlots.length}, to the new master ${movedSlots.filter((s) => after[s] === `127.0.0.1:${extra.port}`).length}`,
      `keys per master at the end: ${keysPerNode.map((n) => n.toLocaleString('en-US')).join(' / ')}`,
    ];
    if (failure) notes.unshift(`FAILED: ${failure}`);
    if (fg.errorLog.length) notes.push(`foreground errors: ${fg.errorLog.join(' | ')}`);

    log(`  verifying all ${keys.length.toLocaleString('en-US')} keys`);
    const check = await verifyAll((key) => client.get(key), keys, fg.acked);
    if (check.examples.length) notes.push(`verify: ${check.examples.join(' | ')}`);

    return {
      system: 'redis',
      repeat,
      keys: keys.length,
      valueBytes: values.bytes,
      loadSeconds,
      scaleSeconds: (tEnd - tStart) / 1000,
      joinSeconds: (tJoined - tStart) / 1000,
      moveSeconds: (tEnd - tJoined) / 1000,
      movedPartitions: movedSlots.length,
      partitions: SLOTS,
      movedKeys,
      keysPerNode,
      baseline: base,
      during,
      lostWrites: check.lost,
      unreadable: check.unreadable,
      ackedWrites: fg.ackedWrites,
      serverCpuSeconds,
      benchCpuSeconds,
      otherCores,
      notes,
      moveWindowUs: { startUs, endUs },
      failure,
    };
  } finally {
    dropCleanup();
    for (const close of closers.reverse()) {
      await close().catch((err: unknown) => log(`  closing: ${err instanceof Error ? err.message : String(err)}`));
    }
    await cluster.stop();
  }
}
