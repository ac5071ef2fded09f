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
          const text = records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
          if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', resolve));
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
