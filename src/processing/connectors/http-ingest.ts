/**
 * HTTP ingest: an unbounded source fed by `POST`s of NDJSON (one JSON value per line).
 *
 * **What a 2xx means.** Every accepted line is appended to a partition log on local disk (see `ingest-log.ts`)
 * before the answer is sent, so an acknowledged record survives kill -9 of the process (it is in the OS page cache,
 * like storage nodes' `process` durability); with `sync: 'device'` each request is also flushed to the device before
 * the answer, for power-loss safety. Positions are byte offsets in those logs, so a checkpoint's position replays
 * exactly the records after it. A request is all or nothing: an error answer means none of its lines were kept, and
 * the client should send it again (a client that got no answer at all may send it twice: at-least-once).
 *
 * **Auth.** The cluster secret, as `Authorization: Bearer <hex>` or an HMAC signature (see `signing.ts`).
 *
 * **Errors** are JSON `{ "error": { "code", "message", "details"? } }`: 401 no or wrong credentials, 404 another
 * path, 405 not POST, 413 a request or a line over its limit, 400 a line that is not JSON (its number is in
 * `details.line`; with `badLines: 'dead-letter'` such lines are kept as dead letters instead and the request
 * succeeds), 503 while stopping.
 *
 * **Trimming.** A partition log is a folder of segments (`<logDir>/p<N>/<offset>.log`, rolled at `segmentBytes`).
 * When a checkpoint commits, the job tells each reader its committed position (`SourceReader.committed`) and the
 * segments wholly before it are deleted: the disk holds what the last checkpoint has not covered, plus up to a segment
 * per partition. So one job consumes a log folder; a second job reading the same folder would lose what the first
 * trimmed. Logs of the old layout (`<logDir>/p<N>.ndjson`) are read, and migrated to segments by the endpoint.
 *
 * The endpoint lives in the process that calls `listen()` (or `splits()`, which listens: the process that plans the
 * job hosts it); readers open the log files, so they must run on the same host.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClusterDir } from '../../config/cluster-dir.js';
import { BusyError, ConfigError } from '../../errors/index.js';
import { DEFAULT_SEGMENT_BYTES, PartitionAppender, PartitionReader, type LogEntry } from './ingest-log.js';
import { checkBearer, checkSignature } from './signing.js';
import type { Json, Source, SourceReader, SourceSplit } from './types.js';

/**
 * Options of {@link httpIngest}.
 *
 * @example
 * ```ts
 * import { httpIngest, type HttpIngestOptions } from 'shardflow';
 * const options: HttpIngestOptions<{ user: string; at: number }> = {
 *   logDir: '.shardflow/ingest/clicks', clusterDir: '.shardflow', port: 8080, partitions: 4,
 *   badLines: 'dead-letter', eventTime: (c) => c.at,
 * };
 * const ingest = httpIngest(options);
 * ```
 */
export interface HttpIngestOptions<T> {
  /** Folder of the partition logs (created if missing). */
  logDir: string;
  /** The cluster secret; or give `clusterDir` to read it from a cluster directory. */
  secret?: Uint8Array;
  clusterDir?: string;
  /** Default 127.0.0.1: expose it on purpose. */
  host?: string;
  /** Default 0: any free port (see `url` after `listen()`). */
  port?: number;
  /** Default `/ingest`. */
  path?: string;
  /** Partition logs, one split each (default 1). Requests are spread over them round-robin. */
  partitions?: number;
  /** Default 8 MiB. */
  maxRequestBytes?: number;
  /** Default 1 MiB. */
  maxLineBytes?: number;
  /** `reject` (default): a request with a bad line gets 400 and nothing is kept. `dead-letter`: bad lines are kept
   * and come out as BadRecords. */
  badLines?: 'reject' | 'dead-letter';
  /** `process` (default): acknowledged once written to the OS; `device`: once flushed to the device. */
  sync?: 'process' | 'device';
  /** Event time of a record, when its value carries one. */
  eventTime?: (value: T) => number | undefined;
  /** How often a reader in another process looks for appends (default 25 ms). */
  pollMs?: number;
  /**
   * A partition log rolls to a new segment file once its last one holds this many bytes (default 64 MiB). Committed
   * checkpoints delete whole segments, so this is also how much a partition keeps beyond what is not yet committed.
   */
  segmentBytes?: number;
}

