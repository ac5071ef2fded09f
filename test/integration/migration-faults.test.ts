/**
 * kill -9 of the source, the target and the driving process in the middle of a move, with writers and readers
 * running: each ends in a cleanly rolled-back move (no move entry left, the source still the owner, no half copy left
 * on the target), nothing acknowledged is lost, and a later rebalance completes. Moves are slowed with a bandwidth
 * limit so that "the middle" lasts long enough to hit.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { WriteChecker } from '../harness/write-checker.js';
import { addFourthStorageNode, expectBallastIntact, noMoveLeft, writeBallast } from '../harness/ballast.js';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect, PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver, readJobs, type JobRecord } from '../../src/migration/index.js';
import { MIGRATIONS_PREFIX } from '../../src/coordination/index.js';
import { StorageEngine } from '../../src/storage/engine.js';

const NS = 'big';
const BALLAST = 3000;
let cluster: TestCluster;
let client: ShardflowClient;
let secret: Uint8Array;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 }); // one copy: these tests count partitions moved
  client = await connect({ dir: cluster.dir, name: 'faults', timeoutMs: 3000 });
  secret = await new ClusterDir(cluster.dir).readSecret();
  // 16 slots of ~190 KiB each: big enough that a move at 128 KiB/s takes over a second.
  await client.createNamespace(NS, { scheme: 'hash', slotCount: 16, copies: 1 });
  await writeBallast(client, NS, BALLAST);
  await addFourthStorageNode(cluster);
  // Balance the cluster's default namespace first, so that every move the tests interrupt is one of NS's.
  const pool = new PeerPool(client.members, secret, 'faults-setup');
  const driver = await openDriver(pool);
  const t0 = Date.now();
  await driver.run(driver.plan().filter((m) => m.namespace !== NS), { concurrency: 8 }).finally(() => driver.close());
  console.log(`balanced default in ${Date.now() - t0} ms`);
  pool.close();
});
afterAll(async () => {
  await client?.close();
  await cluster?.stop();
});

function openDriver(pool: PeerPool): Promise<MigrationDriver> {
  return MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
}

/** Resolves with the first job record (from the coordinator) that matches, seen by watching the job folder. */
async function nextJob(match: (j: JobRecord) => boolean, timeoutMs = 20_000): Promise<JobRecord> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => finish(undefined, new Error('no matching migration job')), timeoutMs);
    const watchP = client.coordinator.watch(MIGRATIONS_PREFIX, (e) => {
      if (e.type !== 'put' || e.value === undefined) return;
      const j = JSON.parse(e.value) as JobRecord;
      if (match(j)) finish(j);
    });
    function finish(j?: JobRecord, err?: Error) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void watchP.then((w) => w.close());
      if (j) resolve(j);
      else reject(err);
    }
  });
}

/** The first job in flight that has copied some keys, seen through the driver's progress callback. */
function copyingStarted(): { seen: Promise<JobRecord>; onProgress: (j: JobRecord) => void } {
  let resolve!: (j: JobRecord) => void;
  const seen = new Promise<JobRecord>((r) => (resolve = r));
  return { seen, onProgress: (j) => j.step === 'copying' && j.copiedKeys > 0 && resolve({ ...j }) };
}

/** The promise's value or its rejection, without ever leaving a rejection unhandled. */
function settled<T>(p: Promise<T>): Promise<T | Error> {
  return p.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}

/** The slots holding keys in a node's LMDB files (read with the node stopped). */
async function slotsOnDisk(id: string): Promise<number[]> {
  const engine = StorageEngine.open(new ClusterDir(cluster.dir).nodeDataDir(id));
  try {
    return engine.hashPartitionsWithKeys(NS).sort((a, b) => a - b);
  } finally {
    await engine.close();
  }
}

const checkerKeys = Array.from({ length: 400 }, (_, i) => `k${i}`);

describe('migration under kill -9', () => {
  it('source killed mid-copy: the move rolls back, the source serves again after restart, nothing lost', async () => {
    const checker = new WriteChecker(client, NS, checkerKeys);
    checker.start();
    await checker.progress(200);
    const pool = new PeerPool(client.members, secret, 'faults-source');
    const driver = await openDriver(pool);
    const moves = driver.plan();
    expect(moves.length).toBe(4); // a quarter of 16 slots to s4 (default is balanced already)
    const copying = copyingStarted();
    const run = settled(driver.run(moves, { concurrency: 1, maxBytesPerSec: 128 * 1024, maxP99Ratio: 0, onProgress: copying.onProgress }));
    const job = await copying.seen;
    await cluster.kill9(job.from);
    expect(await run).toBeInstanceOf(Error);
    await noMoveLeft(client, NS);
    const table = await client.catalog.refresh(NS);
    expect(table!.ownerOf(job.partitions[0]!)).toBe(job.from); // rolled back, not half-owned
    await driver.close();
    pool.close();
    await cluster.restart(job.from);
    await checker.progress(200); // writes to every slot go through again
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  });

  it('target killed mid-copy: the move rolls back and the restarted target drops its half copy', async () => {
    const checker = new WriteChecker(client, NS, checkerKeys);
    checker.start();
    await checker.progress(200);
    const pool = new PeerPool(client.members, secret, 'faults-target');
    const driver = await openDriver(pool);
    const moves = driver.plan();
    const copying = copyingStarted();
    const run = settled(driver.run(moves, { concurrency: 1, maxBytesPerSec: 128 * 1024, maxP99Ratio: 0, onProgress: copying.onProgress }));
    const job = await copying.seen;
    await cluster.kill9('s4');
    expect(await run).toBeInstanceOf(Error);
    await noMoveLeft(client, NS);
    const table = await client.catalog.refresh(NS);
    expect(table!.ownerOf(job.partitions[0]!)).toBe(job.from);
    await driver.close();
    pool.close();
    expect(await slotsOnDisk('s4')).toContain(job.partitions[0]!); // the half copy is there while s4 is down...
    await cluster.restart('s4');
    await cluster.kill9('s4');
    const owned = new Set((await client.catalog.refresh(NS))!.partitionsOf('s4'));
    expect((await slotsOnDisk('s4')).filter((s) => !owned.has(s))).toEqual([]); // ...and gone after a restart
    await cluster.restart('s4');
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
  });

  it('driver killed mid-copy: its lease expires, the source rolls back, the lock frees, a new rebalance completes', async () => {
    const checker = new WriteChecker(client, NS, checkerKeys);
    checker.start();
    await checker.progress(200);
    const copying = nextJob((j) => j.step === 'copying');
    const child = spawn(process.execPath, [BIN_PATH, 'rebalance', '--dir', cluster.dir, '--concurrency', '1', '--max-rate', '128kb'], {
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    const job = await copying;
    child.kill('SIGKILL');
    await exited;
    await noMoveLeft(client, NS); // rolled back by the source once the record expired
    expect((await client.catalog.refresh(NS))!.ownerOf(job.partitions[0]!)).toBe(job.from);
    expect(await readJobs(client.coordinator)).toHaveProperty('size', 0);
    const pool = new PeerPool(client.members, secret, 'faults-driver');
    const driver = await openDriver(pool); // the dead driver's lock is gone with its lease
    const results = await driver.run(driver.plan(), { concurrency: 4 });
    expect(results.length).toBeGreaterThan(0);
    expect(driver.plan()).toEqual([]);
    await driver.close();
    pool.close();
    await checker.stop();
    expect(await checker.verify()).toEqual([]);
    await expectBallastIntact(client, NS, BALLAST);
    expect((await client.catalog.refresh(NS))!.partitionsOf('s4')).toHaveLength(4);
  });
});
