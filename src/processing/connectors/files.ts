/**
 * Files: a source reading NDJSON, CSV or plain text lines from files matched by globs (one split per file, so
 * several readers share the files), and an NDJSON file sink.
 *
 * A split's position is `{ offset, line }`: the byte offset of the next record and its line number, so a reader
 * reopened at a checkpoint's position resumes right after the last record it covered. Records end at `\n`
 * (a `\r` before it is dropped); in CSV a newline inside double quotes does not end a record. Lines that do not
 * decode — bad JSON, a CSV row with the wrong number of fields — are bad records (dead letters), not errors. Empty
 * lines are skipped in NDJSON and CSV.
 *
 * Globs are matched by `tinyglobby` (relative to `cwd`, default the process's); files come in sorted order.
 *
 * @example
 * ```ts
 * import { pipeline, textLines, ndjson, csv, ndjsonFile } from 'shardflow';
 * await pipeline('logs').from(textLines('logs/**\/*.log')).filter((l) => l.includes('ERROR')).to(ndjsonFile('out/errors.ndjson')).run();
 * await pipeline('events').from(ndjson<{ user: string }>('in/*.ndjson')).map((e) => e.user).to(ndjsonFile('out/users.ndjson')).run();
 * await pipeline('sales') // records: { column: value }, the columns named by the header row
 *   .from(csv('sales/*.csv'))
 *   .map((r) => ({ region: r.region, amount: Number(r.amount) }))
 *   .to(ndjsonFile('out/sales.ndjson'))
 *   .run();
 * ```
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { glob } from 'tinyglobby';
import { ClosedError, InvalidArgumentError } from '../../errors/index.js';
import { BadRecordsError, eachRecord, jsonLine } from './bad-records.js';
import { LagEstimate } from './lag-estimate.js';
import type { BadRecord, Json, ReadBatch, Sink, SinkContext, SinkWriter, Source, SourceReader, SourceRecord, SourceSplit } from './types.js';

/**
 * How {@link files} decodes a file: `text` (each line a string), `ndjson` (each line a JSON value) or `csv` (each
 * record an object by the header row, or a string array).
 *
 * @example
 * ```ts
 * import { files, type FileFormat } from 'shardflow';
 * const format: FileFormat = process.argv.includes('--csv') ? 'csv' : 'ndjson';
 * const source = files(format === 'csv' ? 'in/*.csv' : 'in/*.ndjson', { format });
 * ```
 */
export type FileFormat = 'text' | 'ndjson' | 'csv';

/**
 * Options of {@link files}; {@link textLines}, {@link ndjson} and {@link csv} take them without `format`.
 *
 * @example
 * ```ts
 * import { files, type FilesOptions } from 'shardflow';
 * const options: FilesOptions = { format: 'csv', cwd: '/data/exports', header: false, delimiter: ';' };
 * const rows = files<string[]>('2026-*.csv', options); // records: string arrays, the first row among them
 * ```
 */
export interface FilesOptions {
  format: FileFormat;
  /** Where relative globs start. Default `process.cwd()`. */
  cwd?: string;
  /** CSV: the first record names the columns (default true: records are objects; false: string arrays). */
  header?: boolean;
  /** CSV field delimiter, default `,`. */
  delimiter?: string;
}

const CHUNK = 64 * 1024;
const MAX_RAW = 4096;
const NL = 0x0a;
const QUOTE = 0x22;

/**
 * Records from the files matching `patterns`, decoded by `options.format`.
 *
 * @example
 * ```ts
 * import { pipeline, files, collect } from 'shardflow';
 * const out = collect<string>();
 * await pipeline('lines').from(files<string>(['a/*.txt', 'b/*.txt'], { format: 'text' })).to(out.sink).run();
 * out.values; // every line of the files matching either glob
 * ```
 */
export function files<T>(patterns: string | string[], options: FilesOptions): Source<T> {
  const list = Array.isArray(patterns) ? patterns : [patterns];
  if (list.length === 0 || list.some((p) => typeof p !== 'string' || p === ''))
    throw new InvalidArgumentError('files() needs at least one glob');
  if (!['text', 'ndjson', 'csv'].includes(options.format))
    throw new InvalidArgumentError(`unknown file format "${options.format}": expected text, ndjson or csv`);
  const cwd = resolve(options.cwd ?? process.cwd());
  return {
    name: `files(${list.join(',')})`,
    bounded: true,
    async splits(): Promise<SourceSplit[]> {
      const paths = await glob(list, { cwd, absolute: true, onlyFiles: true, expandDirectories: false });
      return paths.sort().map((path) => ({ id: path, spec: { path } }));
    },
    async open(split: SourceSplit, from?: Json): Promise<SourceReader<T>> {
      const { path } = split.spec as { path: string };
      const at = from as { offset: number; line: number } | undefined;
      const reader = new FileReader<T>(path, await open(path, 'r'), options, at?.offset ?? 0, at?.line ?? 0);
      await reader.start(at === undefined);
      return reader;
    },
  };
}