interface HttpFailure {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * An HTTP ingest source.
 *
 * @example
 * ```ts
 * import { httpIngest } from 'shardflow';
 * const ingest = httpIngest<{ user: string }>({ logDir: '.shardflow/ingest/clicks', clusterDir: '.shardflow' });
 * const url = await ingest.listen();
 * // curl -H "Authorization: Bearer $(cat .shardflow/secret)" --data-binary @clicks.ndjson $url
 * const [split] = await ingest.splits(1);
 * const reader = await ingest.open(split!);
 * const batch = await reader.read(100, 500);
 * ```
 */
export function httpIngest<T = unknown>(options: HttpIngestOptions<T>): HttpIngestSource<T> {
  return new HttpIngestSource<T>(options);
}

/**
 * The source {@link httpIngest} returns: an unbounded {@link Source} (one split per partition log) that also owns
 * the HTTP endpoint appending to those logs. `splits()` starts the endpoint, so running a pipeline from it listens;
 * {@link HttpIngestSource.listen} gives its URL and {@link HttpIngestSource.close} stops it. See the module
 * documentation for what an answer means, auth and errors.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { httpIngest, pipeline, collect } from 'shardflow';
 * const secret = randomBytes(32); // or clusterDir: '.shardflow' for the cluster's secret
 * const ingest = httpIngest<{ user: string }>({ logDir: 'tmp/ingest', secret });
 * const out = collect<{ user: string }>();
 * const job = pipeline('clicks').from(ingest).to(out.sink).start();
 * const url = await ingest.listen();
 * await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${secret.toString('hex')}` }, body: '{"user":"u1"}\n' });
 * await new Promise((resolve) => setTimeout(resolve, 200));
 * await job.stop();
 * await ingest.close();
 * out.values; // [{ user: 'u1' }]
 * ```
 */
export class HttpIngestSource<T = unknown> implements Source<T> {
  readonly bounded = false;
  readonly name: string;
  private readonly dir: string;
  private readonly path: string;
  private readonly partitions: number;
  private readonly maxRequestBytes: number;
  private readonly maxLineBytes: number;
  private readonly segmentBytes: number;
  private server: Server | undefined;
  private listening: Promise<string> | undefined;
  private appenders: PartitionAppender[] = [];
  private next = 0;
  private stopping = false;
  private address: string | undefined;

  constructor(private readonly options: HttpIngestOptions<T>) {
    this.dir = resolve(options.logDir);
    this.path = options.path ?? '/ingest';
    this.partitions = options.partitions ?? 1;
    this.maxRequestBytes = options.maxRequestBytes ?? 8 * 1024 * 1024;
    this.maxLineBytes = options.maxLineBytes ?? 1024 * 1024;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(this.segmentBytes) || this.segmentBytes < 1) {
      throw new ConfigError(`segmentBytes must be a positive integer, not ${options.segmentBytes}`);
    }
    if (!Number.isInteger(this.partitions) || this.partitions < 1 || this.partitions > 1024) {
      throw new ConfigError(`partitions must be an integer from 1 to 1024, not ${options.partitions}`);
    }
    if (!this.path.startsWith('/')) throw new ConfigError(`path must start with "/", not ${JSON.stringify(this.path)}`);
    this.name = `http-ingest(${this.path})`;
  }

  /** The endpoint's URL once listening. */
  get url(): string | undefined {
    return this.address;
  }

  /** Starts the endpoint (once; later calls return the same URL). */
  listen(): Promise<string> {
    this.listening ??= this.start().catch((err: unknown) => {
      this.listening = undefined;
      throw err;
    });
    return this.listening;
  }

