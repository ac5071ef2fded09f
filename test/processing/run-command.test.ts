/**
 * The job registry behind `shardflow run / jobs / stop`, in one process against an embedded coordinator: records on
 * a lease, duplicates refused, stop requests for this run only, the stop handshake, the live figures.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EmbeddedCoordinatorServer, createCoordinator, jobKey, jobRequestKey, type Coordinator } from '../../src/coordination/index.js';
import { BusyError, InvalidArgumentError, collect, generator, pipeline, startJob, tumbling, count } from '../../src/index.js';
import { JobRegistration, checkJobId, listJobs, liveFigures, requestStop } from '../../src/processing/job-registry.js';
import type { MetricsSnapshot } from '../../src/processing/metrics.js';

const secret = randomBytes(32);
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

async function coordinators(n: number): Promise<Coordinator[]> {
  const s = new EmbeddedCoordinatorServer({ secret });
  const { port } = await s.listen(0, '127.0.0.1');
  cleanup.push(() => s.close());
  const out: Coordinator[] = [];
  for (let i = 0; i < n; i++) {
    const c = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port, secret });
    cleanup.push(() => c.close());
    out.push(c);
  }
  return out;
}

const info = { id: 'clicks', file: '/jobs/clicks.ts', mode: 'stream' as const, trigger: null };

describe('job registry', () => {
  it('keeps one record per job on a lease, refuses a second job with the same id, and removes the record on close', async () => {
    const [a, b] = await coordinators(2);
    const reg = await JobRegistration.register(a!, info);
    expect(await listJobs(b!)).toMatchObject([{ id: 'clicks', state: 'starting', pid: process.pid, file: '/jobs/clicks.ts', mode: 'stream' }]);
    await expect(JobRegistration.register(b!, info)).rejects.toThrow(BusyError);
    await expect(JobRegistration.register(b!, info)).rejects.toThrow(/job clicks is running already \(pid \d+/);
    await reg.update({ state: 'running' });
    expect((await listJobs(b!))[0]!.state).toBe('running');
    await reg.close({ state: 'finished' });
    expect(await listJobs(b!)).toEqual([]);
    expect(() => checkJobId('has space')).toThrow(InvalidArgumentError);
  });

  it('ignores a stop request left from an earlier run with the same id', async () => {
    const [a] = await coordinators(1);
    await a!.put(jobRequestKey('clicks'), JSON.stringify({ action: 'stop', pid: process.pid, startedAt: '2000-01-01T00:00:00.000Z', by: 'old', at: '' }));
    const reg = await JobRegistration.register(a!, info);
    let asked = 0;
    reg.onStopRequest(() => asked++);
    await a!.put(jobRequestKey('clicks'), JSON.stringify({ action: 'stop', pid: process.pid + 1, startedAt: reg.current.startedAt, by: 'other', at: '' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(asked).toBe(0);
    await reg.close();
  });

  it('stops a running job through a request: final checkpoint, final record, then no record and no request', async () => {
    const [runner, cli] = await coordinators(2);
    const out = collect<unknown>();
    const plan = pipeline('clicks')
      .from(generator({ rate: 2000, make: (i) => ({ user: `u${i % 3}`, at: i }), eventTime: (i) => i }))
      .timestamps()
      .keyBy((c) => c.user)
      .window(tumbling('100ms'))
      .aggregate(count())
      .to(out.sink).plan;
    const reg = await JobRegistration.register(runner!, info);
    const handle = startJob(plan, { checkpointInterval: '100ms' });
    reg.onStopRequest(() => {
      void reg.update({ state: 'stopping' });
      void handle.stop();
    });
    await reg.update({ state: 'running' });
    const ended = handle.done.then((result) =>
      reg.close({ state: result.state === 'killed' ? 'failed' : result.state, checkpointEpoch: result.checkpoint?.epoch, live: liveFigures(result.metrics, undefined) }),
    );
    await new Promise((r) => setTimeout(r, 300));

    await expect(requestStop(cli!, 'nope')).rejects.toThrow(/no job "nope" is running; running: clicks/);
    const states: string[] = [];
    const last = await requestStop(cli!, 'clicks', { onStopping: (r) => states.push(r.state), timeoutMs: 10_000 });
    await ended;
    const result = await handle.done;
    expect(states).toEqual(['stopping']);
    expect(last.state).toBe('stopped');
    expect(result.state).toBe('stopped');
    expect(last.checkpointEpoch).toBe(result.checkpoint!.epoch);
    expect(last.live!.recordsIn).toBe(result.metrics.source.records);
    expect(await cli!.get(jobKey('clicks'))).toBeUndefined();
    expect(await cli!.get(jobRequestKey('clicks'))).toBeUndefined();
    expect(out.values.length).toBeGreaterThan(0);
  });
});

describe('liveFigures', () => {
  it('gives rates between two snapshots, backlog and checkpoint age', () => {
    const snap = (elapsedMs: number, read: number, written: number, firstIn: number, lastAt?: number, pending = 0): MetricsSnapshot => ({
      job: 'j',
      mode: 'stream',
      state: 'running',
      startedAt: 0,
      elapsedMs,
      source: { records: read, bytes: 0, bad: 0, splits: 1, splitsDone: 0, waiting: false, pending },
      stages: [{ id: 's0', kind: 'stateless', in: firstIn, out: firstIn }],
      sink: { records: written, writes: 1 },
      deadLetters: 0,
      late: 0,
      queues: [5, 3, 4],
      batches: { count: 0, lastTrigger: undefined, lastSize: 0 },
      checkpoints: { count: lastAt ? 1 : 0, lastEpoch: lastAt ? 1 : undefined, lastAt, lastDurationMs: undefined },
      latency: { count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0 },
    });
    const f = liveFigures(snap(3000, 3000, 500, 2990, Date.now() - 2000), snap(1000, 1000, 100, 1000));
    expect(f.inPerSec).toBe(1000);
    expect(f.outPerSec).toBe(200);
    expect(f.backlog).toBe(10 + 3 + 4);
    // Records still waiting at the source (its lag) count too.
    expect(liveFigures(snap(3000, 3000, 500, 2990, undefined, 700), undefined).backlog).toBe(700 + 10 + 3 + 4);
    expect(f.checkpointAgeMs).toBeGreaterThanOrEqual(2000);
    expect(f.checkpointEpoch).toBe(1);
    expect(liveFigures(snap(1000, 10, 0, 10), undefined).checkpointAgeMs).toBeNull();
  });
});
