/** The HTTP ingest source: a real endpoint on 127.0.0.1, its partition logs in a temporary folder. */
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStateBackend, pipeline, type Checkpoint, type Sink } from '../../../src/index.js';
import { bearerHeader, httpIngest, signBody, type HttpIngestSource } from '../../../src/processing/connectors/index.js';
import type { SourceReader } from '../../../src/processing/connectors/types.js';
import { BusyError, ClosedError, ConfigError } from '../../../src/errors/index.js';
import { listSegments } from '../../../src/processing/connectors/ingest-log.js';
import { sourceConformance } from '../connector-conformance.js';

const secret = randomBytes(32);
const auth = { authorization: bearerHeader(secret) };

async function post(url: string, body: string, headers: Record<string, string> = auth) {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', ...headers } });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** The first segment of a partition log (`<logDir>/p<N>/<offset, 20 digits>.log`). */
const SEGMENT0 = '00000000000000000000.log';

const lines = (ids: number[]) => ids.map((i) => JSON.stringify({ i }) + '\n').join('');

sourceConformance<{ i: number }>('http ingest', {
  idOf: (v) => v.i,
  async create({ count, bad }) {
    const logDir = await mkdtemp(join(tmpdir(), 'sf-ingest-'));
    const source = httpIngest<{ i: number }>({ logDir, secret, partitions: 2, badLines: 'dead-letter' });
    const url = await source.listen();
    // Requests of up to 4 lines, spread over the partitions; the first `badLines` requests also carry a bad line.
    const send = async (from: number, n: number, badLines = 0) => {
      for (let i = from, req = 0; i < from + n || req < badLines; i += 4, req++) {
        const ids = Array.from({ length: Math.max(0, Math.min(4, from + n - i)) }, (_, k) => i + k);
        expect((await post(url, lines(ids) + (req < badLines ? 'not json\n' : ''))).status).toBe(200);
      }
    };
    await send(0, count, bad);
    return {
      source,
      append: (from, n) => send(from, n).then(() => undefined),
      async cleanup() {
        await source.close();
        await rm(logDir, { recursive: true, force: true });
      },
    };
  },
});

// The same over segments of 128 bytes: every split rolls many times, positions fall on and between segment bounds.
sourceConformance<{ i: number }>('http ingest (small segments)', {
  idOf: (v) => v.i,
  async create({ count, bad }) {
    const logDir = await mkdtemp(join(tmpdir(), 'sf-ingest-'));
    const source = httpIngest<{ i: number }>({ logDir, secret, partitions: 2, badLines: 'dead-letter', segmentBytes: 128 });
    const url = await source.listen();
    const send = async (from: number, n: number, badLines = 0) => {
      for (let i = from, req = 0; i < from + n || req < badLines; i += 3, req++) {
        const ids = Array.from({ length: Math.max(0, Math.min(3, from + n - i)) }, (_, k) => i + k);
        expect((await post(url, lines(ids) + (req < badLines ? 'not json\n' : ''))).status).toBe(200);
      }
    };
    await send(0, count, bad);
    return {
      source,
      append: (from, n) => send(from, n).then(() => undefined),
      async cleanup() {
        await source.close();
        await rm(logDir, { recursive: true, force: true });
      },
    };
  },
});

describe('http ingest source', () => {
  let dir: string;
  let source: HttpIngestSource<unknown> | undefined;
  const readers: SourceReader<unknown>[] = [];
  afterEach(async () => {
    for (const r of readers.splice(0)) await r.close();
    await source?.close();
    source = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  async function start(options: Partial<Parameters<typeof httpIngest>[0]> = {}) {
    dir ??= await mkdtemp(join(tmpdir(), 'sf-ingest-'));
    source = httpIngest({ logDir: dir, secret, ...options });
    return source.listen();
  }
  async function readAll(s: HttpIngestSource<unknown>, from?: { offset: number }) {
    const reader = await s.open((await s.splits(1))[0]!, from);
    readers.push(reader);
    return reader.read(1000, 0);
  }

  it('refuses requests without the cluster secret, and takes a bearer token or an HMAC signature', async () => {
    const url = await start();
    const body = lines([1]);
    const none = await post(url, body, {});
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(/Authorization: Bearer/) });
    expect((await post(url, body, { authorization: bearerHeader(randomBytes(32)) })).status).toBe(401);
    expect((await post(url, body, signBody(randomBytes(32), body))).body.error.message).toMatch(/signature does not match/);
    const stale = await post(url, body, signBody(secret, body, Date.now() - 10 * 60_000));
    expect(stale.body.error.message).toMatch(/minutes from the server's clock/);
    expect((await post(url, body, signBody(secret, body + 'tampered'))).status).toBe(401);
    expect(await post(url, body, signBody(secret, body))).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(await post(url, lines([2]))).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect((await readAll(source!)).records.map((r) => r.value)).toEqual([{ i: 1 }, { i: 2 }]);
  });

  it('answers bad requests with a clear JSON error and keeps nothing of them', async () => {
    const url = await start({ maxRequestBytes: 1000, maxLineBytes: 100 });
    const notJson = await post(url, lines([1]) + '{"a":\n' + lines([2]));
    expect(notJson).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', details: { line: 2 } } } });
    expect(notJson.body.error.message).toMatch(/line 2: not JSON.*nothing in this request was kept/);
    const longLine = await post(url, JSON.stringify({ s: 'x'.repeat(200) }));
    expect(longLine).toMatchObject({ status: 413, body: { error: { code: 'TOO_LARGE', details: { line: 1 } } } });
    const big = await post(url, lines(Array.from({ length: 200 }, (_, i) => i)));
    expect(big).toMatchObject({ status: 413, body: { error: { code: 'TOO_LARGE', details: { limit: 1000 } } } });
    expect((await fetch(url.replace('/ingest', '/other'), { method: 'POST', headers: auth })).status).toBe(404);
    const get = await fetch(url, { headers: auth });
    expect(get.status).toBe(405);
    expect(await get.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } });
    expect(await post(url, lines([7]))).toMatchObject({ status: 200 });
    expect((await readAll(source!)).records.map((r) => r.value)).toEqual([{ i: 7 }]);
  });

  it('acknowledges only what is in the log: a new endpoint on the same folder resumes from a position', async () => {
    const url = await start({ sync: 'device' });
    const ack = await post(url, lines([1, 2, 3]));
    expect(ack.body).toMatchObject({ accepted: 3, partition: 0, offset: expect.any(Number) });
    const log = await readFile(join(dir, 'p0', SEGMENT0), 'utf8');
    expect(log.trim().split('\n').map((l) => JSON.parse(l).v)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
    expect(Buffer.byteLength(log)).toBe(ack.body.offset);
    const first = await readAll(source!);
    await source!.close();
    // A process killed mid-append leaves a torn last line: it is never read, and cut off at the next start.
    await appendFile(join(dir, 'p0', SEGMENT0), '{"t":1,"v":{"i":');
    const url2 = await start();
    expect((await post(url2, lines([4]))).status).toBe(200);
    const rest = await readAll(source!, first.position as { offset: number });
    expect(rest.records.map((r) => r.value)).toEqual([{ i: 4 }]);
    expect(rest.bad).toEqual([]);
  });

  it('a waiting reader sees a request as soon as it is acknowledged', async () => {
    const url = await start({ pollMs: 10_000 }); // No polling: the in-process wake-up must do it.
    const reader = await source!.open((await source!.splits(1))[0]!);
    readers.push(reader);
    const pending = reader.read(10, 5000);
    const started = Date.now();
    await post(url, lines([9]));
    const batch = await pending;
    expect(batch.records.map((r) => r.value)).toEqual([{ i: 9 }]);
    expect(Date.now() - started).toBeLessThan(2000);
  });
  it('a reader in another process than the endpoint finds appends by polling the log', async () => {
    await start();
    const [split] = await source!.splits(1);
    await source!.close(); // The appends below stand for another process's endpoint.
    const other = httpIngest({ logDir: dir, secret, pollMs: 20 });
    const reader = await other.open(split!);
    readers.push(reader);
    const pending = reader.read(10, 5000);
    await appendFile(join(dir, 'p0', SEGMENT0), '{"t":1,"v":{"i":5}}\n');
    expect((await pending).records.map((r) => r.value)).toEqual([{ i: 5 }]);
  });

  it('closing a reader ends a read that waits, and later reads fail with ClosedError', async () => {
    await start();
    const reader = await source!.open((await source!.splits(1))[0]!);
    const waiting = reader.read(10, 10_000);
    const started = Date.now();
    await reader.close();
    expect((await waiting).records).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(reader.read(10, 0)).rejects.toBeInstanceOf(ClosedError);
  });

  it('one endpoint per log folder: a second is refused with BusyError; a lock left by a dead process is taken over', async () => {
    const url = await start();
    const second = httpIngest({ logDir: dir, secret });
    await expect(second.listen()).rejects.toBeInstanceOf(BusyError);
    // A port already taken fails the start and leaves the folder unlocked.
    await source!.close();
    const port = Number(new URL(url).port);
    const blocker = httpIngest({ logDir: join(dir, 'other'), secret, port });
    await blocker.listen();
    await expect(httpIngest({ logDir: dir, secret, port }).listen()).rejects.toThrow(/EADDRINUSE/);
    await blocker.close();
    await writeFile(join(dir, 'writer.pid'), '999999999');
    await start();
    expect(await post(source!.url!, lines([1]))).toMatchObject({ status: 200 });
  });

  it('keeps each partition log in segments of segmentBytes, and trims those a committed position is past', async () => {
    const url = await start({ segmentBytes: 512 });
    const offsets: number[] = [];
    for (let b = 0; b < 40; b++) offsets.push((await post(url, lines([b * 3, b * 3 + 1, b * 3 + 2]))).body.offset as number);
    const p0 = join(dir, 'p0');
    const bases = await listSegments(p0);
    expect(bases.length).toBeGreaterThanOrEqual(5);
    expect(await readdir(p0)).toEqual(bases.map((b) => `${String(b).padStart(20, '0')}.log`));
    for (let k = 0; k + 1 < bases.length; k++) {
      const size = (await stat(join(p0, `${String(bases[k]).padStart(20, '0')}.log`))).size;
      expect(bases[k + 1]).toBe(bases[k]! + size); // Named by logical offset: acknowledged offsets go on across them.
    }
    const all = Array.from({ length: 120 }, (_, i) => ({ i }));

    // A reader that has read up to a position inside a later segment is told it is committed.
    const [split] = await source!.splits(1);
    const reader = await source!.open(split!);
    readers.push(reader);
    const got: unknown[] = [];
    while (got.length < 90) got.push(...(await reader.read(90 - got.length, 0)).records.map((r) => r.value));
    expect(got).toEqual(all.slice(0, 90));
    const p = offsets[29]!;
    const holder = bases.findLast((b) => b <= p)!;
    expect(holder).toBeGreaterThan(0);
    await reader.committed!({ offset: p });
    expect(await listSegments(p0)).toEqual(bases.filter((b) => b >= holder));

    // Reading goes on; a reader reopened at the committed position (as a restarted job would) reads the rest.
    expect((await reader.read(1000, 0)).records.map((r) => r.value)).toEqual(all.slice(90));
    expect((await readAll(source!, { offset: p })).records.map((r) => r.value)).toEqual(all.slice(90));
    // A new endpoint on the folder appends after the last segment, offsets going on.
    await source!.close();
    const url2 = await start({ segmentBytes: 512 });
    const ack = await post(url2, lines([120]));
    expect(ack.body.offset).toBeGreaterThan(offsets.at(-1)!);
    expect((await reader.read(10, 1000)).records.map((r) => r.value)).toEqual([{ i: 120 }]);
    const after = await readAll(source!, { offset: p });
    expect(after.records.map((r) => r.value)).toEqual([...all.slice(90), { i: 120 }]);
    expect(after.position).toEqual({ offset: ack.body.offset });
  });

  it('reads and migrates a log of the old layout (one p<N>.ndjson file per partition)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-ingest-'));
    const old = [1, 2, 3].map((i) => `{"t":1,"v":{"i":${i}}}\n`).join('');
    await writeFile(join(dir, 'p0.ndjson'), old);
    const oldPosition = Buffer.byteLength(old.split('\n')[0]! + '\n'); // A checkpoint of the old version: after {i:1}.
    // A split planned by the old version names the file; it still opens, and reads the old file in place.
    const oldSplit = { id: 'http-ingest(/ingest)/p0', spec: { file: join(dir, 'p0.ndjson'), partition: 0 } };
    const reader = await httpIngest({ logDir: dir, secret }).open(oldSplit, { offset: oldPosition });
    readers.push(reader);
    expect((await reader.read(10, 0)).records.map((r) => r.value)).toEqual([{ i: 2 }, { i: 3 }]);

    const url = await start({ segmentBytes: 64 });
    await expect(stat(join(dir, 'p0.ndjson'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(join(dir, 'p0'))).toEqual(['00000000000000000000.log']);
    expect(await readFile(join(dir, 'p0', SEGMENT0), 'utf8')).toBe(old);
    expect((await post(url, lines([4, 5]))).body.offset).toBeGreaterThan(Buffer.byteLength(old));
    expect((await post(url, lines([6]))).status).toBe(200);
    expect((await listSegments(join(dir, 'p0'))).length).toBeGreaterThan(1);
    expect((await reader.read(10, 1000)).records.map((r) => r.value)).toEqual([{ i: 4 }, { i: 5 }, { i: 6 }]);
    const rest = await readAll(source!, { offset: oldPosition });
    expect(rest.records.map((r) => r.value)).toEqual([2, 3, 4, 5, 6].map((i) => ({ i })));
  });

  it('refuses a segmentBytes that is not a positive integer', () => {
    for (const segmentBytes of [0, -1, 1.5, Number.NaN]) {
      expect(() => httpIngest({ logDir: '/tmp/x', secret, segmentBytes })).toThrow(ConfigError);
    }
  });

  it('a job trims the log as its checkpoints commit, and resumes exactly after a stop', async () => {
    const url = await start({ segmentBytes: 512 });
    const p0 = join(dir, 'p0');
    const seen: number[] = [];
    const sink: Sink<{ i: number }> = {
      name: 'collect',
      idempotent: false,
      async open() {
        return {
          async write(records) {
            seen.push(...records.map((r) => r.i));
          },
          async flush() {},
          async close() {},
        };
      },
    };
    const state = new MemoryStateBackend();
    const job = () =>
      pipeline('ingest-trim')
        .from(source! as HttpIngestSource<{ i: number }>)
        .map((v) => v)
        .to(sink)
        .start({ mode: 'stream', state, checkpointInterval: 30, trigger: 'interval=10ms,count=20', readBatch: 16 });
    let end = 0;
    const send = async (from: number, to: number) => {
      for (let i = from; i < to; i += 4) {
        const ack = await post(url, lines([i, i + 1, i + 2, i + 3]));
        expect(ack.status).toBe(200);
        end = ack.body.offset as number;
      }
    };
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

    const first = job();
    const checkpoints: Checkpoint[] = [];
    first.on('checkpoint', (cp: Checkpoint) => checkpoints.push(cp));
    await send(0, 400);
    expect(end).toBeGreaterThan(20 * 512); // More than 20 segments were written.
    await vi.waitFor(() => expect(seen.length).toBe(400), { timeout: 10_000 });
    // Once a checkpoint covers everything, only the segment being appended to is left.
    await vi.waitFor(async () => expect(await listSegments(p0)).toHaveLength(1), { timeout: 10_000 });
    const [kept] = await listSegments(p0);
    expect(kept! + (await stat(join(p0, `${String(kept).padStart(20, '0')}.log`))).size).toBe(end);
    expect(checkpoints.length).toBeGreaterThan(0);
    const stopped = await first.stop();
    expect(stopped.state).toBe('stopped');

    await send(400, 480);
    const second = job();
    await vi.waitFor(() => expect(seen.length).toBe(480), { timeout: 10_000 });
    await new Promise((ok) => setTimeout(ok, 200)); // Nothing read twice shows up late.
    await second.stop();
    expect(seen).toEqual(range(0, 480));
  });
});