  private async start(): Promise<string> {
    const secret = this.options.secret ?? (this.options.clusterDir ? await new ClusterDir(this.options.clusterDir).readSecret() : undefined);
    if (!secret) throw new ConfigError('http ingest needs the cluster secret: give secret or clusterDir');
    await mkdir(this.dir, { recursive: true });
    await this.lock();
    try {
      const sync = this.options.sync === 'device';
      const appenders = await Promise.all(
        Array.from({ length: this.partitions }, (_, i) =>
          PartitionAppender.open({ dir: this.dirOf(i), sync, segmentBytes: this.segmentBytes }),
        ),
      );
      this.appenders = appenders;
      const server = createServer((req, res) => {
        this.handle(secret, req, res).catch((err: unknown) =>
          this.fail(res, { status: 500, code: 'INTERNAL', message: (err as Error).message }),
        );
      });
      server.keepAliveTimeout = 5_000;
      await new Promise<void>((ok, bad) => {
        server.once('error', bad);
        server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => ok());
      });
      this.server = server;
    } catch (err) {
      await Promise.all(this.appenders.map((a) => a.close().catch(() => undefined)));
      this.appenders = [];
      await rm(this.lockFile, { force: true });
      throw err;
    }
    const server = this.server;
    const addr = server.address();
    if (typeof addr !== 'object' || addr === null) throw new ConfigError('http ingest got no address');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.address = `http://${host}:${addr.port}${this.path}`;
    return this.address;
  }

  /** Stops the endpoint; readers already open keep reading the logs. */
  async close(): Promise<void> {
    if (!this.listening) return;
    this.stopping = true;
    await this.listening.catch(() => undefined);
    const server = this.server;
    if (server) {
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeIdleConnections();
      });
    }
    await Promise.all(this.appenders.map((a) => a.close()));
    this.appenders = [];
    await rm(this.lockFile, { force: true });
    this.listening = undefined;
    this.server = undefined;
    this.stopping = false;
  }

  async splits(_parallelism: number): Promise<SourceSplit[]> {
    await this.listen();
    return Array.from({ length: this.partitions }, (_, i) => ({
      id: `${this.name}/p${i}`,
      spec: { dir: this.dirOf(i), partition: i },
    }));
  }

  async open(split: SourceSplit, from?: Json): Promise<SourceReader<T>> {
    const spec = split.spec as { dir?: unknown; file?: unknown; partition?: unknown };
    // `file`: a split of the old layout (`<logDir>/p<N>.ndjson`), whose partition folder is `<logDir>/p<N>`.
    const dir = typeof spec?.dir === 'string' ? spec.dir : typeof spec?.file === 'string' ? spec.file.replace(/\.ndjson$/, '') : undefined;
    if (dir === undefined || typeof spec.partition !== 'number') {
      throw new ConfigError(`not an http ingest split: ${JSON.stringify(split)}`);
    }
    // No position: from the start of what the log keeps (the first segment not trimmed).
    const offset = (from as { offset?: unknown } | null | undefined)?.offset;
    if (offset !== undefined && (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0)) {
      throw new ConfigError(`not an http ingest position: ${JSON.stringify(from)}`);
    }
    return new PartitionReader<T>({
      dir,
      partition: spec.partition,
      offset,
      pollMs: this.options.pollMs ?? 25,
      eventTime: this.options.eventTime,
    });
  }

  private get lockFile(): string {
    return join(this.dir, 'writer.pid');
  }

  /** One endpoint appends to a log folder at a time: a second one (another process, or this one twice) is refused. */
  private async lock(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.lockFile, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number((await readFile(this.lockFile, 'utf8').catch(() => '')).trim());
      if (pid > 0 && isAlive(pid)) {
        throw new BusyError(`another http ingest endpoint (pid ${pid}) appends to ${this.dir}`, { details: { pid } });
      }
      await rm(this.lockFile, { force: true }); // Left by a process that died.
    }
    throw new BusyError(`cannot lock ${this.dir} for http ingest`);
  }

  /** A partition's log folder (its segments). */
  private dirOf(partition: number): string {
    return join(this.dir, `p${partition}`);
  }

  private async handle(secret: Uint8Array, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== this.path) return this.fail(res, { status: 404, code: 'NOT_FOUND', message: `POST NDJSON to ${this.path}` });
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return this.fail(res, { status: 405, code: 'METHOD_NOT_ALLOWED', message: `only POST is accepted at ${this.path}` });
    }
    if (this.stopping) return this.fail(res, { status: 503, code: 'UNAVAILABLE', message: 'the endpoint is stopping' });
    const bearer = checkBearer(secret, req.headers);
    if (bearer === 'wrong') return this.fail(res, { status: 401, code: 'AUTH_FAILED', message: 'wrong bearer token' });
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.maxRequestBytes) return this.tooLarge(res, declared);

    const body = await this.readBody(req);
    if (body === 'too-large') return this.tooLarge(res);
    if (bearer === 'absent') {
      const why = checkSignature(secret, req.headers, body);
      if (why) return this.fail(res, { status: 401, code: 'AUTH_FAILED', message: why });
    }

    const { entries, failure } = this.parse(body);
    if (failure) return this.fail(res, failure);
    const good = entries.filter((e) => 'raw' in e).length;
    const partition = this.next++ % this.partitions;
    const appender = this.appenders[partition];
    if (!appender) return this.fail(res, { status: 503, code: 'UNAVAILABLE', message: 'the endpoint is stopping' });
    const offset = entries.length > 0 ? await appender.append(entries, Date.now()) : undefined;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accepted: good, bad: entries.length - good, partition, ...(offset === undefined ? {} : { offset }) }));
  }

  /** Lines to entries; in `reject` mode the first bad line fails the whole request. */
  private parse(body: Buffer): { entries: LogEntry[]; failure?: HttpFailure } {
    const deadLetter = this.options.badLines === 'dead-letter';
    const entries: LogEntry[] = [];
    let start = 0;
    for (let line = 1; start < body.length; line++) {
      let end = body.indexOf(10, start);
      if (end < 0) end = body.length;
      const bytes = body.subarray(start, end);
      start = end + 1;
      const text = bytes.toString('utf8').replace(/\r$/, '');
      if (text.trim() === '') continue;
      let reason: string | undefined;
      let status = 400;
      if (bytes.length > this.maxLineBytes) {
        reason = `line of ${bytes.length} bytes exceeds the limit of ${this.maxLineBytes}`;
        status = 413;
      } else {
        try {
          JSON.parse(text);
        } catch (err) {
          reason = `not JSON: ${(err as Error).message}`;
        }
      }
      if (reason === undefined) {
        entries.push({ raw: text.trim() });
      } else if (deadLetter) {
        entries.push({ bad: text, reason });
      } else {
        return {
          entries: [],
          failure: {
            status,
            code: status === 413 ? 'TOO_LARGE' : 'INVALID_ARGUMENT',
            message: `line ${line}: ${reason}; nothing in this request was kept`,
            details: { line, reason },
          },
        };
      }
    }
    return { entries };
  }

  private readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
    return new Promise((ok, bad) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxRequestBytes) {
          req.removeAllListeners('data');
          req.resume();
          ok('too-large');
          return;
        }
        chunks.push(chunk);
      });
      req.once('end', () => ok(Buffer.concat(chunks)));
      req.once('error', bad);
    });
  }

  private tooLarge(res: ServerResponse, bytes?: number): void {
    this.fail(res, {
      status: 413,
      code: 'TOO_LARGE',
      message: `request body exceeds the limit of ${this.maxRequestBytes} bytes; send fewer lines per request`,
      details: { limit: this.maxRequestBytes, ...(bytes === undefined ? {} : { bytes }) },
    });
  }

  private fail(res: ServerResponse, f: HttpFailure): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(f.status, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ error: { code: f.code, message: f.message, ...(f.details ? { details: f.details } : {}) } }));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
