import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import wordcount, { words } from '../../examples/wordcount.js';
import { ConfigError, loadJob, runJobModule } from '../../src/index.js';
import { tempDir } from './helpers.js';

const run = promisify(execFile);

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const TEXTS = {
  'a.txt': 'The cat, the HAT — and the café!\nÉté 2024: naïve façade; don’t stop.\n',
  'b.txt': 'Καλημέρα κόσμε, ΚΑΛΗΜΈΡΑ\r\n東京 東京 tokyo\n\n42 is 42\n',
  // Lower-casing "İ" adds U+0307 (a combining mark, not a letter), and "²" is a number but not a digit.
  'c.txt': 'İstanbul x² ½\nthe end',
};

/** The reference: what the example must produce, computed the plain way. */
function expected(): string {
  const counts = new Map<string, number>();
  for (const text of Object.values(TEXTS))
    for (const raw of text.split(/[^\p{L}\p{Nd}]+/u)) {
      const w = raw.toLowerCase();
      if (w) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([word, count]) => JSON.stringify({ word, count }) + '\n')
    .join('');
}

describe('examples/wordcount.ts', () => {
  beforeEach(async () => {
    for (const [name, text] of Object.entries(TEXTS)) await writeFile(join(dir, name), text);
    await writeFile(join(dir, 'ignored.md'), 'the the the');
  });

  it('counts Unicode words over a glob, the same in stream and batch mode', async () => {
    for (const mode of ['stream', 'batch']) {
      const out = join(dir, `${mode}.ndjson`);
      const result = await runJobModule(wordcount, ['--input', join(dir, '*.txt'), '--out', out, '--mode', mode, '--trigger', 'count=2']);
      expect(result.state).toBe('finished');
      expect(await readFile(out, 'utf8')).toBe(expected());
    }
    expect(expected()).toContain('{"word":"the","count":4}');
    expect(expected()).toContain('{"word":"καλημέρα","count":2}');
    expect(expected()).toContain('{"word":"i\u0307stanbul","count":1}');
    expect(expected()).toContain('{"word":"x","count":1}');
    expect(expected()).not.toMatch(/"word":"(i|stanbul|x²|½)"/);
  });

  it('splits on anything not a letter or digit, then lower-cases each word', () => {
    expect(words('İstanbul x² ½ 42 ٤٢ Été')).toEqual(['i\u0307stanbul', 'x', '42', '٤٢', 'été']);
  });

  it('runs directly with node --import tsx', async () => {
    const out = join(dir, 'direct.ndjson');
    const { stderr } = await run(process.execPath, ['--import', 'tsx', 'examples/wordcount.ts', '--input', join(dir, '*.txt'), '--out', out], {
      cwd: join(import.meta.dirname, '../..'),
    });
    expect(stderr).toMatch(/wordcount: finished/);
    expect(await readFile(out, 'utf8')).toBe(expected());
  });

  it('is a loadable job module; bad job files and missing arguments are refused clearly', async () => {
    const job = await loadJob(join(import.meta.dirname, '../../examples/wordcount.ts'));
    expect(job.kind).toBe('shardflow-job');
    await expect(runJobModule(job, ['--input', 'x'])).rejects.toThrow(/needs --input GLOB and --out FILE/);

    await writeFile(join(dir, 'not-a-job.mjs'), 'export default 42;\n');
    await expect(loadJob(join(dir, 'not-a-job.mjs'))).rejects.toThrow(/must export default defineJob/);
    await writeFile(join(dir, 'broken.mjs'), 'throw new Error("boom at load");\n');
    const err = await loadJob(join(dir, 'broken.mjs')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/cannot load job .*broken\.mjs: boom at load/);
    await expect(runJobModule(job, ['--input', 'x', '--out', 'y', '--trigger', 'count=zero', '--mode', 'batch'])).rejects.toThrow(ConfigError);
  });
});
