import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sink, SinkWriter } from '../../src/index.js';

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shardflow-proc-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A sink whose writes wait until `release()`; `writes` counts writes started. */
export function gatedSink<T>(): { sink: Sink<T>; values: T[]; release: () => void; writes: () => number } {
  const values: T[] = [];
  let open: () => void = () => {};
  let gate = new Promise<void>((r) => (open = r));
  let writes = 0;
  const sink: Sink<T> = {
    name: 'gated',
    idempotent: false,
    async open(): Promise<SinkWriter<T>> {
      return {
        async write(records) {
          writes++;
          await gate;
          values.push(...records);
        },
        async flush() {},
        async close() {},
      };
    },
  };
  return {
    sink,
    values,
    release: () => {
      open();
      gate = Promise.resolve();
    },
    writes: () => writes,
  };
}

/** A sink that upserts `{ key, value }` records into a map: an idempotent sink. */
export function upsertSink<V>(): { sink: Sink<{ key: string; value: V }>; map: Map<string, V> } {
  const map = new Map<string, V>();
  return {
    map,
    sink: {
      name: 'upsert',
      idempotent: true,
      async open() {
        return {
          async write(records) {
            for (const r of records) map.set(r.key, r.value);
          },
          async flush() {},
          async close() {},
        };
      },
    },
  };
}
