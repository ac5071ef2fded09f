/**
 * The HTTP ingest source's log: one append-only file per partition, one JSON entry per line —
 * `{"t":<received ms>,"v":<the record>}` or `{"t":...,"bad":"<raw, truncated>","reason":"..."}`. A position is the
 * byte offset just after an entry, so a reader reopened there resumes right after it.
 *
 * An append is one `write` of whole lines; a process killed in the middle can leave a torn last line, which readers
 * never consume (they stop at the last newline) and the next appender cuts off before it appends.
 */
import { EventEmitter } from 'node:events';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ClosedError } from '../../errors/index.js';
import type { BadRecord, ReadBatch, SourceReader, SourceRecord } from './types.js';

/** In-process wake-ups: readers in the process that appends see new entries at once; others poll the file. */
const appended = new EventEmitter();
appended.setMaxListeners(0);

/** Raw input kept in a dead letter, at most. */
export const MAX_BAD_RAW_CHARS = 4096;

export const truncateRaw = (raw: string) => (raw.length > MAX_BAD_RAW_CHARS ? raw.slice(0, MAX_BAD_RAW_CHARS) + '…' : raw);

export type LogEntry = { raw: string } | { bad: string; reason: string };

export class PartitionAppender {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private size: number,
    private readonly sync: boolean,
  ) {}

  /** Opens the file for appending (creating it), first cutting off a torn last line. */
  static async open(file: string, sync: boolean): Promise<PartitionAppender> {
    const handle = await open(file, 'a+');
    try {
      let size = (await handle.stat()).size;
      const keep = await lastNewlineEnd(handle, size);
      if (keep < size) {
        await handle.truncate(keep);
        size = keep;
      }
      return new PartitionAppender(file, handle, size, sync);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Appends entries in one write; resolves with the offset after them once written (and synced, with `sync`). */
  append(entries: LogEntry[], receivedAt: number): Promise<number> {
    const text = entries
      .map((e) =>
        'raw' in e
          ? `{"t":${receivedAt},"v":${e.raw}}\n`
          : `${JSON.stringify({ t: receivedAt, bad: truncateRaw(e.bad), reason: e.reason })}\n`,
      )
      .join('');
    const data = Buffer.from(text, 'utf8');
    const done = this.tail.then(async () => {
      let written = 0;
      while (written < data.length) {
        written += (await this.handle.write(data, written, data.length - written, this.size + written)).bytesWritten;
      }
      if (this.sync) await this.handle.datasync();
      this.size += data.length;
      appended.emit(this.file);
      return this.size;
    });
    this.tail = done.catch(() => undefined);
    return done;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle.close();
  }
}

/** The offset just after the last newline of the first `size` bytes (0 if none). */
async function lastNewlineEnd(handle: FileHandle, size: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    const i = chunk.subarray(0, bytesRead).lastIndexOf(10);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

export interface LogReaderOptions<T> {
  file: string;
  partition: number;
  offset: number;
  pollMs: number;
  eventTime?: (value: T) => number | undefined;
}

/** Reads one partition file from an offset; waits for appends when it has read everything. */
export class PartitionReader<T> implements SourceReader<T> {
  private offset: number;
  private handle: FileHandle | undefined;
  private closed = false;
  private buffer = Buffer.alloc(64 * 1024);
  /** The read in progress (close waits for it before closing the file under it). */
  private reading: Promise<unknown> = Promise.resolve();
  private wakeUp: (() => void) | undefined;

  constructor(private readonly options: LogReaderOptions<T>) {
    this.offset = options.offset;
  }

  read(max: number, waitMs = 1000): Promise<ReadBatch<T>> {
    if (this.closed) return Promise.reject(new ClosedError(`the reader of ${this.options.file} is closed`));
    const work = this.reading.then(() => this.readWaiting(max, waitMs));
    this.reading = work.catch(() => undefined);
    return work;
  }

  private async readWaiting(max: number, waitMs: number): Promise<ReadBatch<T>> {
    if (this.closed) return { records: [], bad: [], position: { offset: this.offset }, done: false };
    const deadline = Date.now() + waitMs;
    for (;;) {
      const batch = await this.readAvailable(Math.max(1, max));
      if (batch.records.length + batch.bad.length > 0) return batch;
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return batch;
      await this.waitForAppend(left);
    }
  }

  private waitForAppend(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        appended.off(this.options.file, done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, this.options.pollMs));
      appended.on(this.options.file, done);
      this.wakeUp = done;
    });
  }

  private async readAvailable(max: number): Promise<ReadBatch<T>> {
    const records: SourceRecord<T>[] = [];
    const bad: BadRecord[] = [];
    const handle = await this.openHandle();
    if (handle) {
      const size = (await handle.stat()).size;
      while (records.length + bad.length < max && this.offset < size) {
        const want = Math.min(this.buffer.length, size - this.offset);
        const { bytesRead } = await handle.read(this.buffer, 0, want, this.offset);
        let pos = 0;
        while (records.length + bad.length < max) {
          const nl = this.buffer.indexOf(10, pos);
          if (nl < 0 || nl >= bytesRead) break;
          this.decode(this.buffer.subarray(pos, nl), records, bad);
          pos = nl + 1;
        }
        if (pos === 0) {
          // No whole line in the buffer: a long line (grow and retry) or a torn tail (wait for it).
          if (bytesRead < this.buffer.length) break;
          this.buffer = Buffer.alloc(this.buffer.length * 2);
          continue;
        }
        this.offset += pos;
      }
    }
    return { records, bad, position: { offset: this.offset }, done: false };
  }

  private decode(line: Buffer, records: SourceRecord<T>[], bad: BadRecord[]): void {
    const where = `${this.options.file}@${this.offset}`;
    let entry: { t?: number; v?: T; bad?: string; reason?: string };
    try {
      entry = JSON.parse(line.toString('utf8')) as typeof entry;
    } catch (err) {
      bad.push({ raw: truncateRaw(line.toString('utf8')), reason: `corrupt log entry: ${(err as Error).message}`, where });
      return;
    }
    if (typeof entry.bad === 'string') {
      bad.push({ raw: entry.bad, reason: entry.reason ?? 'bad record', where });
      return;
    }
    const value = entry.v as T;
    const eventTime = this.options.eventTime?.(value);
    records.push({ value, bytes: line.length, ...(eventTime === undefined ? {} : { eventTime }) });
  }

  private async openHandle(): Promise<FileHandle | undefined> {
    if (this.handle) return this.handle;
    try {
      await stat(this.options.file);
    } catch {
      return undefined; // Nothing appended yet.
    }
    this.handle = await open(this.options.file, 'r');
    return this.handle;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeUp?.();
    await this.reading;
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
