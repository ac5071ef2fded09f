import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { generator, MemoryStateBackend, ndjsonFile, pipeline, type Checkpoint, type JobHandle, type Mode, type Pipeline } from '../../src/index.js';
import { tempDir } from './helpers.js';

const TOTAL = 4000;

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

/** Copies records 0..TOTAL-1 to a file; every 500th throws in the map and goes to a dead-letter file. */
function copy(rate?: number): Pipeline {
  return pipeline('copy')
    .from(generator({ count: TOTAL, splits: 2, make: (i) => ({ i }), ...(rate ? { rate } : {}) }))
    .map((r) => {
      if (r.i % 500 === 0) throw new Error(`bad ${r.i}`);
      return r;
    })
    .deadLetters(ndjsonFile(join(dir, 'dead.ndjson')))
    .to(ndjsonFile(join(dir, 'out.ndjson')));
}

async function ids(file: string, field: (line: any) => number): Promise<number[]> {
  const text = await readFile(join(dir, file), 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => field(JSON.parse(l)));
}

const distinctSorted = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const range = (n: number, keep: (i: number) => boolean) => Array.from({ length: n }, (_, i) => i).filter(keep);

function afterCheckpoint(job: JobHandle): Promise<Checkpoint> {
  return new Promise((resolve, reject) => {
    job.once('checkpoint', resolve);
    job.done.then(() => reject(new Error('the job ended before a checkpoint')), reject);
  });
}

describe.each(['stream', 'batch'] as Mode[])('a file sink across restarts (%s mode)', (mode) => {
  const opts = (state: MemoryStateBackend) => ({ mode, state, checkpointInterval: 50, trigger: 'count=100', readBatch: 50 }) as const;

  it.each(['stop', 'kill'] as const)('a job resumed after a %s keeps what the first run wrote (at-least-once)', async (how) => {
    const state = new MemoryStateBackend();
    const first = copy(1000).start(opts(state));
    await afterCheckpoint(first);
    await vi.waitFor(() => expect(first.metrics.sink.records).toBeGreaterThan(100));
    const ended = how === 'stop' ? await first.stop() : await first.kill();
    expect(ended.metrics.source.records).toBeLessThan(TOTAL);

    const second = await copy().run(opts(state));
    expect(second.state).toBe('finished');
    expect(second.metrics.source.records).toBeLessThan(TOTAL); // it resumed
    expect(distinctSorted(await ids('out.ndjson', (r) => r.i))).toEqual(range(TOTAL, (i) => i % 500 !== 0));
    expect(distinctSorted(await ids('dead.ndjson', (d) => d.record.i))).toEqual(range(TOTAL, (i) => i % 500 === 0));
    if (how === 'stop') expect((await ids('out.ndjson', (r) => r.i)).length).toBe(TOTAL - TOTAL / 500); // nothing twice
  });

  it('a fresh job (no checkpoint) replaces the file; a resumed one cuts off a torn last line', async () => {
    await copy().run(opts(new MemoryStateBackend()));
    await copy().run(opts(new MemoryStateBackend()));
    expect((await ids('out.ndjson', (r) => r.i)).length).toBe(TOTAL - TOTAL / 500);

    const state = new MemoryStateBackend();
    const first = copy(1000).start(opts(state));
    await afterCheckpoint(first);
    await first.kill();
    await appendFile(join(dir, 'out.ndjson'), '{"i":12'); // what a crash mid-write leaves
    await copy().run(opts(state));
    expect(distinctSorted(await ids('out.ndjson', (r) => r.i))).toEqual(range(TOTAL, (i) => i % 500 !== 0));
  });
});

describe('ndjsonFile opened for a resumed job', () => {
  it.each([
    ['a torn line longer than a read chunk', '{"i":0}\n{"i":1}\n' + '{"s":"' + 'x'.repeat(200_000), '{"i":0}\n{"i":1}\n{"i":2}\n'],
    ['a file that is all one torn line', '{"i":0', '{"i":2}\n'],
    ['a file of whole lines', '{"i":0}\n', '{"i":0}\n{"i":2}\n'],
  ])('appends after %s', async (_what, before, after) => {
    const path = join(dir, 'f.ndjson');
    await writeFile(path, before);
    const writer = await ndjsonFile(path).open({ job: 'j', worker: 'w', resumed: true });
    await writer.write([{ i: 2 }]);
    await writer.close();
    expect(await readFile(path, 'utf8')).toBe(after);
  });
});
