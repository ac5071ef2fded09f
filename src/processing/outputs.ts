/**
 * Side outputs — the dead-letter output and late-record outputs — and the default dead-letter sink (a warning in
 * the log). Side records are buffered by the step that makes them and written when that step finishes an element
 * (stream mode) or a group (batch mode), and made durable before a checkpoint commits, like the main sink.
 */
import { createLogger } from '../util/logger.js';
import type { Json, Sink, SinkWriter } from './connectors/types.js';
import type { DeadLetter } from './plan.js';

const MAX_RAW = 4096;

/** A JSON copy of `value` for a dead letter: the value itself if it is JSON, else its string form, bounded in size. */
export function toJson(value: unknown): Json {
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    if (text.length > MAX_RAW) return text.slice(0, MAX_RAW) + '…';
    return JSON.parse(text) as Json;
  } catch {
    return String(value).slice(0, MAX_RAW);
  }
}

/** The reason a function failed, for a dead letter. */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : `threw ${String(err)}`;
}

/**
 * The default dead-letter sink: one warning line per dead letter on stderr (`SHARDFLOW_LOG` controls the level).
 *
 * @example
 * ```ts
 * import { pipeline, fromArray, collect, deadLetterLog } from 'shardflow';
 * await pipeline('parse')
 *   .from(fromArray(['1', 'x']))
 *   .map((s) => JSON.parse(s) as number) // 'x' throws: one warning line on stderr
 *   .deadLetters(deadLetterLog())
 *   .to(collect<number>().sink)
 *   .run();
 * ```
 */
export function deadLetterLog(): Sink<DeadLetter> {
  return {
    name: 'log',
    idempotent: false,
    async open({ job }) {
      const log = createLogger(`processing:${job}`);
      return {
        async write(records) {
          for (const d of records) log.warn('dead letter', { stage: d.stage, reason: d.reason, where: d.where, record: d.record });
        },
        async flush() {},
        async close() {},
      };
    },
  };
}

/** One side output: a buffer in front of a sink writer. */
export class SideOutput<T> {
  private buffer: T[] = [];
  written = 0;

  constructor(readonly writer: SinkWriter<T>) {}

  push(record: T): void {
    this.buffer.push(record);
  }

  get pending(): number {
    return this.buffer.length;
  }

  private chain: Promise<void> = Promise.resolve();

  /** Writes what is buffered. Flushes are serialised: several steps of a stream run may flush at once. */
  flush(): Promise<void> {
    if (this.buffer.length === 0) return this.chain;
    const batch = this.buffer;
    this.buffer = [];
    const run = this.chain.then(async () => {
      await this.writer.write(batch);
      this.written += batch.length;
    });
    this.chain = run.catch(() => {});
    return run;
  }

  /** Writes what is buffered and waits until the sink holds it durably (before a checkpoint commits). */
  async durable(): Promise<void> {
    await this.flush();
    await this.writer.flush();
  }
}

/** The side outputs of a running job: dead letters plus one per late sink. */
export class SideOutputs {
  constructor(
    readonly job: string,
    readonly deadLetters: SideOutput<DeadLetter>,
    readonly late: Map<Sink<unknown>, SideOutput<unknown>>,
  ) {}

  dead(stage: string, reason: string, record: unknown, where?: string, raw = false): void {
    const letter: DeadLetter = {
      job: this.job,
      stage,
      reason,
      record: raw ? (record as Json) : toJson(record),
      at: new Date().toISOString(),
    };
    if (where !== undefined) letter.where = where;
    this.deadLetters.push(letter);
  }

  get pending(): number {
    let n = this.deadLetters.pending;
    for (const out of this.late.values()) n += out.pending;
    return n;
  }

  async flush(): Promise<void> {
    if (this.pending === 0) return;
    await this.deadLetters.flush();
    for (const out of this.late.values()) await out.flush();
  }

  async durable(): Promise<void> {
    await this.deadLetters.durable();
    for (const out of this.late.values()) await out.durable();
  }

  async close(): Promise<void> {
    await this.deadLetters.writer.close();
    for (const out of this.late.values()) await out.writer.close();
  }
}
