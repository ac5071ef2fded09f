import { describe, expect, it, vi } from 'vitest';
import { generator, pipeline } from '../../src/index.js';
import { gatedSink } from './helpers.js';

describe('backpressure in stream mode', () => {
  it('a sink that does not keep up stops the source instead of filling memory', async () => {
    const total = 20_000;
    const gated = gatedSink<number>();
    const job = pipeline('backpressure')
      .from(generator({ count: total, seed: 3, make: (i) => i }))
      .map((i) => i * 2)
      .to(gated.sink)
      .start({ mode: 'stream', queueCapacity: 8, readBatch: 16 });
    // The sink's first write never returns until released: the source must end up waiting on a full queue.
    await vi.waitFor(() => expect(job.metrics.snapshot().source.waiting).toBe(true));
    const stalled = job.metrics.snapshot();
    // What is in flight: each queue's capacity, what each step holds (a step takes up to 64 elements, the sink a
    // read batch), and one read. Nowhere near the 20,000 records.
    expect(stalled.source.records).toBeLessThan(8 * 3 + 64 + 16 * 2 + 16);
    expect(Math.max(...stalled.queues)).toBeLessThanOrEqual(8);
    expect(gated.writes()).toBe(1);
    gated.release();
    const result = await job.done;
    expect(result.state).toBe('finished');
    expect(gated.values.length).toBe(total);
    expect(gated.values.slice(0, 3)).toEqual([0, 2, 4]);
  });
});
