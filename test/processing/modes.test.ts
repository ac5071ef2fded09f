import fc from 'fast-check';
import { once } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { collect, count, fromArray, generator, pipeline, sum, tumbling, type DeadLetter, type JobRunOptions } from '../../src/index.js';

interface Ev {
  k: string;
  t: number;
  v: number;
}

/** Two chained keyed stages with lateness, a late side output, a filter and a function that throws on some records. */
async function run(events: Ev[], splits: number, outOfOrderness: number, lateness: number, options: JobRunOptions) {
  const out = collect<unknown>();
  const late = collect<unknown>();
  const dead = collect<DeadLetter>();
  const result = await pipeline('modes')
    .from(fromArray(events, { splits }))
    .timestamps((e) => e.t, { outOfOrderness })
    .filter((e) => e.v % 7 !== 0)
    .map((e) => {
      if (e.v === 13) throw new Error('unlucky');
      return e;
    })
    .deadLetters(dead.sink)
    .keyBy((e) => e.k)
    .window(tumbling(1000))
    .allowedLateness(lateness)
    .lateTo(late.sink)
    .aggregate(sum((e: Ev) => e.v))
    .keyBy((r) => (r.value % 2 === 0 ? 'even' : 'odd'))
    .window(tumbling(3000))
    .aggregate(count())
    .to(out.sink)
    .run({ checkpointInterval: false, ...options });
  return {
    out: out.values,
    late: late.values,
    dead: dead.values.map((d) => ({ stage: d.stage, reason: d.reason, record: d.record })),
    recordsIn: result.metrics.source.records,
  };
}

const event = fc.record({ k: fc.constantFrom('a', 'b', 'c', 'd'), t: fc.integer({ min: 0, max: 20_000 }), v: fc.integer({ min: 0, max: 20 }) });
const trigger = fc
  .record({ count: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }), bytes: fc.option(fc.integer({ min: 20, max: 3000 }), { nil: undefined }) })
  .map((t) => (t.count === undefined && t.bytes === undefined ? { count: 5 } : t));

describe('stream and batch modes', () => {
  it('give identical results (records, late records, dead letters) on a bounded input', async () => {
    // Make sure the property exercised what it claims to: windows fired, records were late, letters went dead.
    const seen = { out: 0, late: 0, dead: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { minLength: 10, maxLength: 120 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(0, 300, 2000),
        fc.constantFrom(0, 500),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        trigger,
        async (events, splits, ooo, lateness, readBatch, queueCapacity, spec) => {
          const stream = await run(events, splits, ooo, lateness, { mode: 'stream', readBatch, queueCapacity });
          const batch = await run(events, splits, ooo, lateness, { mode: 'batch', readBatch, trigger: { ...spec, interval: '1h' } });
          expect(batch).toEqual(stream);
          expect(stream.recordsIn).toBe(events.length);
          if (stream.out.length > 0) seen.out++;
          if (stream.late.length > 0) seen.late++;
          if (stream.dead.length > 0) seen.dead++;
        },
      ),
      { seed: 20261204, numRuns: 40 },
    );
    expect(seen.out).toBeGreaterThan(10);
    expect(seen.late).toBeGreaterThan(3);
    expect(seen.dead).toBeGreaterThan(3);
  });

  it('counts per stage and end-to-end latency in the metrics', async () => {
    const out = collect<number>();
    const job = pipeline('metrics')
      .from(fromArray([1, 2, 3, 4, 5, 6]))
      .filter((n) => n % 2 === 0)
      .to(out.sink)
      .start({ mode: 'stream' });
    const result = await job.done;
    expect(out.values).toEqual([2, 4, 6]);
    expect(result.metrics.stages).toEqual([{ id: 'chain-0', kind: 'stateless', in: 6, out: 3 }]);
    expect(result.metrics.source.records).toBe(6);
    expect(result.metrics.sink.records).toBe(3);
    expect(result.metrics.latency.count).toBe(3);
    expect(result.metrics.latency.p99Ms).toBeGreaterThan(0);
    expect(job.metrics.snapshot().state).toBe('finished');
  });

  it.each([
    ['interval=40ms,count=100000', 'interval'],
    ['interval=1h,count=25', 'count'],
    ['interval=1h,bytes=200', 'bytes'],
  ])('batch mode on an unbounded source: %s fires on %s', async (trigger, reason) => {
    const out = collect<number>();
    const job = pipeline('triggers')
      .from(generator({ seed: 1, rate: 2000, make: (i) => i }))
      .to(out.sink)
      .start({ mode: 'batch', trigger, pollInterval: '10ms' });
    const [first] = (await once(job, 'batch')) as [{ reason: string; records: number }];
    expect(first.reason).toBe(reason);
    if (reason === 'count') expect(first.records).toBe(25);
    // The group goes on to the sink as it fired, before the job is stopped.
    await vi.waitFor(() => expect(out.values.length).toBeGreaterThanOrEqual(first.records), { timeout: 5000, interval: 5 });
    const result = await job.stop();
    expect(result.state).toBe('stopped');
    expect(out.values).toEqual(out.values.map((_, i) => i));
  });
});
