/**
 * A throw-away Redis Cluster on loopback: N masters, no replicas, AOF with `appendfsync everysec`, no RDB snapshots.
 * Each master is its own `redis-server` process with its own directory under one temporary root.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { owned, trackDir, trackPid, untrackDir, untrackPid } from './cleanup.js';

const run = promisify(execFile);

export interface RedisCluster {
  root: string;
  ports: number[];
  pids: number[];
  stop(): Promise<void>;
}

export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port P whose cluster-bus port P + 10000 is free too, clear of the ports (and bus ports) `taken`. */
export async function freeClusterPort(taken: Iterable<number>): Promise<number> {
  const used = [...taken];
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 35_000);
    if (used.some((t) => Math.abs(t - port) % 10_000 === 0 || Math.abs(t - port) < 2)) continue;
    if ((await canBind(port)) && (await canBind(port + 10_000))) return port;
  }
  throw new Error('no free port pair (P, P+10000) found for redis-server');
}

/** Runs redis-cli with these arguments; resolves with its stdout. */
export async function redisCli(args: string[], timeout = 10_000, maxBuffer?: number): Promise<string> {
  const { stdout } = await run('redis-cli', args, maxBuffer === undefined ? { timeout } : { timeout, maxBuffer });
  return stdout;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not yet.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * One cluster-enabled master in `dir` (AOF with `appendfsync everysec`, no RDB snapshots), its pid tracked for the
 * cleanup. Returns at once: wait for it to answer PING.
 */
export function spawnRedisMaster(port: number, dir: string): ChildProcess {
  const child = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, 'nodes.conf'),
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      '--save', '',
      '--daemonize', 'no',
      '--logfile', join(dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  );
  trackPid(child.pid);
  child.once('error', (err) => process.stderr.write(`redis-server on ${port}: ${err.message}\n`));
  return child;
}

/** Starts the masters, creates the cluster, and resolves once every master reports `cluster_state:ok`. */
export async function startRedisCluster(parent: string, masters: number): Promise<RedisCluster> {
  const root = await mkdtemp(join(parent, 'shardflow-bench-redis-'));
  trackDir(root);
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map((c) => stopProcess(c)));
    for (const c of children) untrackPid(c.pid);
    await rm(root, { recursive: true, force: true });
    untrackDir(root);
  };
  return owned('redis cluster', stop, async (release) => {
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) {
      const port = await freeClusterPort(taken);
      taken.add(port);
      ports.push(port);
    }
    for (const port of ports) {
      const dir = join(root, String(port));
      await mkdir(dir);
      children.push(spawnRedisMaster(port, dir));
    }
    for (const port of ports) {
      await waitFor(`redis-server on ${port}`, async () => (await redisCli(['-p', String(port), 'ping'])).trim() === 'PONG');
    }
    await redisCli(
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      60_000,
    );
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () =>
        (await redisCli(['-p', String(port), 'cluster', 'info'])).includes('cluster_state:ok'),
      );
    }
    return {
      root,
      ports,
      pids: children.map((c) => c.pid!).filter(Boolean),
      stop: release,
    };
  });
}

export async function redisVersion(): Promise<string> {
  try {
    const { stdout } = await run('redis-server', ['--version']);
    return /v=(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
  } catch {
    return 'unknown';
  }
}
