import { describe, expect, it, vi } from 'vitest';
import { generator, MemoryStateBackend, pipeline, tumbling, count, type Checkpoint, type JobHandle, type Mode, type Pipeline } from '../../src/index.js';
import { upsertSink } from './helpers.js';

const TOTAL = 6000;

/** Running count per key through value state, written to an idempotent sink: a double count would show. */
function counts(sink: ReturnType<typeof upsertSink<number>>['sink'], rate?: number): Pipeline {
  return pipeline('counts')
    .from(generator({ count: TOTAL, seed: 7, splits: 2, make: (i, rng) => `k${rng.int(40)}`, ...(rate ? { rate } : {}) }))
    .keyBy((k) => k)
    .process<{ key: string; value: number }>(async (k, ctx) => {
      const n = ctx.value<number>('n');
      const next = ((await n.get()) ?? 0) + 1;
      n.set(next);
      ctx.emit({ key: k, value: next });
    })
    .to(sink);
}

/** Resolves with the `n`th checkpoint the job commits; fails if the job ends first. */
function checkpoints(job: JobHandle, n: number): Promise<Checkpoint> {
  let seen = 0;
  return new Promise((resolve, reject) => {
    job.on('checkpoint', (cp: Checkpoint) => {
      if (++seen === n) resolve(cp);
    });
    job.done.then(() => reject(new Error(`the job ended before ${n} checkpoints`)), reject);
  });
}

async function uninterrupted(): Promise<Map<string, number>> {
  const expected = upsertSink<number>();
  await counts(expected.sink).run({ checkpointInterval: false });
  return expected.map;
}

describe.each(['stream', 'batch'] as Mode[])('checkpoints (%s mode)', (mode) => {
  it('a job killed mid-way restarts from its last checkpoint with identical results (exactly-once state)', async () => {
    const expected = await uninterrupted();
    expect([...expected.values()].reduce((a, b) => a + b, 0)).toBe(TOTAL);

    const state = new MemoryStateBackend();
    const out = upsertSink<number>();
    const opts = { mode, state, checkpointInterval: 15, trigger: 'count=50', readBatch: 20 } as const;
    const first = counts(out.sink, 3000).start(opts);
    // Let a few checkpoints commit, then crash: records after the last one are processed but not committed.
    const cp = await checkpoints(first, 3);
    expect(Object.values(cp.positions).some((p) => !p.done)).toBe(true);
    // Crash only once records past the checkpoint have changed state and reached the sink.
    const atCheckpoint = first.metrics.sink.records;
    await vi.waitFor(() => expect(first.metrics.sink.records).toBeGreaterThan(atCheckpoint + 50));
    const killed = await first.kill();
    expect(killed.state).toBe('killed');
    const readBeforeCrash = killed.metrics.source.records;
    expect(readBeforeCrash).toBeLessThan(TOTAL);
    const committed = state.checkpointOf('counts')!;

    const second = await counts(out.sink).run(opts);
    expect(second.state).toBe('finished');
    // It resumed: it read only what the checkpoint had not covered.
    expect(Object.values(committed.positions).every((p) => typeof p.position === 'number')).toBe(true);
    expect(second.metrics.source.records).toBeLessThan(TOTAL);
    expect(second.metrics.source.records + readBeforeCrash).toBeGreaterThanOrEqual(TOTAL);
    expect(out.map).toEqual(expected);
  });

  it('a stopped job takes a final checkpoint and resumes exactly where it stopped', async () => {
    const expected = await uninterrupted();
    const state = new MemoryStateBackend();
    const out = upsertSink<number>();
    const opts = { mode, state, checkpointInterval: '1h', trigger: 'count=50', readBatch: 20 } as const;
    const first = counts(out.sink, 6000).start(opts);
    await vi.waitFor(() => expect(first.metrics.sink.records).toBeGreaterThan(500));
    const stopped = await first.stop();
    expect(stopped.state).toBe('stopped');
    expect(stopped.checkpoint?.epoch).toBe(1);
    const second = await counts(out.sink).run(opts);
    // Nothing was read twice: the final checkpoint covered every record read.
    expect(second.metrics.source.records + stopped.metrics.source.records).toBe(TOTAL);
    expect(out.map).toEqual(expected);
  });

  it('window state survives a restart', async () => {
    const run = (state: MemoryStateBackend, rate?: number) => {
      const out = upsertSink<number>();
      const p = pipeline('windowed')
        .from(generator({ count: 3000, seed: 11, make: (i, rng) => `k${rng.int(5)}`, eventTime: (i) => i * 10, ...(rate ? { rate } : {}) }))
        .timestamps(undefined, { outOfOrderness: 0 })
        .keyBy((k) => k)
        .window(tumbling('5s'))
        .aggregate(count())
        .map((r) => ({ key: `${r.key}@${r.window.start}`, value: r.value }))
        .to(out.sink);
      return { out, p };
    };
    const clean = run(new MemoryStateBackend());
    await clean.p.run({ mode, checkpointInterval: false });

    const state = new MemoryStateBackend();
    const a = run(state, 3000);
    const job = a.p.start({ mode, state, checkpointInterval: 15, readBatch: 10, trigger: 'count=40' });
    await checkpoints(job, 2);
    await job.kill();
    const b = run(state);
    // Same sink map for both runs of the restarted job: results written before the crash are kept (at-least-once).
    b.out.map.clear();
    for (const [k, v] of a.out.map) b.out.map.set(k, v);
    await b.p.run({ mode, state, checkpointInterval: 15, readBatch: 10, trigger: 'count=40' });
    expect(b.out.map).toEqual(clean.out.map);
  });
});

describe('a checkpoint that fails to commit', () => {
  it('fails the job with the error (commits run in the background, so nothing else would say so)', async () => {
    const state = new MemoryStateBackend();
    const open = state.open.bind(state);
    // The third commit fails, as a storage tier that cannot be reached would make it.
    state.open = async (job: string) => {
      const js = await open(job);
      const commit = js.commit.bind(js);
      let commits = 0;
      js.commit = async (cp: Checkpoint) => {
        if (++commits === 3) throw new Error('the state store is gone');
        return commit(cp);
      };
      return js;
    };
    const out = upsertSink<number>();
    // Unbounded (no count): only the failed commit can end it.
    const job = pipeline('failing')
      .from(generator({ seed: 1, rate: 2000, make: (i) => `k${i % 10}` }))
      .keyBy((k) => k)
      .process<{ key: string; value: number }>(async (k, ctx) => {
        const n = ctx.value<number>('n');
        n.set(((await n.get()) ?? 0) + 1);
        ctx.emit({ key: k, value: 1 });
      })
      .to(out.sink)
      .start({ state, checkpointInterval: 20 });
    await expect(job.done).rejects.toThrow(/the state store is gone/);
    expect(job.metrics.snapshot().checkpoints.count).toBe(2);
  });
});
