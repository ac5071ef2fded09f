/**
 * A real local cluster for the provisioner and autoscaler tests, like test/harness/cluster.ts but whose `default`
 * namespace has few slots (64, not 4096): scaling storage moves a share of the slots, and at a few per
 * hundred milliseconds 2048 moves would take minutes. The behaviour under test (start, move, drain, stop) is the same.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, stopLocalCluster } from '../../src/cluster/local-cluster.js';
import { isAlive } from '../../src/cluster/spawn.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect, type ShardflowClient } from '../../src/client/index.js';

export interface SmallCluster {
  dir: string;
  /** A client, opened on first use and closed by `stop()`. */
  client(): Promise<ShardflowClient>;
  stop(): Promise<void>;
}

export const SMALL_SLOTS = 64;

export async function startSmallCluster(options: { storage: number; compute?: number; services?: string }): Promise<SmallCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-autoscale-'));
  let client: ShardflowClient | undefined;
  const stop = async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    await stopLocalCluster(dir).catch(() => undefined);
    for (const n of await new ClusterDir(dir).listNodes()) if (n.pid && isAlive(n.pid)) process.kill(n.pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await startLocalCluster({
      dir,
      storage: options.storage,
      compute: options.compute ?? 0,
      services: options.services,
      defaultNamespace: false,
    });
    client = await connect({ dir, name: 'test' });
    await client.createNamespace('default', { scheme: 'hash', slotCount: SMALL_SLOTS });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    async client() {
      client ??= await connect({ dir, name: 'test' });
      return client;
    },
    stop,
  };
}

/** Writes `count` keys `k0..` into `default`, 500 per batch. */
export async function load(client: ShardflowClient, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const n = Math.min(500, count - i);
    await client.batch('default', Array.from({ length: n }, (_, j) => ({ op: 'put' as const, key: `k${i + j}`, value: i + j })));
  }
}

/** Keys among `k0..k(count-1)` that do not read back as their number. */
export async function missingKeys(client: ShardflowClient, count: number): Promise<string[]> {
  const wrong: string[] = [];
  const keys = Array.from({ length: count }, (_, i) => `k${i}`);
  for (let i = 0; i < keys.length; i += 200) {
    await Promise.all(
      keys.slice(i, i + 200).map(async (key) => {
        if ((await client.get('default', key)) !== Number(key.slice(1))) wrong.push(key);
      }),
    );
  }
  return wrong;
}
