/**
 * Sources say how far behind their readers are (`ReadBatch.pending`, a consumer's lag), and the live view's backlog
 * counts it: a job reading a large input shows the records still unread at the source, not only its own queues.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generator, ndjson, pipeline, collect, startJob } from '../../src/index.js';
import { liveFigures } from '../../src/processing/job-registry.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-lag-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('source lag', () => {
  it('a generator split says how many of its records are left; paced, how many are due and unread', async () => {
    const unpaced = generator({ count: 100, splits: 2, make: (i) => i });
    const [split] = await unpaced.splits(2);
    const r = await unpaced.open(split!);
    expect((await r.read(10)).pending).toBe(40); // 50 in this split, 10 read
    const rest = await r.read(1000);
    expect([rest.done, rest.pending]).toEqual([true, 0]);
    // Paced at 1000/s and read at once: nothing is due yet beyond what was read.
    const paced = generator({ count: 1_000_000, rate: 1000, make: (i) => i });
    const p = await paced.open((await paced.splits(1))[0]!);
    expect((await p.read(1)).pending).toBeLessThan(50);
  });

  it('a file split estimates its unread records from the bytes left', async () => {
    const path = join(dir, 'in.ndjson');
    await writeFile(path, Array.from({ length: 1000 }, (_, i) => JSON.stringify({ i: 1000 + i })).join('\n') + '\n');
    const source = ndjson<{ i: number }>(path);
    const r = await source.open((await source.splits(1))[0]!);
    const first = await r.read(100);
    expect(first.pending).toBe(900); // equal lines: exact
    await r.read(850);
    expect((await r.read(1)).pending).toBe(49);
    await r.close();
  });

  it('a job behind its input shows the unread records in its backlog', async () => {
    const out = collect<number>();
    const { plan } = pipeline('behind')
      .from(generator({ count: 200_000, make: (i) => i }))
      .map(async (n) => {
        await new Promise((r) => setTimeout(r, 1)); // a slow step: the input waits
        return n;
      })
      .to(out.sink);
    const job = startJob(plan, { mode: 'stream' });
    try {
      let backlog = 0;
      for (let i = 0; i < 100 && backlog < 100_000; i++) {
        await new Promise((r) => setTimeout(r, 20));
        backlog = liveFigures(job.metrics.snapshot(), undefined).backlog;
      }
      expect(backlog).toBeGreaterThan(100_000); // far beyond any queue: the source's lag
    } finally {
      await job.stop().catch(() => undefined);
    }
  });
});
