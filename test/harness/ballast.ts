/**
 * Ballast for migration tests: keys `b0..bN-1` of ~1 KiB each (so a move at a low rate lasts long enough to be hit in
 * its middle), checked intact afterwards; and the 4th storage node those tests move partitions to.
 */
import { expect } from 'vitest';
import type { ShardflowClient } from '../../src/client/index.js';
import { startLocalCluster } from '../../src/cluster/local-cluster.js';
import type { TestCluster } from './cluster.js';
import { tableWhen } from './tables.js';
import { readJobs } from '../../src/migration/index.js';

/** Writes `count` ballast keys into `ns`, 500 per batch. */
export async function writeBallast(client: ShardflowClient, ns: string, count: number): Promise<void> {
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < count; i += 500) {
    const n = Math.min(500, count - i);
    await client.batch(ns, Array.from({ length: n }, (_, j) => ({ op: 'put' as const, key: `b${i + j}`, value: `${i + j}:${pad}` })));
  }
}

/** Every ballast key is there with its own value, and no other `b` key. */
export async function expectBallastIntact(client: ShardflowClient, ns: string, count: number): Promise<void> {
  let n = 0;
  for await (const e of client.scan(ns, { start: 'b', end: 'c' })) {
    expect(String(e.value).startsWith(`${e.key.slice(1)}:`)).toBe(true);
    n++;
  }
  expect(n).toBe(count);
}

/** Starts storage node s4 in the cluster's directory and resolves once membership has seen it join. */
export async function addFourthStorageNode(cluster: TestCluster): Promise<void> {
  const joined = cluster.nextMemberEvent((e) => e.type === 'join' && e.member.id === 's4');
  await startLocalCluster({ dir: cluster.dir, storage: 4, compute: 0 });
  await joined;
}

/**
 * kill -9 of `victim` while `checker`'s writers run; once no partition of `ns` is on it, more writes, 50 ballast keys
 * changed (`b0..b49`) and 50 deleted (`b50..b99`); then the node is started again on its data. What a copy coming
 * back must catch up on.
 */
export async function changeWhileAway(
  cluster: TestCluster,
  client: ShardflowClient,
  ns: string,
  victim: string,
  checker: { progress(writes: number): Promise<void> },
): Promise<void> {
  await cluster.kill9(victim);
  await tableWhen(client, ns, (t) => t.partitions().every((p) => !t.holds(p, victim)), 20_000);
  await checker.progress(200);
  await client.batch(ns, Array.from({ length: 50 }, (_, i) => ({ op: 'put' as const, key: `b${i}`, value: `changed ${i}` })));
  await client.batch(ns, Array.from({ length: 50 }, (_, i) => ({ op: 'del' as const, key: `b${50 + i}` })));
  await cluster.restart(victim);
}

/**
 * Resolves once no move entry of `ns` is left in its routing record (each move finished or rolled back) and, with
 * `jobs`, no migration job record either. Polled: the two live in different places of the coordinator.
 */
export async function noMoveLeft(client: ShardflowClient, ns: string, options: { jobs?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const t = await client.catalog.refresh(ns);
    const moves = Object.keys(t!.record.migrations ?? {}).length;
    if (moves === 0 && (!options.jobs || (await readJobs(client.coordinator)).size === 0)) return;
    if (Date.now() > deadline) throw new Error(`moves${options.jobs ? ' or job records' : ''} left: ${JSON.stringify(t!.record.migrations)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
