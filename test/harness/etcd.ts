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
import { join } from 'node:path';
import { freePorts } from './ports.js';
import { spawnServer } from './spawn-server.js';

export interface RunningEtcd {
  /** Client URLs, e.g. `['http://127.0.0.1:40123']`. */
  endpoints: string[];
  /** Kills etcd and removes its data folder. */
  stop(): Promise<void>;
}

/** Starts etcd and resolves once it reports healthy (rejects after `timeoutMs`, default 20 s). */
export async function startEtcd(options: { timeoutMs?: number } = {}): Promise<RunningEtcd> {
  const [clientPort, peerPort] = await freePorts(2);
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const { stop } = await spawnServer({
    name: 'etcd',
    command: (dir) => [
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
    ],
    ready: () => healthy(client),
    timeoutMs: options.timeoutMs ?? 20_000,
  });
  return { endpoints: [client], stop };
}

/** Whether etcd at `url` reports itself healthy (false while it is not listening yet). */
async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}
