/**
 * A real, single-member etcd for tests: free ports, a temporary data folder, short raft timings so that a lease of
 * TTL 1 s is honoured (etcd's minimum TTL is 1.5 × election timeout), gone again after `stop()`.
 *
 * Needs the `etcd` binary on PATH (Debian: `apt-get install etcd-server`; `.ci/run` installs it).
 *
 * @example
 * ```ts
 * let etcd: RunningEtcd;
 * beforeAll(async () => { etcd = await startEtcd(); });
 * afterAll(() => etcd.stop());
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './ports.js';

export interface RunningEtcd {
  /** Client URLs, e.g. `['http://127.0.0.1:40123']`. */
  endpoints: string[];
  /** Kills etcd and removes its data folder. */
  stop(): Promise<void>;
}

/** Starts etcd and resolves once it reports healthy (rejects after `timeoutMs`, default 20 s). */
export async function startEtcd(options: { timeoutMs?: number } = {}): Promise<RunningEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-etcd-'));
  const [clientPort, peerPort] = await freePorts(2);
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let output = '';
  const child = spawn(
    'etcd',
    [
      '--name=sf-test',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=sf-test=${peer}`,
      '--initial-cluster-state=new',
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-level=error',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000); // The tail, for the error message if it fails.
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // Settles on 'error' too: a binary that cannot be spawned never exits.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const stop = async () => {
    await kill(child, exited);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitHealthy(client, child, options.timeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    throw new Error(`etcd did not start: ${(err as Error).message}\n${output}`, { cause: err });
  }
  return { endpoints: [client], stop };
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  while (Date.now() < deadline) {
    if (spawnError) throw spawnError;
    if (child.exitCode !== null) throw new Error(`etcd exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not healthy within ${timeoutMs} ms`);
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
