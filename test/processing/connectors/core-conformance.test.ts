/**
 * The conformance suite applied to the engine's own connectors (files, generator, in-memory array, NDJSON file sink,
 * stdout, collect), which another file set owns: this file only runs them through the same suite as the rest.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { generator } from '../../../src/processing/connectors/generator.js';
import { csv, ndjson, ndjsonFile, textLines } from '../../../src/processing/connectors/files.js';
import { collect, fromArray } from '../../../src/processing/connectors/memory.js';
import { stdout } from '../../../src/processing/connectors/stdout.js';
import { sinkConformance, sourceConformance } from '../connector-conformance.js';

/** Writes `files` files into a new folder, spreading records 0..count-1 (and bad lines) over them. */
async function fileInput(
  ext: string,
  count: number,
  bad: number,
  line: (i: number) => string,
  badLine: string,
  header = '',
) {
  const dir = await mkdtemp(join(tmpdir(), 'sf-files-'));
  const parts: string[][] = [[], [], []];
  for (let i = 0; i < count; i++) parts[i % 3]!.push(line(i));
  for (let b = 0; b < bad; b++) parts[b % 3]!.splice(1, 0, badLine);
  await Promise.all(parts.map((p, k) => writeFile(join(dir, `part${k}.${ext}`), header + p.map((l) => l + '\n').join(''))));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

sourceConformance<{ i: number }>('files: ndjson', {
  idOf: (v) => v.i,
  async create({ count, bad }) {
    const input = await fileInput('ndjson', count, bad, (i) => JSON.stringify({ i }), '{"broken');
    return { source: ndjson<{ i: number }>('*.ndjson', { cwd: input.dir }), cleanup: input.cleanup };
  },
});

sourceConformance<Record<string, string>>('files: csv', {
  idOf: (v) => Number(v.i),
  async create({ count, bad }) {
    const input = await fileInput('csv', count, bad, (i) => `${i},"x, ${i}"`, 'only-one-field', 'i,label\n');
    return { source: csv('*.csv', { cwd: input.dir }), cleanup: input.cleanup };
  },
});

sourceConformance<string>('files: text lines', {
  idOf: (v) => Number(v.slice(5)),
  canMakeBad: false,
  async create({ count }) {
    const input = await fileInput('txt', count, 0, (i) => `line ${i}`, '');
    return { source: textLines('*.txt', { cwd: input.dir }), cleanup: input.cleanup };
  },
});

sourceConformance<number>('generator (bounded)', {
  idOf: (v) => v,
  canMakeBad: false,
  async create({ count }) {
    return { source: generator({ count, splits: 3, make: (i) => i }), cleanup: async () => {} };
  },
});

sourceConformance<number>('in-memory array', {
  idOf: (v) => v,
  canMakeBad: false,
  async create({ count }) {
    return { source: fromArray(Array.from({ length: count }, (_, i) => i), { splits: 2 }), cleanup: async () => {} };
  },
});

sinkConformance<{ n: number }>('ndjson file', {
  record: (n) => ({ n }),
  idOf: (v) => v.n,
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'sf-sink-'));
    const path = join(dir, 'out', 'result.ndjson');
    return {
      sink: ndjsonFile<{ n: number }>(path),
      contents: async () =>
        (await readFile(path, 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { n: number }),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

sinkConformance<{ n: number }>('stdout', {
  record: (n) => ({ n }),
  idOf: (v) => v.n,
  async create() {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    return {
      sink: stdout<{ n: number }>({ stream }),
      contents: async () =>
        text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { n: number }),
      cleanup: async () => void stream.destroy(),
    };
  },
});

sinkConformance<{ n: number }>('collect', {
  record: (n) => ({ n }),
  idOf: (v) => v.n,
  async create() {
    const out = collect<{ n: number }>();
    return { sink: out.sink, contents: async () => out.values, cleanup: async () => {} };
  },
});
