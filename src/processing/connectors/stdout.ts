/**
 * The stdout sink: one line per record — strings as they are, anything else as JSON — written with the stream's
 * backpressure respected (a slow terminal or pipe slows the job).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, stdout } from 'shardflow';
 * await pipeline('echo').from(fromArray(['hello', { a: 1 }])).to(stdout()).run(); // hello, then {"a":1}
 * ```
 */
import type { Writable } from 'node:stream';
import { ClosedError } from '../../errors/index.js';
import { BadRecordsError, eachRecord, jsonLine } from './bad-records.js';
import type { Sink, SinkWriter } from './types.js';

/**
 * A sink writing one line per record to `options.stream` (default: the process's stdout).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, stdout } from 'shardflow';
 * await pipeline('up').from(fromArray(['a', 'b'])).map((s) => s.toUpperCase()).to(stdout()).run(); // A, then B
 * await pipeline('err').from(fromArray(['oops'])).to(stdout({ stream: process.stderr })).run(); // to stderr
 * ```
 */
export function stdout<T = unknown>(options: { stream?: Writable } = {}): Sink<T> {
  const out = options.stream ?? process.stdout;
  return {
    name: 'stdout',
    idempotent: false,
    async open(): Promise<SinkWriter<T>> {
      let closed = false;
      return {
        async write(records) {
          if (closed) throw new ClosedError('the stdout writer is closed');
          if (records.length === 0) return;
          // A record with no JSON form (a BigInt, a cycle) goes to the dead letters; the others are written.
          const { ok, rejected } = eachRecord(records, 'not JSON', (r) => (typeof r === 'string' ? r : jsonLine(r)));
          const text = ok.map((l) => l.value).join('\n') + '\n';
          if (ok.length > 0 && !out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
          if (rejected.length > 0) throw new BadRecordsError(rejected, 'stdout');
        },
        async flush() {},
        async close() {
          // The stream is the process's (or the caller's): closing the writer leaves it open.
          closed = true;
        },
      };
    },
  };
}
