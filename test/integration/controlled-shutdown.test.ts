/**
 * Controlled shutdown (Kafka's): a storage node stopped with SIGTERM under writers first says it is stopping and hands
 * the lead of every partition it leads to an in-sync follower — lead handoffs, before it leaves membership — so no
 * write fails and no acknowledged write is lost; it says so in its log (`handed off leads before stopping`).
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
    // Its own account, written before it left: every partition it led was handed off, none left to a failover.
    const log = await readFile(new ClusterDir(cluster.dir).nodeLog(victim), 'utf8');
    const line = log.split('\n').find((l) => l.includes('handed off leads before stopping'));
    expect(line, 'the shutdown handoff log line').toBeDefined();
    const account = JSON.parse(line!.slice(line!.indexOf('{'))) as { handedOff: number; kept: number };
    expect(account.kept).toBe(0);
    expect(account.handedOff).toBeGreaterThan(0);
    await cluster.restart(victim);
  }, 60_000);
});
