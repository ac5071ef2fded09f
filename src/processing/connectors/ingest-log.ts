/**
 * The HTTP ingest source's log: per partition, a folder of append-only **segments**, one JSON entry per line —
 * `{"t":<received ms>,"v":<the record>}` or `{"t":...,"bad":"<raw, truncated>","reason":"..."}`.
 *
 * **Offsets.** A position is the *logical* byte offset just after an entry: the partition's bytes as if its segments
 * were one file. Each segment is named by the logical offset of its first byte, zero-padded like Kafka's
 * (`p0/00000000000000000000.log`, `p0/00000000000067108901.log`, ...), so the offset of a byte is its segment's name
 * plus its place in the segment, and a reader reopened at a position resumes right after its entry whatever was
 * rolled or trimmed meanwhile. The segment after one that ends at offset E is named E: a reader at the end of a
 * segment knows which file to look for, and that file existing means the one before it is final.
 *
 * **Appending.** An append is one `write` of whole lines to the last segment. Before it, the appender rolls to a new
 * segment when the last one holds `segmentBytes` or more (so a segment may exceed it by one append; an append is never
 * split). A process killed in the middle can leave a torn last line, which readers never consume (they stop at the
 * last newline) and the next appender cuts off before it appends; a write that fails (disk full) is cut back the same
 * way. Only the last segment can hold a torn line: rolling happens between whole appends.
 *
 * **Reading.** A reader opened at offset X reads the segment with the greatest name <= X, then each next one in turn.
 * Readers in the appending process are woken at once by appends; others poll (`pollMs`). A position before the first
 * segment kept is an error (what it needs was trimmed); a reader opened with no position starts at the first one.
 *
 * **Trimming.** {@link trimLog} (a reader's `committed`) deletes every segment that ends at or before the committed
 * offset, except the last one (the appender's) and any segment a reader of this process still reads from or would
 * read next. An unlinked segment stays readable through a handle a reader of another process already has open; a
 * reader opening a segment that vanished meanwhile lists the folder again. Errors are swallowed: a segment kept too
 * long costs space, not correctness.
 *
 * **The old layout** (one `p<N>.ndjson` file per partition, offsets from 0) is migrated by the first appender that
 * opens the partition: it renames the file to `p<N>/00000000000000000000.log` (one atomic rename; same offsets). A
 * reader that finds no segment folder yet reads the old file in place as the segment at offset 0 (its handle keeps
 * reading the same file after the rename) and finds later segments in the folder.
 */
import { EventEmitter } from 'node:events';
import { constants, type Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ClosedError, InvalidArgumentError } from '../../errors/index.js';
import type { BadRecord, Json, ReadBatch, SourceReader, SourceRecord } from './types.js';
import { LagEstimate } from './lag-estimate.js';

/** In-process wake-ups (keyed by partition folder): readers in the process that appends see new entries at once. */
const appended = new EventEmitter();
appended.setMaxListeners(0);

/** Raw input kept in a dead letter, at most. */
export const MAX_BAD_RAW_CHARS = 4096;

/** Size at which the appender rolls to a new segment, by default. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

export const truncateRaw = (raw: string) => (raw.length > MAX_BAD_RAW_CHARS ? raw.slice(0, MAX_BAD_RAW_CHARS) + '…' : raw);

/** A segment's file name: the logical offset of its first byte, zero-padded to 20 digits. */
export const segmentName = (base: number) => `${String(base).padStart(20, '0')}.log`;

const SEGMENT = /^(\d{20})\.log$/;

/** The old layout's file of a partition folder (`.../p0` → `.../p0.ndjson`). */
export const legacyFileOf = (dir: string) => `${dir}.ndjson`;

/** The segments of a partition folder, by offset (none if the folder does not exist). */
export async function listSegments(dir: string): Promise<number[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const bases: number[] = [];
  for (const e of entries) {
    const m = SEGMENT.exec(e.name);
    if (m && e.isFile()) bases.push(Number(m[1]));
  }
  return bases.sort((a, b) => a - b);
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Makes a new or renamed entry of `dir` durable (best effort: not every platform can sync a folder). */
async function syncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Best effort.
  }
}

export type LogEntry = { raw: string } | { bad: string; reason: string };

export interface AppenderOptions {
  /** The partition folder (created if missing). */
  dir: string;
  /** Flush each append to the device. */
  sync: boolean;
  /** Roll to a new segment once the last one holds this many bytes. */
  segmentBytes: number;
}

export class PartitionAppender {
  private tail: Promise<unknown> = Promise.resolve();
  /** Set when a failed write could not be cut back: appending more would corrupt the log. */
  private broken: Error | undefined;

  private constructor(
    private readonly options: AppenderOptions,
    private handle: FileHandle,
    /** Logical offset of the last segment's first byte. */
    private base: number,
    /** Bytes in the last segment. */
    private size: number,
  ) {}

  /** The partition folder. */
  get dir(): string {
    return this.options.dir;
  }

