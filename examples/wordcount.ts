/**
 * Word count: reads text files matching `--input GLOB`, splits lines into words on anything that is not a Unicode
 * letter or digit, lower-cases them, and writes `{"word": "...", "count": N}` lines (in word order) to `--out FILE`.
 *
 * ```sh
 * node --import tsx examples/wordcount.ts --input 'books/*.txt' --out counts.ndjson
 * node --import tsx examples/wordcount.ts --input 'books/*.txt' --out counts.ndjson --mode batch --trigger count=10k
 * ```
 *
 * It is a job module: the default export is what `shardflow run examples/wordcount.ts -- --input ... --out ...` loads.
 */
import { ConfigError, count, defineJob, global, ndjsonFile, pipeline, runIfMain, textLines } from '../src/index.js';

/**
 * The words of a line, lower-cased. It splits first, then lower-cases each word: lower-casing can add characters
 * that are not letters ("İ" becomes "i" + U+0307, a combining mark), which would split a word if done first. Digits
 * are `\p{Nd}`: `\p{N}` would also take "²" or "½" as part of a word.
 */
export function words(line: string): string[] {
  return line
    .split(/[^\p{L}\p{Nd}]+/u)
    .filter((w) => w !== '')
    .map((w) => w.toLowerCase());
}

const job = defineJob((args) => {
  if (typeof args.input !== 'string' || typeof args.out !== 'string')
    throw new ConfigError('wordcount needs --input GLOB and --out FILE');
  return pipeline('wordcount')
    .from(textLines(args.input))
    .flatMap(words)
    .keyBy((word) => word)
    .window(global())
    .aggregate(count())
    .map((r) => ({ word: r.key, count: r.value }))
    .to(ndjsonFile(args.out));
});

export default job;

await runIfMain(import.meta.url, job);
