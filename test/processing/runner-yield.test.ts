import { describe, expect, it } from 'vitest';
import { collect, generator, pipeline } from '../../src/index.js';

describe('a source that always has records', () => {
  it('does not starve timers: checkpoints fire and stop() ends the job', async () => {
    const out = collect<number>();
    // Unpaced and unbounded: every read returns at once, so only the runner's own yields let timers run.
    const job = pipeline('busy')
      .from(generator({ seed: 1, make: (i) => i }))
      .filter((i) => i % 1000 === 0)
      .to(out.sink)
      .start({ mode: 'stream', checkpointInterval: 50 });
    const checkpointed = new Promise<{ epoch: number }>((resolve) => job.once('checkpoint', resolve));
    expect((await checkpointed).epoch).toBeGreaterThan(0);
    const result = await job.stop();
    expect(result.state).toBe('stopped');
    expect(result.metrics.source.records).toBeGreaterThan(0);
  });
});
