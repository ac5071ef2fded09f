/** The HTTP ingest log on real files: segments, reading across them, trimming on committed positions, the old layout. */
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors/index.js';
import {
  legacyFileOf,
  listSegments,
  PartitionAppender,
  PartitionReader,
  segmentName,
  type LogEntry,
} from '../../../src/processing/connectors/ingest-log.js';

type Value = { i: number; pad: string };
const SEGMENT_BYTES = 1024;

/** Entries of ids `from..from+n-1`: each line is about 60 bytes, so a 1 KiB segment holds about 17. */
const entries = (from: number, n: number): LogEntry[] =>
  Array.from({ length: n }, (_, k) => ({ raw: JSON.stringify({ i: from + k, pad: 'x'.repeat(20) }) }));
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, k) => from + k);

describe('ingest log segments', () => {
  let root: string;
  let dir: string;
  const open: { close(): Promise<void> }[] = [];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sf-ingest-log-'));
    dir = join(root, 'p0');
  });
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
    await rm(root, { recursive: true, force: true });
  });

  async function appender(segmentBytes = SEGMENT_BYTES, sync = false) {
    const a = await PartitionAppender.open({ dir, sync, segmentBytes });
    open.push(a);
    return a;
  }
  function reader(offset?: number, pollMs = 20) {
    const r = new PartitionReader<Value>({ dir, partition: 0, offset, pollMs });
    open.push(r);
    return r;
  }
  /** Appends `batches` requests of `per` entries; resolves with the offset after each. */
  async function fill(a: PartitionAppender, batches: number, per = 3, from = 0): Promise<number[]> {
    const offsets: number[] = [];
    for (let b = 0; b < batches; b++) offsets.push(await a.append(entries(from + b * per, per), 1));
    return offsets;
  }
  /** Reads everything there is (in batches of `max`) and the position after it. */
  async function drain(r: PartitionReader<Value>, max = 7): Promise<{ ids: number[]; offset: number }> {
    const got: number[] = [];
    for (;;) {
      const batch = await r.read(max, 0);
      got.push(...batch.records.map((x) => x.value.i));
      expect(batch.bad).toEqual([]);
      if (batch.records.length === 0) return { ids: got, offset: (batch.position as { offset: number }).offset };
    }
  }
  /** Segment names and sizes on disk. */
  async function segments(): Promise<{ base: number; size: number }[]> {
    const bases = await listSegments(dir);
    return Promise.all(bases.map(async (base) => ({ base, size: (await stat(join(dir, segmentName(base)))).size })));
  }

  it('rolls to segments named by their logical offset, and reads them back in order from 0 or from inside a later one', async () => {
    const a = await appender();
    const offsets = await fill(a, 40); // 120 entries, about 7 KiB.
    const segs = await segments();
    expect(segs.length).toBeGreaterThanOrEqual(5);
    expect(segs[0]!.base).toBe(0);
    expect(await readdir(dir)).toEqual(segs.map((s) => segmentName(s.base)));
    for (let k = 0; k + 1 < segs.length; k++) {
      // Each segment starts where the one before ends, and was rolled once it held segmentBytes (one append more).
      expect(segs[k + 1]!.base).toBe(segs[k]!.base + segs[k]!.size);
      expect(segs[k]!.size).toBeGreaterThanOrEqual(SEGMENT_BYTES);
      expect(segs[k]!.size).toBeLessThan(SEGMENT_BYTES + 3 * 70);
    }
    const last = segs.at(-1)!;
    expect(a.end).toBe(last.base + last.size);
    expect(offsets.at(-1)).toBe(a.end);

    // Positions are logical: the concatenated segments are the log, and every offset returned ends a line there.
    const whole = Buffer.concat(await Promise.all(segs.map((s) => readFile(join(dir, segmentName(s.base))))));
    expect(whole.length).toBe(a.end);
    for (const o of offsets) expect(whole[o - 1]).toBe(10);

    expect(await drain(reader())).toEqual({ ids: ids(120), offset: a.end });
    expect(await drain(reader(0), 1000)).toEqual({ ids: ids(120), offset: a.end });

    // From a position in the middle of a later segment (after request 30: ids 90..).
    const mid = offsets[29]!;
    const holder = segs.findLast((s) => s.base <= mid)!;
    expect(holder.base).toBeGreaterThan(0);
    expect(mid).toBeGreaterThan(holder.base);
    expect(mid).toBeLessThan(holder.base + holder.size);
    expect((await drain(reader(mid))).ids).toEqual(ids(30, 90));
    // From exactly a segment boundary.
    const boundary = segs[2]!.base;
    const expectedFrom = whole.subarray(0, boundary).toString().split('\n').length - 1;
    expect((await drain(reader(boundary))).ids).toEqual(ids(120 - expectedFrom, expectedFrom));
  });

  it('a waiting reader follows the appender into new segments', async () => {
    const a = await appender(200);
    const r = reader(undefined, 10_000); // No polling: in-process wake-ups only.
    const got: number[] = [];
    const reading = (async () => {
      while (got.length < 60) got.push(...(await r.read(100, 5000)).records.map((x) => x.value.i));
    })();
    for (let b = 0; b < 20; b++) {
      await a.append(entries(b * 3, 3), 1);
      await new Promise((ok) => setTimeout(ok, 2));
    }
    await reading;
    expect(got).toEqual(ids(60));
    expect((await listSegments(dir)).length).toBeGreaterThan(5);
  });

  it('committed(p) deletes the segments that end at or before p, keeps the one holding p, and reading goes on', async () => {
    const a = await appender();
    const offsets = await fill(a, 40);
    const before = await segments();
    const p = offsets[29]!; // Inside a later segment.
    const holder = before.findLast((s) => s.base <= p)!;

    const r = reader();
    const first: number[] = [];
    while (first.length < 90) first.push(...(await r.read(90 - first.length, 0)).records.map((x) => x.value.i));
    expect(first).toEqual(ids(90));
    await r.committed({ offset: p });

    const after = await segments();
    expect(after.map((s) => s.base)).toEqual(before.filter((s) => s.base >= holder.base).map((s) => s.base));
    expect(after[0]!.base).toBe(holder.base);
    expect(after.length).toBeLessThan(before.length);
    // The same reader goes on; a reader reopened at the committed position reads the same.
    expect((await drain(r)).ids).toEqual(ids(30, 90));
    expect((await drain(reader(p))).ids).toEqual(ids(30, 90));
    // Appending goes on, into the kept segments and new ones.
    await fill(a, 10, 3, 120);
    expect((await drain(reader(p))).ids).toEqual(ids(60, 90));
    // A reader with no position starts at the first segment kept; one at a trimmed position fails clearly.
    const fromStart = await drain(reader());
    expect(fromStart.ids[0]).toBeGreaterThan(0);
    expect(fromStart.ids.at(-1)).toBe(149);
    await expect(reader(0).read(10, 0)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(reader(offsets[0]!).read(10, 0)).rejects.toThrow(/was trimmed: the log starts at/);
  });

  it('a reader that stopped exactly at the end of a segment does not keep it from being trimmed', async () => {
    const a = await appender();
    await fill(a, 40);
    const [first, second] = await segments();
    const inFirst = (await readFile(join(dir, segmentName(first!.base)), 'utf8')).split('\n').length - 1;
    const r = reader();
    const batch = await r.read(inFirst, 0);
    expect(batch.records).toHaveLength(inFirst);
    expect(batch.position).toEqual({ offset: second!.base });
    await r.committed(batch.position);
    expect((await listSegments(dir))[0]).toBe(second!.base);
    expect((await drain(r)).ids).toEqual(ids(120 - inFirst, inFirst));
  });

  it('committed at the end of the log keeps the segment being appended to', async () => {
    const a = await appender();
    await fill(a, 40);
    const r = reader();
    const { offset } = await drain(r, 1000);
    expect(offset).toBe(a.end);
    await r.committed({ offset });
    const left = await segments();
    expect(left).toHaveLength(1);
    expect(left[0]!.base + left[0]!.size).toBe(a.end);
    // Also when no reader holds it: a reader reopened at the end commits before it reads.
    await r.close();
    const reopened = reader(offset);
    await reopened.committed({ offset });
    expect(await segments()).toEqual(left);
    await a.append(entries(500, 1), 1);
    expect((await drain(reopened)).ids).toEqual([500]);
    expect((await drain(reader(offset))).ids).toEqual([500]);
  });

  it('keeps segments another reader of this process still reads; committed after close does nothing', async () => {
    const a = await appender();
    const offsets = await fill(a, 40);
    const all = await segments();
    const lagging = reader();
    expect((await lagging.read(5, 0)).records.map((x) => x.value.i)).toEqual(ids(5)); // Holds segment 0.
    const r = reader();
    const { offset } = await drain(r, 1000);
    await r.committed({ offset });
    expect(await segments()).toEqual(all);
    // The lagging reader reads on through every segment.
    expect((await drain(lagging)).ids).toEqual(ids(115, 5));
    await lagging.close();

    await r.close();
    await r.committed({ offset });
    expect(await segments()).toEqual(all);

    const again = reader(offsets[20]);
    await again.read(1, 0);
    await again.committed({ offset: offsets[21]! });
    expect((await segments())[0]!.base).toBeGreaterThan(0);
    expect((await segments()).length).toBeLessThan(all.length);
  });

  it('trims safely while appends, reads and commits run at once', async () => {
    const a = await appender(256);
    const r = reader(undefined, 5);
    const got: number[] = [];
    const commits: Promise<void>[] = [];
    let committed = 0;
    const reading = (async () => {
      while (got.length < 600) {
        const batch = await r.read(13, 1000);
        got.push(...batch.records.map((x) => x.value.i));
        committed = (batch.position as { offset: number }).offset;
        commits.push(r.committed(batch.position)); // Not awaited, like the runner.
      }
    })();
    // Readers reopened now and then at the last committed position (as a restarted job would): never fail.
    const reopening = (async () => {
      for (let k = 0; k < 20; k++) {
        await new Promise((ok) => setTimeout(ok, 3));
        const x = reader(committed);
        const batch = await x.read(5, 0);
        expect(batch.bad).toEqual([]);
        await x.close();
      }
    })();
    await Promise.all(ids(200).map((b) => a.append(entries(b * 3, 3), 1)));
    await Promise.all([reading, reopening]);
    await Promise.all(commits);
    expect(got).toEqual(ids(600));
    const left = await segments();
    expect(left.length).toBeLessThanOrEqual(3);
    expect(left.at(-1)!.base + left.at(-1)!.size).toBe(a.end);
  });

  it('cuts a torn last line off the last segment when an appender reopens the log', async () => {
    const a = await appender();
    await fill(a, 40);
    const end = a.end;
    await a.close();
    open.splice(open.indexOf(a), 1);
    const last = (await listSegments(dir)).at(-1)!;
    await appendFile(join(dir, segmentName(last)), '{"t":1,"v":{"i":');
    const r = reader();
    expect((await drain(r)).offset).toBe(end); // The torn line is never read.
    const b = await appender();
    expect(b.end).toBe(end);
    expect(await b.append(entries(120, 1), 1)).toBeGreaterThan(end);
    expect((await drain(r)).ids).toEqual([120]);
  });

  it('reads a log of the old layout (one p<N>.ndjson file) in place, and the first appender migrates it', async () => {
    const legacy = legacyFileOf(dir);
    expect(legacy).toBe(join(root, 'p0.ndjson'));
    const old = entries(0, 50).map((e) => `{"t":1,"v":${(e as { raw: string }).raw}}\n`).join('');
    await writeFile(legacy, old + '{"t":1,"v":{"i":'); // With a torn last line.
    const oldSize = Buffer.byteLength(old);
    // A checkpoint position of the old layout (a byte offset in the file) keeps its meaning.
    const oldPosition = Buffer.byteLength(old.split('\n').slice(0, 20).join('\n') + '\n');

    const inPlace = reader();
    expect(await drain(inPlace)).toEqual({ ids: ids(50), offset: oldSize });
    const atOld = reader(oldPosition);
    expect((await drain(atOld)).ids).toEqual(ids(30, 20));
    await atOld.close();

    const a = await appender();
    await expect(stat(legacy)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await listSegments(dir)).toEqual([0]);
    expect(a.end).toBe(oldSize); // The torn line was cut off.
    await fill(a, 40, 3, 50); // Rolls well past the old file.
    expect((await listSegments(dir)).length).toBeGreaterThan(3);
    // The reader that opened the old file goes on into the new segments.
    expect((await drain(inPlace)).ids).toEqual(ids(120, 50));
    const atOldAgain = reader(oldPosition);
    expect((await drain(atOldAgain)).ids).toEqual(ids(150, 20));
    await atOldAgain.close();
    // The migrated file is trimmed like any segment (once no reader of this process holds it).
    const r = reader(a.end);
    await r.read(1, 0);
    await r.committed({ offset: a.end });
    expect(await listSegments(dir)).toHaveLength(1);
  });
});