/**
 * Plain text lines (strings, without the line end).
 *
 * @example
 * ```ts
 * import { pipeline, textLines, global, count, stdout } from 'shardflow';
 * await pipeline('wc')
 *   .from(textLines('books/*.txt', { cwd: '/data' }))
 *   .flatMap((l) => l.split(' ').filter(Boolean))
 *   .keyBy((w) => w)
 *   .window(global())
 *   .aggregate(count())
 *   .to(stdout())
 *   .run();
 * ```
 */
export function textLines(patterns: string | string[], options: Omit<FilesOptions, 'format'> = {}): Source<string> {
  return files<string>(patterns, { ...options, format: 'text' });
}

/**
 * One JSON value per line. The type is not checked: add `.validate(guard)` to send wrong shapes to dead letters.
 *
 * @example
 * ```ts
 * import { pipeline, ndjson, collect } from 'shardflow';
 * const users = collect<string>();
 * await pipeline('e')
 *   .from(ndjson<{ user: string }>('events/*.ndjson'))
 *   .validate((e) => typeof e?.user === 'string', 'no user') // other shapes go to the dead letters
 *   .map((e) => e.user)
 *   .to(users.sink)
 *   .run();
 * ```
 */
export function ndjson<T = unknown>(patterns: string | string[], options: Omit<FilesOptions, 'format'> = {}): Source<T> {
  return files<T>(patterns, { ...options, format: 'ndjson' });
}

/**
 * CSV (RFC 4180 quoting). With a header row (default), records are `{ column: value }`.
 *
 * @example
 * ```ts
 * import { pipeline, csv, collect } from 'shardflow';
 * const amounts = collect<number>();
 * await pipeline('s').from(csv('sales/*.csv')).map((r) => Number(r.amount)).to(amounts.sink).run();
 * ```
 */
export function csv(patterns: string | string[], options: Omit<FilesOptions, 'format'> = {}): Source<Record<string, string>> {
  return files<Record<string, string>>(patterns, { ...options, format: 'csv' });
}

class FileReader<T> implements SourceReader<T> {
  private buf = Buffer.alloc(0);
  /** File offset of `buf[0]`. */
  private bufAt: number;
  private eof = false;
  private columns: string[] | undefined;
  /** The file's size and what this reader read of it: the records still to read, estimated (`pending`). */
  private size: number | undefined;
  private readonly lag = new LagEstimate();

  constructor(
    private readonly path: string,
    private readonly fh: FileHandle,
    private readonly options: FilesOptions,
    private offset: number,
    private line: number,
  ) {
    this.bufAt = offset;
  }

  /** CSV with a header: reads the header row (from the file's start, even when resuming past it). */
  async start(fresh: boolean): Promise<void> {
    if (this.options.format !== 'csv' || this.options.header === false) return;
    const resumeAt = this.offset;
    this.offset = this.bufAt = 0;
    this.buf = Buffer.alloc(0);
    const header = await this.nextRecord();
    this.columns = header ? parseCsvRow(header.text, this.options.delimiter ?? ',') : [];
    if (fresh) return;
    this.offset = this.bufAt = resumeAt;
    this.buf = Buffer.alloc(0);
    this.eof = false;
  }

  async read(max: number): Promise<ReadBatch<T>> {
    const records: SourceRecord<T>[] = [];
    const bad: BadRecord[] = [];
    while (records.length < max) {
      const rec = await this.nextRecord();
      if (!rec) break;
      const where = `${this.path}:${rec.line}`;
      const text = rec.text;
      if (this.options.format === 'text') {
        records.push({ value: text as T, bytes: rec.bytes });
        continue;
      }
      if (text.trim() === '') continue;
      if (this.options.format === 'ndjson') {
        try {
          records.push({ value: JSON.parse(text) as T, bytes: rec.bytes });
        } catch (err) {
          bad.push({ raw: text.slice(0, MAX_RAW), reason: `invalid JSON: ${(err as Error).message}`, where });
        }
        continue;
      }
      const fields = parseCsvRow(text, this.options.delimiter ?? ',');
      if (!this.columns) {
        records.push({ value: fields as T, bytes: rec.bytes });
      } else if (fields.length !== this.columns.length) {
        bad.push({ raw: text.slice(0, MAX_RAW), reason: `CSV row has ${fields.length} fields, the header ${this.columns.length}`, where });
      } else {
        const obj: Record<string, string> = {};
        this.columns.forEach((c, i) => (obj[c] = fields[i]!));
        records.push({ value: obj as T, bytes: rec.bytes });
      }
    }
    const done = this.eof && this.buf.length === 0;
    this.size ??= (await this.fh.stat()).size;
    this.lag.read(records.length, records.reduce((n, r) => n + r.bytes, 0));
    const pending = done ? 0 : this.lag.pending(this.size - this.offset);
    return { records, bad, position: { offset: this.offset, line: this.line }, done, ...(pending === undefined ? {} : { pending }) };
  }

