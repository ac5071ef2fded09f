/**
 * The jobs section of `shardflow status`, against an embedded coordinator: every running job's record, the compute
 * node that runs it (by pid), its figures and last checkpoint, and how the section prints.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EmbeddedCoordinatorServer, createCoordinator, type Coordinator } from '../../src/coordination/index.js';
import { JobRegistration, type LiveFigures } from '../../src/processing/job-registry.js';
import { formatJobs, readJobsStatus, type JobStatus } from '../../src/cluster/status-jobs.js';

const secret = randomBytes(32);
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

async function coordinator(): Promise<Coordinator> {
  const s = new EmbeddedCoordinatorServer({ secret });
  const { port } = await s.listen(0, '127.0.0.1');
  cleanup.push(() => s.close());
  const c = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port, secret });
  cleanup.push(() => c.close());
  return c;
}

const live: LiveFigures = {
  recordsIn: 5000,
  recordsOut: 4990,
  inPerSec: 1000,
  outPerSec: 998.5,
  latencySamples: 10,
  p50Ms: 1,
  p99Ms: 2,
  backlog: 0,
  waiting: false,
  checkpointAgeMs: 400,
  checkpointEpoch: 3,
  deadLetters: 0,
  late: 0,
  elapsedMs: 5000,
};

describe('status: jobs', () => {
  it('lists every running job with the compute node whose process runs it, its figures and last checkpoint', async () => {
    const c = await coordinator();
    const a = await JobRegistration.register(c, { id: 'clicks', file: '/jobs/clicks.ts', mode: 'stream', trigger: null });
    cleanup.push(() => a.close());
    await a.update({ state: 'running', live, checkpointEpoch: 3 });
    const b = await JobRegistration.register(c, { id: 'wc', file: '/jobs/wc.ts', mode: 'batch', trigger: 'count=10' });
    cleanup.push(() => b.close());

    const nodes = [
      { id: 's1', role: 'storage', pid: process.pid }, // a storage node never runs jobs
      { id: 'c1', role: 'compute', pid: process.pid },
      { id: 'c2', role: 'compute', pid: null },
    ];
    const jobs = await readJobsStatus(c, nodes);
    expect(jobs.map((j) => [j.id, j.state, j.mode, j.trigger, j.node, j.pid])).toEqual([
      ['clicks', 'running', 'stream', null, 'c1', process.pid],
      ['wc', 'starting', 'batch', 'count=10', 'c1', process.pid],
    ]);
    expect(jobs[0]).toMatchObject({ recordsIn: 5000, recordsOut: 4990, inPerSec: 1000, outPerSec: 998.5, checkpointEpoch: 3 });
    expect(jobs[0]!.checkpointAgeMs).toBeGreaterThanOrEqual(400); // as reported, plus the time since the report
    expect(jobs[1]).toMatchObject({ recordsIn: null, recordsOut: null, inPerSec: null, checkpointEpoch: null, checkpointAgeMs: null });

    // Run by a `shardflow run` process of its own: no node.
    expect((await readJobsStatus(c, [{ id: 'c1', role: 'compute', pid: process.pid + 1 }])).map((j) => j.node)).toEqual([null, null]);

    await a.close({ state: 'stopped' });
    await b.close();
    expect(await readJobsStatus(c, nodes)).toEqual([]);
  });

  it('prints one line per job under "jobs:", nothing when none runs', () => {
    const base: JobStatus = {
      id: 'clicks',
      state: 'running',
      mode: 'stream',
      trigger: null,
      node: 'c1',
      pid: 4242,
      host: 'box',
      startedAt: '2026-01-01T00:00:00.000Z',
      inPerSec: 1000,
      outPerSec: 998.5,
      recordsIn: 5000,
      recordsOut: 4990,
      checkpointEpoch: 3,
      checkpointAgeMs: 1200,
    };
    expect(formatJobs([])).toEqual([]);
    expect(
      formatJobs([
        base,
        { ...base, id: 'wc', state: 'starting', mode: 'batch', trigger: 'count=10', node: null, inPerSec: null, outPerSec: null, recordsIn: null, recordsOut: null, checkpointEpoch: null, checkpointAgeMs: null },
      ]),
    ).toEqual([
      'jobs:',
      '  clicks  running  stream  on c1 (pid 4242)  in 1000/s (5000)  out 999/s (4990)  checkpoint epoch 3, 1.2s ago',
      '  wc  starting  batch (count=10)  pid 4242 on box  no figures yet  no checkpoint yet',
    ]);
  });
});
