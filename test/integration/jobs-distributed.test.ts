/**
 * One job spread over the compute tier: every compute node runs a worker (its share of the source's splits, the keys
 * of its slots), and the job goes on while compute nodes join and die — rescaled at a checkpoint when one joins,
 * resumed from the last checkpoint when one is killed — with results exact: every click counted once, none lost.
 * In stream mode and in batch mode, where each keyed stage after the first groups what the exchange brings it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { openCoordinator } from '../../src/client/connect.js';
import type { Coordinator } from '../../src/coordination/index.js';
import { cli } from '../harness/cli.js';
import { awaitJob, awaitSpecGone, countedClicks, expectedClicks, submitClicks, type ClicksJob } from '../harness/jobs.js';
import { getJobSpec } from '../../src/processing/job-host.js';
import type { WindowTotal } from '../harness/fixtures/window-totals.js';

const WINDOW_TOTALS = new URL('../harness/fixtures/window-totals.ts', import.meta.url).pathname;
let cluster: TestCluster;
let coordinator: Coordinator;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 2, compute: 2 });
  ({ coordinator } = await openCoordinator({ dir: cluster.dir }));
});
afterAll(async () => {
  await coordinator?.close();
  await cluster?.stop();
});


describe('a job spread over compute nodes', () => {
  it('goes on while the storage tier scales out under its state and results; results exact', async () => {
    // 18 s of input: the scale-out (a few seconds, more on a loaded host) must end while the job still runs.
    const spec: ClicksJob = { id: 'clicks-storage', rate: 3000, total: 54_000, users: 30, seed: 29, splits: 2 };
    const submitted = await submitClicks(cluster.dir, spec);
    expect(submitted.code, submitted.stderr).toBe(0);
    await awaitJob(coordinator, 'clicks-storage', (j) => (j.workers?.length ?? 0) === 2 && (j.checkpointEpoch ?? 0) >= 2);
    // The job's state namespace and its results move to the new node while the workers write them.
    const scaled = await cli(['scale', 'storage=3', '--dir', cluster.dir]);
    expect(scaled.code, scaled.stderr).toBe(0);
    const client = await cluster.client();
    const state = await client.catalog.refresh('job.clicks-storage');
    expect(state!.partitionsOf('s3').length).toBeGreaterThan(0);
    // Still running: the scale-out happened under the job, not after it.
    expect(await getJobSpec(coordinator, 'clicks-storage')).toBeDefined();
    await awaitSpecGone(coordinator, 'clicks-storage', 60_000);
    expect(await countedClicks(client, 'clicks-storage')).toEqual(expectedClicks(spec.seed, spec.total, spec.rate, spec.users));
  });

  it('runs a worker on every compute node, rescales when one joins and recovers when one dies; results exact', async () => {
    const spec: ClicksJob = { id: 'clicks-spread', rate: 3000, total: 36_000, users: 40, seed: 23, splits: 4 };
    const submitted = await submitClicks(cluster.dir, spec);
    expect(submitted.code, submitted.stderr).toBe(0);

    // Both compute nodes work on it, and it commits checkpoints job-wide.
    const first = await awaitJob(coordinator, 'clicks-spread', (j) => (j.workers?.length ?? 0) === 2 && (j.checkpointEpoch ?? 0) >= 2);
    expect(first.workers!.sort()).toEqual(['c1', 'c2']);

    // A third compute node joins: the leader stops the generation at a checkpoint and starts the next on all three.
    const scaled = await cli(['scale', 'compute=3', '--dir', cluster.dir]);
    expect(scaled.code, scaled.stderr).toBe(0);
    const wider = await awaitJob(coordinator, 'clicks-spread', (j) => (j.workers?.length ?? 0) === 3, 30_000);
    expect(wider.pid).toBe(first.pid); // the same leader: the job was rescaled, not restarted elsewhere
    expect(wider.generation!).toBeGreaterThan(first.generation!);
    const epochAtRescale = wider.checkpointEpoch ?? 0;
    await awaitJob(coordinator, 'clicks-spread', (j) => (j.checkpointEpoch ?? 0) >= epochAtRescale + 2, 30_000); // and goes on

    // A worker that does not lead dies: the next generation resumes from the last checkpoint without it.
    const leaderNode = ['c1', 'c2', 'c3'];
    const pids = await Promise.all(leaderNode.map((id) => cluster.pid(id)));
    const victim = leaderNode.find((_, i) => pids[i] !== first.pid)!;
    await cluster.kill9(victim);
    const narrower = await awaitJob(coordinator, 'clicks-spread', (j) => (j.workers?.length ?? 0) === 2 && !j.workers!.includes(victim), 30_000);
    expect(narrower.pid).toBe(first.pid);

    await awaitSpecGone(coordinator, 'clicks-spread', 90_000);
    expect(await countedClicks(await cluster.client(), 'clicks-spread')).toEqual(expectedClicks(spec.seed, spec.total, spec.rate, spec.users));
  });

  it('runs a batch-mode job with two keyed stages on every compute node, and recovers when one dies; results exact', async () => {
    const spec: ClicksJob = { id: 'totals-batch', rate: 3000, total: 30_000, users: 40, seed: 31, splits: 4, file: WINDOW_TOTALS, batch: 'interval=200ms,count=500' };
    const submitted = await submitClicks(cluster.dir, spec);
    expect(submitted.code, submitted.stderr).toBe(0);
    // Two workers (the compute nodes the earlier tests left alive), grouping in batches, committing checkpoints.
    const first = await awaitJob(coordinator, spec.id, (j) => (j.workers?.length ?? 0) === 2 && (j.checkpointEpoch ?? 0) >= 2 && (j.metrics?.batches.count ?? 0) > 0, 30_000);
    expect(first.mode).toBe('batch');
    const ids = first.workers!;
    const pids = await Promise.all(ids.map((id) => cluster.pid(id)));
    const victim = ids.find((_, i) => pids[i] !== first.pid)!;
    await cluster.kill9(victim);
    const narrower = await awaitJob(coordinator, spec.id, (j) => (j.workers?.length ?? 0) === 1 && !j.workers!.includes(victim), 30_000);
    expect(narrower.pid).toBe(first.pid);

    await awaitSpecGone(coordinator, spec.id, 90_000);
    const totals = new Map<string, number>();
    for (const [key, n] of expectedClicks(spec.seed, spec.total, spec.rate, spec.users)) {
      const start = key.slice(key.indexOf('@') + 1);
      totals.set(start, (totals.get(start) ?? 0) + n);
    }
    const got = new Map<string, number>();
    for await (const e of (await cluster.client()).scan(spec.id)) got.set(e.key, (e.value as WindowTotal).clicks);
    expect(got).toEqual(totals);
  });
});
