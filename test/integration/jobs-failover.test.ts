/**
 * A job submitted to the compute tier survives kill -9 of the compute node running it: the other node wins the job's
 * election, resumes from the last checkpoint in the storage tier, and the results are exact — every click counted
 * once, none lost.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { openCoordinator } from '../../src/client/connect.js';
import type { Coordinator } from '../../src/coordination/index.js';
import { type ClickCount } from '../../examples/clicks.js';
import { awaitJob, awaitSpecGone, expectedClicks } from '../harness/jobs.js';

const REPO = join(import.meta.dirname, '../..');
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

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_PATH, ...args], { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('jobs on the compute tier', () => {
  it('a job whose compute node is killed with -9 is resumed by another from its checkpoint, results exact', async () => {
    const rate = 4000;
    const total = 24_000;
    const users = 30;
    const submitted = await cli([
      'run', 'examples/clicks.ts', '--on-cluster', '--id', 'clicks-ha', '--checkpoint-interval', '300ms', '--dir', cluster.dir, '--',
      '--source', 'generator', '--rate', String(rate), '--count', String(total), '--users', String(users), '--seed', '13', '--out', 'ns:clicks-ha',
    ]);
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

    const expected = expectedClicks(13, total, rate, users);
    const client = await cluster.client();
    const got = new Map<string, number>();
    for await (const e of client.scan('clicks-ha')) got.set(e.key, (e.value as ClickCount).clicks);
    expect(got).toEqual(expected);
    await cluster.restart(runner);
  });
  it('a compute node stopped cleanly (SIGTERM) hands its job over after a final checkpoint; results exact', async () => {
    const rate = 4000;
    const total = 20_000;
    const users = 25;
    const submitted = await cli([
      'run', 'examples/clicks.ts', '--on-cluster', '--id', 'clicks-handover', '--checkpoint-interval', '300ms', '--dir', cluster.dir, '--',
      '--source', 'generator', '--rate', String(rate), '--count', String(total), '--users', String(users), '--seed', '17', '--out', 'ns:clicks-handover',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const job = await awaitJob(coordinator, 'clicks-handover', (j) => (j.checkpointEpoch ?? 0) >= 2 && (j.live?.recordsIn ?? 0) > total / 5);
    const runner = (await cluster.pid('c1')) === job.pid ? 'c1' : 'c2';
    const left = cluster.nextMemberEvent((e) => e.member.id === runner && (e.type === 'leave' || e.type === 'death'), 30_000);
    process.kill(job.pid, 'SIGTERM');
    await left;

    const taken = awaitJob(coordinator, 'clicks-handover', (j) => j.pid !== job.pid, 60_000);
    await awaitSpecGone(coordinator, 'clicks-handover');
    expect((await taken).pid).not.toBe(job.pid);

    const expected = expectedClicks(17, total, rate, users);
    const client = await cluster.client();
    const got = new Map<string, number>();
    for await (const e of client.scan('clicks-handover')) got.set(e.key, (e.value as ClickCount).clicks);
    expect(got).toEqual(expected);
    await cluster.restart(runner);
  });
});