  /** The next record's text (line end dropped), or undefined at the end of the file. */
  private async nextRecord(): Promise<{ text: string; line: number; bytes: number } | undefined> {
    for (;;) {
      const end = this.options.format === 'csv' ? csvRecordEnd(this.buf) : this.buf.indexOf(NL);
      if (end >= 0 || (this.eof && this.buf.length > 0)) {
        const stop = end >= 0 ? end : this.buf.length;
        let text = this.buf.toString('utf8', 0, stop);
        if (text.endsWith('\r')) text = text.slice(0, -1);
        const consumed = end >= 0 ? end + 1 : stop;
        // Lines are the file's lines (a quoted CSV field may span several): a record is named by its first.
        const line = this.line + 1;
        let lines = 0;
        for (let i = this.buf.indexOf(NL); i >= 0 && i < consumed; i = this.buf.indexOf(NL, i + 1)) lines++;
        this.line += Math.max(lines, 1);
        this.buf = this.buf.subarray(consumed);
        this.bufAt += consumed;
        this.offset = this.bufAt;
        return { text, line, bytes: consumed };
      }
      if (this.eof) return undefined;
      const chunk = Buffer.alloc(CHUNK);
      const { bytesRead } = await this.fh.read(chunk, 0, CHUNK, this.bufAt + this.buf.length);
      if (bytesRead === 0) this.eof = true;
      else this.buf = Buffer.concat([this.buf, chunk.subarray(0, bytesRead)]);
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Index of the `\n` ending the first CSV record in `buf` (newlines in quotes do not count), or -1. */
function csvRecordEnd(buf: Buffer): number {
  let quoted = false;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b === QUOTE) quoted = !quoted;
    else if (b === NL && !quoted) return i;
  }
  return -1;
}

/**
 * The fields of one CSV record: `"` quotes a field, `""` inside quotes is a quote.
 *
 * @example
 * ```ts
 * import { parseCsvRow } from 'shardflow';
 * parseCsvRow('a,"b, ""c""",d', ','); // ['a', 'b, "c"', 'd']
 * parseCsvRow('1;;3', ';'); // ['1', '', '3']
 * ```
 */
export function parseCsvRow(text: string, delimiter: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === delimiter) {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

/**
 * Writes records as NDJSON lines to `path` (its directory is created). A fresh job truncates the file (unless
 * `append`); a job resuming from a checkpoint appends, so what earlier runs wrote stays (at-least-once). `flush`
 * (before each checkpoint commits) syncs it to the device. A record that is not JSON is refused
 * ({@link BadRecordsError}), the rest written.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, ndjsonFile } from 'shardflow';
 * await pipeline('counts').from(fromArray([{ word: 'a', count: 2 }])).to(ndjsonFile('out/counts.ndjson')).run();
 * // out/counts.ndjson: {"word":"a","count":2}
 * await pipeline('more').from(fromArray([{ word: 'b', count: 1 }])).to(ndjsonFile('out/counts.ndjson', { append: true })).run();
 * // out/counts.ndjson: both lines
 * ```
 */
export function ndjsonFile<T = unknown>(path: string, options: { append?: boolean } = {}): Sink<T> {
  const name = `ndjson(${path})`;
  return {
    name,
    idempotent: false,
    async open(context?: SinkContext): Promise<SinkWriter<T>> {
      await mkdir(dirname(resolve(path)), { recursive: true });
      const append = options.append || context?.resumed === true;
      const fh = await open(path, append ? 'a+' : 'w');
      try {
        if (append) await dropTornLine(fh);
      } catch (err) {
        await fh.close();
        throw err;
      }
      let dirty = false;
      let closed = false;
      return {
        async write(records) {
          if (closed) throw new ClosedError(`the writer of ${path} is closed`);
          if (records.length === 0) return;
          const { ok, rejected } = eachRecord(records, 'not JSON', jsonLine);
          if (ok.length > 0) {
            await fh.write(ok.map((l) => l.value).join('\n') + '\n');
            dirty = true;
          }
          if (rejected.length > 0) throw new BadRecordsError(rejected, name);
        },
        async flush() {
          if (dirty) await fh.datasync();
          dirty = false;
        },
        async close() {
          if (closed) return;
          closed = true;
          await fh.close();
        },
      };
    },
  };
}

/**
 * Cuts a crashed run's half-written last line off the file, so the next line appended starts on a line of its own
 * (the record it held is after the checkpoint: it is written again).
 */
async function dropTornLine(fh: FileHandle): Promise<void> {
  const { size } = await fh.stat();
  const buf = Buffer.alloc(CHUNK);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - CHUNK);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(NL);
    if (end === size && nl === bytesRead - 1) return; // ends with a line end: nothing torn
    if (nl >= 0) return fh.truncate(start + nl + 1);
    end = start;
  }
  if (size > 0) await fh.truncate(0);
}