  /** Logical offset after the last entry. */
  get end(): number {
    return this.base + this.size;
  }

  /**
   * Opens the partition for appending: migrates an old-layout file, opens (or creates) the last segment and cuts off
   * a torn last line.
   */
  static async open(options: AppenderOptions): Promise<PartitionAppender> {
    const { dir } = options;
    await mkdir(dir, { recursive: true });
    let bases = await listSegments(dir);
    if (bases.length === 0) {
      try {
        await rename(legacyFileOf(dir), join(dir, segmentName(0)));
        bases = [0];
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    const base = bases.at(-1) ?? 0;
    // Not 'a': writes go at the offset given (a failed write is cut back and written over).
    const handle = await open(join(dir, segmentName(base)), constants.O_RDWR | constants.O_CREAT);
    try {
      let size = (await handle.stat()).size;
      const keep = await lastNewlineEnd(handle, size);
      if (keep < size) {
        await handle.truncate(keep);
        size = keep;
      }
      if (options.sync) {
        // The segment's (new or migrated) name, and the folder's own, are durable before anything is acknowledged.
        await syncDir(dir);
        await syncDir(dirname(dir));
      }
      return new PartitionAppender(options, handle, base, size);
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
      if (this.broken) throw this.broken;
      if (this.size >= this.options.segmentBytes) await this.roll();
      try {
        let written = 0;
        while (written < data.length) {
          written += (await this.handle.write(data, written, data.length - written, this.size + written)).bytesWritten;
        }
        if (this.options.sync) await this.handle.datasync();
        this.size += data.length;
      } catch (err) {
        await this.cutBack();
        throw err;
      } finally {
        appended.emit(this.options.dir);
      }
      return this.base + this.size;
    });
    this.tail = done.catch(() => undefined);
    return done;
  }

  /**
   * After a failed write: keeps the whole lines it left (as a crash would; readers may have read them) and cuts off
   * the torn rest, so the next append starts on a line boundary at the offset the appender counts.
   */
  private async cutBack(): Promise<void> {
    try {
      const actual = (await this.handle.stat()).size;
      const keep = await lastNewlineEnd(this.handle, actual);
      if (keep < actual) await this.handle.truncate(keep);
      this.size = keep;
    } catch (err) {
      this.broken = err as Error;
    }
  }

  /** Starts the segment named by the current end; the last one is final from then on. */
  private async roll(): Promise<void> {
    const base = this.base + this.size;
    const handle = await open(join(this.options.dir, segmentName(base)), 'wx+');
    const old = this.handle;
    this.handle = handle;
    this.base = base;
    this.size = 0;
    await old.close().catch(() => undefined);
    if (this.options.sync) await syncDir(this.options.dir);
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

/** Readers open in this process, by partition folder: trimming keeps what they read from or will read next. */
const readersOf = new Map<string, Set<PartitionReader<unknown>>>();
/** Trims in progress, by partition folder (one at a time per folder). */
const trims = new Map<string, Promise<void>>();

/**
 * Deletes the segments of partition folder `dir` that end at or before `upTo`, except the last one and any a reader
 * of this process has not finished. Best effort: never rejects. Trims of one folder run one after another.
 */
export function trimLog(dir: string, upTo: number, stop: () => boolean = () => false): Promise<void> {
  const next = (trims.get(dir) ?? Promise.resolve()).then(() => trimNow(dir, upTo, stop)).catch(() => undefined);
  trims.set(dir, next);
  void next.then(() => {
    if (trims.get(dir) === next) trims.delete(dir);
  });
  return next;
}

async function trimNow(dir: string, upTo: number, stop: () => boolean): Promise<void> {
  if (stop()) return;
  const bases = await listSegments(dir);
  // The last segment listed is the appender's (or was when listed): it is never deleted. Segment i ends where i+1
  // starts; a reader keeps the segment it reads from (and the ones after), or the one holding its offset.
  for (let i = 0; i + 1 < bases.length; i++) {
    let limit = upTo;
    for (const r of readersOf.get(dir) ?? []) limit = Math.min(limit, r.keepFrom);
    if (bases[i + 1]! > limit || stop()) return;
    try {
      await rm(join(dir, segmentName(bases[i]!)), { force: true });
    } catch {
      return; // Best effort (e.g. a platform that cannot delete an open file): try again at the next commit.
    }
  }
}

export interface LogReaderOptions<T> {
  /** The partition folder. */
  dir: string;
  partition: number;
  /** Where to start; undefined: at the first segment kept. */
  offset: number | undefined;
  pollMs: number;
  eventTime?: (value: T) => number | undefined;
}

interface OpenSegment {
  base: number;
  handle: FileHandle;
}

/** Reads one partition from an offset, segment after segment; waits for appends when it has read everything. */
export class PartitionReader<T> implements SourceReader<T> {
  private offset: number;
  /** No position was given: start at the first segment kept. */
  private fromStart: boolean;
  private segment: OpenSegment | undefined;
  private closed = false;
  private buffer = Buffer.alloc(64 * 1024);
  /** The end of the segment last read, and what this reader read: the lines still to read, estimated (`pending`). */
  private segmentEnd = 0;
  private readonly lag = new LagEstimate();
  /** The read in progress (close waits for it before closing the file under it). */
  private reading: Promise<unknown> = Promise.resolve();
  private wakeUp: (() => void) | undefined;

  constructor(private readonly options: LogReaderOptions<T>) {
    this.offset = options.offset ?? 0;
    this.fromStart = options.offset === undefined;
    let set = readersOf.get(options.dir);
    if (!set) readersOf.set(options.dir, (set = new Set()));
    set.add(this as PartitionReader<unknown>);
  }

  /** Trimming keeps every segment that ends after this offset. */
  get keepFrom(): number {
    return this.segment?.base ?? (this.fromStart ? 0 : this.offset);
  }

  read(max: number, waitMs = 1000): Promise<ReadBatch<T>> {
    if (this.closed) return Promise.reject(new ClosedError(`the reader of ${this.options.dir} is closed`));
    const work = this.reading.then(() => this.readWaiting(max, waitMs));
    this.reading = work.catch(() => undefined);
    return work;
  }

  /** Everything up to `position` is in a committed checkpoint: deletes the segments before it (best effort). */
  async committed(position: Json): Promise<void> {
    if (this.closed) return;
    const offset = (position as { offset?: unknown } | null)?.offset;
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset <= 0) return;
    await trimLog(this.options.dir, offset, () => this.closed);
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
        appended.off(this.options.dir, done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, this.options.pollMs));
      appended.on(this.options.dir, done);
      this.wakeUp = done;
    });
  }

  private async readAvailable(max: number): Promise<ReadBatch<T>> {
    const records: SourceRecord<T>[] = [];
    const bad: BadRecord[] = [];
    while (records.length + bad.length < max && !this.closed) {
      const segment = await this.openSegment();
      if (!segment) break;
      const end = segment.base + (await segment.handle.stat()).size;
      this.segmentEnd = end;
      if (this.offset >= end) {
        // Everything of this segment is read: go on once the appender has moved to the next one.
        if (await this.nextSegment(segment)) continue;
        break;
      }
      const want = Math.min(this.buffer.length, end - this.offset);
      const { bytesRead } = await segment.handle.read(this.buffer, 0, want, this.offset - segment.base);
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
      this.lag.read(0, pos);
      // Full, and at the end of this segment: move on now if it is final, so trimming need not keep it for us.
      if (this.offset === end && records.length + bad.length >= max) await this.nextSegment(segment);
    }
    this.lag.read(records.length + bad.length, 0);
    // Of the segment being read only: a reader further behind (whole segments) is behind by more than this says.
    const pending = this.lag.pending(this.segmentEnd - this.offset) ?? 0;
    return { records, bad, position: { offset: this.offset }, done: false, pending };
  }

  private decode(line: Buffer, records: SourceRecord<T>[], bad: BadRecord[]): void {
    const where = `${this.options.dir}@${this.offset}`;
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

  /** The segment holding the offset (opened once); undefined while nothing was appended. */
  private async openSegment(): Promise<OpenSegment | undefined> {
    if (this.segment) return this.segment;
    const { dir } = this.options;
    // A segment can vanish between listing and opening (trimmed, or the old file migrated): list again.
    for (let attempt = 0; attempt < 5; attempt++) {
      const bases = await listSegments(dir);
      if (bases.length === 0) {
        try {
          return (this.segment = { base: 0, handle: await open(legacyFileOf(dir), 'r') });
        } catch (err) {
          if (!isMissing(err)) throw err;
        }
        if ((await listSegments(dir)).length > 0) continue; // Migrated meanwhile.
        return undefined; // Nothing appended yet.
      }
      if (this.fromStart && this.offset < bases[0]!) this.offset = bases[0]!;
      const base = bases.findLast((b) => b <= this.offset);
      if (base === undefined) {
        throw new InvalidArgumentError(
          `position ${this.offset} of ${dir} was trimmed: the log starts at ${bases[0]} (a checkpoint after it committed)`,
          { details: { offset: this.offset, first: bases[0] } },
        );
      }
      try {
        const handle = await open(join(dir, segmentName(base)), 'r');
        this.fromStart = false;
        return (this.segment = { base, handle });
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    return undefined; // Still moving: try again at the next read.
  }

  /** At the end of `current`: moves to the segment named by this offset if the appender has started it. */
  private async nextSegment(current: OpenSegment): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(join(this.options.dir, segmentName(this.offset)), 'r');
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    this.segment = { base: this.offset, handle };
    await current.handle.close().catch(() => undefined);
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    readersOf.get(this.options.dir)?.delete(this as PartitionReader<unknown>);
    if (readersOf.get(this.options.dir)?.size === 0) readersOf.delete(this.options.dir);
    this.wakeUp?.();
    await this.reading;
    const s = this.segment;
    this.segment = undefined;
    await s?.handle.close();
  }
}
