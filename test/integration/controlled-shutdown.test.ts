/**
 * Controlled shutdown (Kafka's): a storage node stopped with SIGTERM under writers first says it is stopping and hands
 * the lead of every partition it leads to an in-sync follower — lead handoffs, before it leaves membership — so no
 * write fails, no acknowledged write is lost, and no failover happens (no node's controller logs one for it). The
 * other nodes' controllers may hand some of its leads away too once it says `stopping`: handoffs either way.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { fullyReplicated, tableWhen } from '../harness/tables.js';
import { WriteChecker } from '../harness/write-checker.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import type { ShardflowClient } from '../../src/index.js';

const NS = 'calm';
let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 });
  client = await cluster.client();
  await client.createNamespace(NS, { scheme: 'hash', slotCount: 64, copies: 3 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('controlled shutdown', () => {
  it('hands off every lead before leaving: writes go on without a failure, nothing acknowledged is lost', async () => {
    await tableWhen(client, NS, fullyReplicated, 30_000);
    const victim = 's2';
    const keys = Array.from({ length: 200 }, (_, i) => `c${i}`);
    const checker = new WriteChecker(client, NS, keys, { writers: 6, readers: 2 });
    checker.start();
    await checker.progress(200);
    expect((await client.catalog.refresh(NS))!.partitionsOf(victim).length).toBeGreaterThan(0);

    // It announces `stopping` first, and leaves (not dies) once its leads are handed off.
    const stopping = cluster.nextMemberEvent((e) => e.member.id === victim && e.type === 'update' && e.member.state === 'stopping', 30_000);
    const left = cluster.nextMemberEvent((e) => e.member.id === victim && (e.type === 'leave' || e.type === 'death'), 30_000);
    process.kill(await cluster.pid(victim), 'SIGTERM');
    await stopping;
    expect((await left).type).toBe('leave');
    await checker.progress(200);
    await checker.stop();

    expect(checker.failedWrites).toBe(0);
    expect(checker.staleReads).toEqual([]);
    expect(await checker.verify()).toEqual([]);
    expect((await client.catalog.refresh(NS))!.partitionsOf(victim)).toEqual([]);
    // Every lead left by handoff: no controller failed this namespace over from it (it would log `failover`).
    await cluster.restart(victim);
    const files = new ClusterDir(cluster.dir);
    for (const id of ['s1', 's2', 's3']) {
      const log = await readFile(files.nodeLog(id), 'utf8');
      const failovers = log.split('\n').filter((l) => l.includes(' failover {') && l.includes(`"namespace":"${NS}"`));
      expect(failovers, `failovers logged by ${id}`).toEqual([]);
    }
  }, 60_000);
});
