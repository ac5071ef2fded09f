/**
 * A sink that POSTs records as NDJSON batches to an HTTP endpoint, **at-least-once**: a batch is retried with
 * exponential backoff (and jitter) on a 5xx, a 408 or 429, a timeout or a connection error, until the endpoint
 * answers 2xx or the attempts run out; a 4xx other than those is final (the endpoint refuses the records), and
 * `write` rejects. A retried batch may reach the endpoint twice: each request carries
 * `X-Shardflow-Batch: <writer id>/<n>` (the same on each try) so a receiver can drop repeats, and, with a secret,
 * the HMAC signature of `signing.ts` so it can check the sender. A record that cannot be encoded or is larger than
 * `maxBatchBytes` is refused alone ({@link BadRecordsError}); the others are sent.
 */
import { randomUUID } from 'node:crypto';
import { ClosedError, ConfigError, InvalidArgumentError, TooLargeError, UnavailableError } from '../../errors/index.js';
import { signBody } from './signing.js';
import { BadRecordsError, eachRecord, jsonLine } from './bad-records.js';
import type { Sink, SinkWriter } from './types.js';

export const BATCH_HEADER = 'x-shardflow-batch';

/**
 * Options of {@link webhook}: the endpoint, how records are batched and encoded, and how long a batch is retried.
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, webhook, type WebhookOptions } from 'shardflow';
 * const options: WebhookOptions<{ user: string; clicks: number }> = {
 *   url: 'https://alerts.example.com/hooks/clicks',
 *   headers: { authorization: `Bearer ${process.env.ALERTS_TOKEN}` },
 *   secret: new TextEncoder().encode('the shared secret'), // each body signed (signing.ts)
 *   maxBatchRecords: 100,
 *   attempts: 3, // then write rejects and the job fails
 *   backoffMs: 200,
 *   timeoutMs: 5_000,
 *   encode: (r) => JSON.stringify({ text: `${r.user}: ${r.clicks} clicks` }),
 * };
 * await pipeline('alerts').from(fromArray([{ user: 'u1', clicks: 120 }])).to(webhook(options)).run();
 * ```
 */
export interface WebhookOptions<T> {
  url: string;
  /** Extra headers (e.g. an authorization for the endpoint). */
  headers?: Record<string, string>;
  /** Signs each body with this secret (see `signBody`). */
  secret?: Uint8Array;
  /** Records per request, at most (default 500). */
  maxBatchRecords?: number;
  /** Bytes per request, at most (default 1 MiB); a single record larger than this is refused. */
  maxBatchBytes?: number;
  /** Tries per batch (default 6). */
  attempts?: number;
  /** First backoff (default 100 ms), doubled each try up to `maxBackoffMs` (default 5 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Deadline of one request (default 10 s). */
  timeoutMs?: number;
  /** The line for a record (default JSON.stringify). */
  encode?: (record: T) => string;
}

/**
 * A webhook sink.
 *
 * @example
 * ```ts
 * import { webhook } from 'shardflow';
 * const alerts = webhook<{ user: string; clicks: number }>({ url: 'http://127.0.0.1:9000/alerts' });
 * const writer = await alerts.open({ job: 'clicks', worker: 'w0' });
 * await writer.write([{ user: 'u1', clicks: 120 }]); // one POST: {"user":"u1","clicks":120}\n
 * await writer.close();
 * ```
 */
export function webhook<T>(options: WebhookOptions<T>): Sink<T> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (cause) {
    throw new ConfigError(`webhook url is not a URL: ${JSON.stringify(options.url)}`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`webhook url must be http(s): ${options.url}`);
  return {
    name: `webhook(${url.origin}${url.pathname})`,
    idempotent: false,
    manyWriters: true,
    async open(context) {
      return new WebhookWriter<T>(options, `${context.job}/${context.worker}/${randomUUID().slice(0, 8)}`);
    },
  };
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

class WebhookWriter<T> implements SinkWriter<T> {
  private closed = false;
  private closing: Promise<void> | undefined;
  private batches = 0;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly options: WebhookOptions<T>,
    private readonly writerId: string,
  ) {}

  write(records: T[]): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`the webhook writer for ${this.options.url} is closed`));
    const work = this.send(records);
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  private async send(records: T[]): Promise<void> {
    const maxRecords = this.options.maxBatchRecords ?? 500;
    const maxBytes = this.options.maxBatchBytes ?? 1024 * 1024;
    const encode = this.options.encode ?? jsonLine;
    // Every record is encoded before any is sent: a bad one is refused alone, not after half the call went out.
    const { ok, rejected } = eachRecord(records, 'cannot be sent', (r: T) => {
      const line = encode(r) + '\n';
      const size = Buffer.byteLength(line);
      if (size > maxBytes) {
        throw new TooLargeError(`a record of ${size} bytes exceeds the webhook batch limit of ${maxBytes}`, {
          details: { bytes: size, limit: maxBytes },
        });
      }
      return { line, size };
    });
    let lines: string[] = [];
    let bytes = 0;
    for (const { value: { line, size } } of ok) {
      if (lines.length >= maxRecords || bytes + size > maxBytes) {
        await this.post(lines.join(''));
        lines = [];
        bytes = 0;
      }
      lines.push(line);
      bytes += size;
    }
    if (lines.length > 0) await this.post(lines.join(''));
    if (rejected.length > 0) throw new BadRecordsError(rejected, `webhook(${this.options.url})`);
  }

  /** One batch, tried until it is accepted or refused for good. */
  private async post(body: string): Promise<void> {
    const id = `${this.writerId}/${++this.batches}`;
    const attempts = Math.max(1, this.options.attempts ?? 6);
    let backoff = this.options.backoffMs ?? 100;
    const maxBackoff = this.options.maxBackoffMs ?? 5000;
    let last = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
        backoff = Math.min(maxBackoff, backoff * 2);
      }
      let res: Response;
      try {
        res = await fetch(this.options.url, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/x-ndjson',
            [BATCH_HEADER]: id,
            ...this.options.headers,
            ...(this.options.secret ? signBody(this.options.secret, body) : {}),
          },
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
      } catch (err) {
        last = `${(err as Error).message}${(err as Error).cause ? `: ${((err as Error).cause as Error).message}` : ''}`;
        continue;
      }
      const text = await res.text().catch(() => '');
      if (res.ok) return;
      last = `HTTP ${res.status} ${text.slice(0, 200)}`.trim();
      if (res.status >= 500 || res.status === 408 || res.status === 429) continue;
      throw new InvalidArgumentError(`the webhook ${this.options.url} refused batch ${id}: ${last}`, {
        details: { status: res.status, body: text.slice(0, 1000), batch: id },
      });
    }
    throw new UnavailableError(`the webhook ${this.options.url} did not take batch ${id} after ${attempts} tries: ${last}`, {
      details: { batch: id, attempts },
    });
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = this.flush();
    return this.closing;
  }
}
