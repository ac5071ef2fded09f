/**
 * A job submitted to the compute tier survives kill -9 of the compute node running it: the other node wins the job's
 * election, resumes from the last checkpoint in the storage tier, and the results are exact — every click counted
 * once, none lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { openCoordinator } from '../../src/client/connect.js';
import type { Coordinator } from '../../src/coordination/index.js';
import { awaitJob, awaitSpecGone, countedClicks, expectedClicks, submitClicks } from '../harness/jobs.js';
let cluster: TestCluster;
let coordinator: Coordinator;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 1, compute: 2 });
  ({ coordinator } = await openCoordinator({ dir: cluster.dir }));
});
afterAll(async () => {
  await coordinator?.close();
  await cluster?.stop();
});


describe('jobs on the compute tier', () => {
  it('a job whose compute node is killed with -9 is resumed by another from its checkpoint, results exact', async () => {
    const spec = { id: 'clicks-ha', rate: 4000, total: 24_000, users: 30, seed: 13 };
    const { total } = spec;
    const submitted = await submitClicks(cluster.dir, spec);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(submitted.stdout).toMatch(/^submitted clicks-ha/);

    const job = await awaitJob(coordinator, 'clicks-ha', (j) => (j.checkpointEpoch ?? 0) >= 3 && (j.live?.recordsIn ?? 0) > total / 4);
    const runner = (await cluster.pid('c1')) === job.pid ? 'c1' : 'c2';
    expect(await cluster.pid(runner)).toBe(job.pid);
    await cluster.kill9(runner);

    // The other node takes the job over and runs it to its end; the spec goes when it has.
    const taken = awaitJob(coordinator, 'clicks-ha', (j) => j.pid !== job.pid, 60_000);
    await awaitSpecGone(coordinator, 'clicks-ha');
    expect((await taken).pid).not.toBe(job.pid); // another process ran it

    expect(await countedClicks(await cluster.client(), 'clicks-ha')).toEqual(expectedClicks(spec.seed, total, spec.rate, spec.users));
    await cluster.restart(runner);
  });
  it('a compute node stopped cleanly (SIGTERM) hands its job over after a final checkpoint; results exact', async () => {
    const spec = { id: 'clicks-handover', rate: 4000, total: 20_000, users: 25, seed: 17 };
    const { total } = spec;
    const submitted = await submitClicks(cluster.dir, spec);
    expect(submitted.code, submitted.stderr).toBe(0);
    const job = await awaitJob(coordinator, 'clicks-handover', (j) => (j.checkpointEpoch ?? 0) >= 2 && (j.live?.recordsIn ?? 0) > total / 5);
    const runner = (await cluster.pid('c1')) === job.pid ? 'c1' : 'c2';
    const left = cluster.nextMemberEvent((e) => e.member.id === runner && (e.type === 'leave' || e.type === 'death'), 30_000);
    process.kill(job.pid, 'SIGTERM');
    await left;

    const taken = awaitJob(coordinator, 'clicks-handover', (j) => j.pid !== job.pid, 60_000);
    await awaitSpecGone(coordinator, 'clicks-handover');
    expect((await taken).pid).not.toBe(job.pid);

    expect(await countedClicks(await cluster.client(), 'clicks-handover')).toEqual(expectedClicks(spec.seed, total, spec.rate, spec.users));
    await cluster.restart(runner);
  });
});
