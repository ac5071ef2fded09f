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

export interface RunningEtcdCluster extends RunningEtcd {
  /** The members, in order: each can be stopped (killed, its data gone) on its own. */
  members: Array<{ name: string; endpoint: string; stop(): Promise<void> }>;
  /** The member that leads the raft group now (asks the members in turn). */
  leader(): Promise<string>;
}

/**
 * Starts an etcd cluster of `size` members (default 3) on this machine, each with its own ports and data folder,
 * and resolves once every member reports healthy (which needs a quorum, so they start together).
 */
export async function startEtcdCluster(options: { size?: number; timeoutMs?: number } = {}): Promise<RunningEtcdCluster> {
  const size = options.size ?? 3;
  const ports = await freePorts(size * 2);
  const names = Array.from({ length: size }, (_, i) => `sf-m${i}`);
  const clients = names.map((_, i) => `http://127.0.0.1:${ports[2 * i]}`);
  const peers = names.map((_, i) => `http://127.0.0.1:${ports[2 * i + 1]}`);
  const initialCluster = names.map((n, i) => `${n}=${peers[i]}`).join(',');
  const started = await Promise.allSettled(
    names.map((name, i) =>
      spawnServer({
        name: 'etcd',
        command: (dir) => [
          'etcd',
          [
            `--name=${name}`,
            `--data-dir=${join(dir, 'data')}`,
            `--listen-client-urls=${clients[i]}`,
            `--advertise-client-urls=${clients[i]}`,
            `--listen-peer-urls=${peers[i]}`,
            `--initial-advertise-peer-urls=${peers[i]}`,
            `--initial-cluster=${initialCluster}`,
            '--initial-cluster-token=sf-test-cluster',
            '--initial-cluster-state=new',
            '--heartbeat-interval=50',
            '--election-timeout=500',
            '--logger=zap',
            '--log-level=error',
          ],
        ],
        ready: () => healthy(clients[i]!),
        timeoutMs: options.timeoutMs ?? 30_000,
      }),
    ),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (servers.length < size) {
    await Promise.allSettled(servers.map((s) => s.stop()));
    throw (started.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
  }
  const members = names.map((name, i) => ({ name, endpoint: clients[i]!, stop: () => servers[i]!.stop() }));
  return {
    endpoints: clients,
    members,
    async leader() {
      for (const m of members) {
        try {
          const res = await fetch(`${m.endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
          const body = (await res.json()) as { leader?: string; header?: { member_id?: string } };
          if (body.leader && body.leader === body.header?.member_id) return m.name;
        } catch {
          // A stopped member: ask the next.
        }
      }
      throw new Error('no etcd member says it leads');
    },
    stop: async () => {
      await Promise.allSettled(servers.map((s) => s.stop()));
    },
  };
}
