/**
 * kill -9 at the exact steps a move passes through after its copy (issue 4, point 2: "at any step"), hit with crash
 * points (util/failpoints.ts) rather than timing: the source dying while it holds the partition's writes (the fence),
 * the target dying just after the owner switch, the driving process dying just after it. Writers and readers run
 * throughout. Each ends in a move either rolled back (before the switch) or completed (after it), never a
 * half-owned partition, with nothing acknowledged lost.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { WriteChecker } from '../harness/write-checker.js';
import { addFourthStorageNode, expectBallastIntact, noMoveLeft, writeBallast } from '../harness/ballast.js';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect, PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver, moveBatch } from '../../src/migration/index.js';

const NS = 'fp';
const BALLAST = 1500;
let cluster: TestCluster;
let client: ShardflowClient;
let secret: Uint8Array;
let failpoints: string;

beforeAll(async () => {
  // Every process of the cluster (and the rebalance child) is started with crash points on; none is armed yet.
  failpoints = mkdtempSync(join(tmpdir(), 'sf-failpoints-'));
  process.env.SHARDFLOW_FAILPOINT_DIR = failpoints;
  cluster = await startTestCluster({ storage: 3, copies: 1 });
  client = await connect({ dir: cluster.dir, name: 'failpoints', timeoutMs: 3000 });
  secret = await new ClusterDir(cluster.dir).readSecret();
  await client.createNamespace(NS, { scheme: 'hash', slotCount: 12, copies: 1 });
  await writeBallast(client, NS, BALLAST);
  await addFourthStorageNode(cluster);
  // The default namespace balanced first, so that every move here is one of NS's.
  const pool = new PeerPool(client.members, secret, 'failpoints-setup');
  const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
  await driver.run(driver.plan().filter((m) => m.namespace !== NS), { concurrency: 8 }).finally(() => driver.close());
  pool.close();
}, 90_000);
afterAll(async () => {
  delete process.env.SHARDFLOW_FAILPOINT_DIR;
  await client?.close();
  await cluster?.stop();
  rmSync(failpoints, { recursive: true, force: true });
});

/** Arms crash point `name` (`step@who`); `fired` says whether a process took it. Disarmed after each test. */
function arm(name: string): { fired: () => boolean } {
  writeFileSync(join(failpoints, name), '');
  return { fired: () => existsSync(join(failpoints, `${name}.fired`)) };
}
afterEach(() => {
  // A point a test armed but did not reach must not fire in the next one.
  for (const f of readdirSync(failpoints)) if (!f.endsWith('.fired')) rmSync(join(failpoints, f), { force: true });
});

const checkerKeys = Array.from({ length: 300 }, (_, i) => `k${i}`);

/** Moves `partitions` of NS from `from` to `to` under the rebalance lock; resolves with the outcome, never rejects. */
async function move(from: string, partitions: number[], to: string): Promise<unknown> {
  const pool = new PeerPool(client.members, secret, 'failpoints-move');
  const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
  try {
    return await moveBatch(driver.context, { namespace: NS, from, to, partitions }).catch((err: unknown) => err);
  } finally {
    await driver.close();
    pool.close();
  }
}

describe('migration under kill -9 at each step after the copy', () => {
  it('source killed holding the partition\'s writes (fence): the move rolls back, the source serves again, nothing lost', async () => {
    const checker = new WriteChecker(client, NS, checkerKeys);
    checker.start();
    await checker.progress(200);
    const source = 's1';
    const partition = (await client.catalog.refresh(NS))!.partitionsOf(source)[0]!;
    const point = arm(`mig.export.fence@${source}`);
    const died = cluster.nextMemberEvent((e) => e.member.id === source && e.type === 'death', 30_000);
    expect(await move(source, [partition], 's4')).toBeInstanceOf(Error);
    expect(point.fired()).toBe(true);
    await died;
    await noMoveLeft(client, NS, { jobs: true });
    expect((await client.catalog.refresh(NS))!.ownerOf(partition)).toBe(source);
    await cluster.restart(source);
    await checker.progress(200);
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  }, 90_000);

  it('target killed just after the owner switch: the move stands, the restarted target serves the partition, nothing lost', async () => {
    const checker = new WriteChecker(client, NS, checkerKeys);
    checker.start();
    await checker.progress(200);
    const source = 's2';
    const partition = (await client.catalog.refresh(NS))!.partitionsOf(source)[0]!;
    const point = arm('mig.import.finish@s4');
    const died = cluster.nextMemberEvent((e) => e.member.id === 's4' && e.type === 'death', 30_000);
    const outcome = await move(source, [partition], 's4');
    expect(outcome).not.toBeInstanceOf(Error); // switched: the target's finish is a courtesy, its failure changes nothing
    expect(point.fired()).toBe(true);
    await died;
    await noMoveLeft(client, NS, { jobs: true });
    expect((await client.catalog.refresh(NS))!.ownerOf(partition)).toBe('s4');
    await cluster.restart('s4');
    await checker.progress(200);
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  }, 90_000);

  it('driver killed just after the owner switch: the move stands, its job record goes with its lease, a new rebalance completes', async () => {
    const checker = new WriteChecker(client, NS, checkerKeys);
    checker.start();
    await checker.progress(200);
    const point = arm('move.switched@rebalance');
    const before = await client.catalog.refresh(NS);
    const child = spawn(process.execPath, [BIN_PATH, 'rebalance', '--dir', cluster.dir, '--concurrency', '1'], { stdio: 'ignore' });
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    expect(exit.signal).toBe('SIGKILL');
    expect(point.fired()).toBe(true);
    await noMoveLeft(client, NS, { jobs: true }); // the job record expired with the dead driver's lease
    const after = await client.catalog.refresh(NS);
    const moved = before!.partitions().filter((p) => after!.ownerOf(p) !== before!.ownerOf(p));
    expect(moved.length).toBeGreaterThan(0); // the switch it died after stands
    // The lock went with it too: a new rebalance runs to the end.
    const pool = new PeerPool(client.members, secret, 'failpoints-rebalance');
    const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
    try {
      await driver.run(driver.plan(), { concurrency: 4 });
      expect(driver.plan()).toEqual([]);
    } finally {
      await driver.close();
      pool.close();
    }
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  }, 90_000);
});
