/**
 * The two systems behind one small interface, so the load generator runs the same loop against both. Both store the
 * same string value under the same keys; both clients pipeline requests issued concurrently (shardflow: one corked
 * connection per node; ioredis: `enableAutoPipelining`).
 */
import { Cluster } from 'ioredis';
import { connect } from '../../src/client/index.js';
import type { ShardflowClient } from '../../src/client/client.js';

export interface KvTarget {
  readonly name: string;
  /** The server processes (for CPU accounting). */
  readonly serverPids: readonly number[];
  put(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<string | null | undefined>;
  /** Writes every key once (not measured; may use bulk paths). */
  prefill(keys: string[], value: string): Promise<void>;
  close(): Promise<void>;
}

const NAMESPACE = 'default';

/** Runs `task` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

export async function shardflowTarget(dir: string, serverPids: readonly number[]): Promise<KvTarget> {
  const client: ShardflowClient = await connect({ dir, name: 'bench' });
  return {
    name: 'shardflow',
    serverPids,
    put: (key, value) => client.put(NAMESPACE, key, value),
    get: (key) => client.get<string>(NAMESPACE, key),
    async prefill(keys, value) {
      const chunks: string[][] = [];
      for (let i = 0; i < keys.length; i += 1000) chunks.push(keys.slice(i, i + 1000));
      await pool(chunks, 4, (chunk) => client.batch(NAMESPACE, chunk.map((key) => ({ op: 'put' as const, key, value }))));
    },
    close: () => client.close(),
  };
}

export async function redisTarget(ports: number[], serverPids: readonly number[]): Promise<KvTarget> {
  const cluster = new Cluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    { enableAutoPipelining: true, enableOfflineQueue: true, lazyConnect: false },
  );
  await new Promise<void>((resolve, reject) => {
    if (cluster.status === 'ready') return resolve();
    const timer = setTimeout(() => reject(new Error('ioredis Cluster did not become ready in 20 s')), 20_000);
    cluster.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return {
    name: 'redis',
    serverPids,
    put: (key, value) => cluster.set(key, value),
    get: (key) => cluster.get(key),
    async prefill(keys, value) {
      await pool(keys, 256, (key) => cluster.set(key, value));
    },
    async close() {
      await cluster.quit().catch(() => cluster.disconnect());
    },
  };
}
