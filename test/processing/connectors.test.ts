import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { csv, files, generator, ndjson, ndjsonFile, stdout, textLines, type Json, type Source } from '../../src/index.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

/** Reads a whole split in reads of `max`, from `from`; returns values, bad records and the positions after each read. */
async function readSplit<T>(source: Source<T>, index: number, max: number, from?: Json) {
  const split = (await source.splits(1))[index]!;
  const reader = await source.open(split, from);
  const values: T[] = [];
  const bad: string[] = [];
  const positions: Json[] = [];
  for (;;) {
    const b = await reader.read(max);
    values.push(...b.records.map((r) => r.value));
    bad.push(...b.bad.map((x) => `${x.reason} @ ${x.where?.split('/').pop()}`));
    positions.push(b.position);
    if (b.done) break;
  }
  await reader.close();
  return { values, bad, positions };
}

describe('files source', () => {
  it('matches globs, one split per file in sorted order', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'b.txt'), 'b1\nb2\n');
    await writeFile(join(dir, 'a.txt'), 'a1\r\na2');
    await writeFile(join(dir, 'sub', 'c.txt'), 'c1\n');
    await writeFile(join(dir, 'skip.md'), 'no\n');
    const src = textLines(['*.txt', 'sub/*.txt'], { cwd: dir });
    const splits = await src.splits(4);
    expect(splits.map((s) => s.id.slice(dir.length + 1))).toEqual(['a.txt', 'b.txt', 'sub/c.txt']);
    expect((await readSplit(src, 0, 10)).values).toEqual(['a1', 'a2']);
    expect((await readSplit(src, 1, 10)).values).toEqual(['b1', 'b2']);
  });

  it('resumes a split from any position it reported, without losing or repeating a line', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i} ${'é'.repeat(i % 7)}`);
    await writeFile(join(dir, 'big.txt'), lines.join('\n') + '\n');
    const src = textLines(join(dir, 'big.txt'));
    const whole = await readSplit(src, 0, 7);
    expect(whole.values).toEqual(lines);
    for (const at of [0, 5, 20, whole.positions.length - 2]) {
      const rest = await readSplit(src, 0, 50, whole.positions[at]);
      expect([...whole.values.slice(0, (at + 1) * 7), ...rest.values]).toEqual(lines);
    }
  });

  it('decodes NDJSON, with bad lines as bad records naming file and line', async () => {
    await writeFile(join(dir, 'e.ndjson'), '{"a":1}\n\nnope\n[2]\n');
    const r = await readSplit(ndjson(join(dir, 'e.ndjson')), 0, 10);
    expect(r.values).toEqual([{ a: 1 }, [2]]);
    expect(r.bad).toEqual([expect.stringMatching(/^invalid JSON.* @ e\.ndjson:3$/)]);
  });

  it('decodes CSV: header, quotes, quoted newlines and delimiters; a short row is a bad record; resumes past the header', async () => {
    await writeFile(join(dir, 's.csv'), 'name,note\nada,"likes ""math"", and\nengines"\nbob,plain\ncarl\neve,"x,y"\n');
    const src = csv(join(dir, 's.csv'));
    const r = await readSplit(src, 0, 1);
    expect(r.values).toEqual([
      { name: 'ada', note: 'likes "math", and\nengines' },
      { name: 'bob', note: 'plain' },
      { name: 'eve', note: 'x,y' },
    ]);
    expect(r.bad).toEqual(['CSV row has 1 fields, the header 2 @ s.csv:5']);
    const resumed = await readSplit(src, 0, 10, r.positions[0]);
    expect(resumed.values).toEqual(r.values.slice(1));
    const raw = await readSplit(files<string[]>(join(dir, 's.csv'), { format: 'csv', header: false }), 0, 10);
    expect(raw.values[0]).toEqual(['name', 'note']);
  });
});

describe('generator source', () => {
  it('is deterministic from its seed whatever the splits and reads, bounded by count, with event times', async () => {
    const make = (i: number, rng: { int(n: number): number }) => ({ i, r: rng.int(1000) });
    const one = generator({ count: 50, seed: 5, make, eventTime: (i) => 1000 + i });
    const three = generator({ count: 50, seed: 5, make, splits: 3 });
    const a = (await readSplit(one, 0, 7)).values;
    const parts = await Promise.all([0, 1, 2].map((k) => readSplit(three, k, 4)));
    const b = parts.flatMap((p) => p.values).sort((x, y) => x.i - y.i);
    expect(a).toHaveLength(50);
    expect(b).toEqual(a);
    expect((await readSplit(generator({ count: 50, seed: 6, make }), 0, 50)).values).not.toEqual(a);
    const reader = await one.open((await one.splits(1))[0]!, 10);
    expect((await reader.read(1)).records[0]).toMatchObject({ value: a[10], eventTime: 1010 });
  });

  it('paces records to its rate', async () => {
    const src = generator({ seed: 1, rate: 100, make: (i) => i });
    expect(src.bounded).toBe(false);
    const reader = await src.open((await src.splits(1))[0]!);
    const started = Date.now();
    let n = 0;
    while (n < 10) n += (await reader.read(100, 50)).records.length;
    // 10 records at 100/s: about 90 ms after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(80);
    await reader.close();
  });
});

describe('sinks', () => {
  it('ndjsonFile writes one JSON line per record; stdout writes strings as they are and the rest as JSON', async () => {
    const path = join(dir, 'out', 'x.ndjson');
    const w = await ndjsonFile(path).open({ job: 'j', worker: 'w' });
    await w.write([{ a: 1 }, 'two']);
    await w.flush();
    await w.close();
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n"two"\n');

    const stream = new PassThrough();
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    const s = await stdout({ stream }).open({ job: 'j', worker: 'w' });
    await s.write(['hello', { n: 1 }]);
    expect(text).toBe('hello\n{"n":1}\n');
  });
});
