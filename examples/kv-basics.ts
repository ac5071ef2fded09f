/**
 * The key-value API in one runnable file: start a local cluster, write, read, compare-and-set, scan, stop.
 *
 *   node --import tsx examples/kv-basics.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, startLocalCluster, stopLocalCluster, VersionConflictError } from '../src/index.js';

export async function main(log: (line: string) => void = console.log): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'shardflow-example-'));
  const seen: string[] = [];
  try {
    await startLocalCluster({ dir, storage: 2, compute: 0 });
    const client = await connect({ dir });
    try {
      await client.createNamespace('users', { scheme: 'hash' });
      const v1 = await client.put('users', 'u1', { name: 'Ada' });
      await client.put('users', 'u1', { name: 'Ada Lovelace' }, { ifVersion: v1 });
      try {
        await client.put('users', 'u1', { name: 'stale' }, { ifVersion: v1 });
      } catch (err) {
        if (err instanceof VersionConflictError) seen.push('conflict');
      }
      seen.push(JSON.stringify(await client.get('users', 'u1')));

      await client.createNamespace('log', { scheme: 'range' });
      await client.batch('log', ['b', 'c', 'a'].map((k) => ({ op: 'put' as const, key: k, value: k.toUpperCase() })));
      for await (const e of client.scan('log')) seen.push(`${e.key}=${String(e.value)}`);
    } finally {
      await client.close();
    }
  } finally {
    await stopLocalCluster(dir);
    await rm(dir, { recursive: true, force: true });
  }
  for (const line of seen) log(line);
  return seen;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
