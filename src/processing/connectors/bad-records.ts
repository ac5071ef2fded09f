/**
 * Records a sink cannot take (not serialisable, no key, too large): the sink writes the others and names these in a
 * {@link BadRecordsError}; the runner sends them to the dead-letter output and the job goes on. Failures that are
 * not about a record (the endpoint down, storage unavailable) are thrown as before and fail or retry the write.
 */
import { ShardflowError } from '../../errors/index.js';

/** One record of a `write` call the sink refused: its index in that call's records, and why. */
export interface RejectedRecord {
  index: number;
  reason: string;
}

/** Thrown by `SinkWriter.write` once every record of the call but `rejected` is written. */
export class BadRecordsError extends ShardflowError {
  override readonly code = 'BAD_RECORDS';
  static readonly code = 'BAD_RECORDS';

  constructor(
    readonly rejected: RejectedRecord[],
    sink: string,
  ) {
    super(`${sink} refused ${rejected.length} record(s): ${rejected[0]?.reason ?? ''}`, { details: { sink, rejected: rejected.length } });
  }
}

/** Whether `err` is a {@link BadRecordsError} (by code too: a copy of this module may have made it). */
export function isBadRecords(err: unknown): err is BadRecordsError {
  return err instanceof BadRecordsError || ((err as { code?: unknown } | null)?.code === 'BAD_RECORDS' && Array.isArray((err as { rejected?: unknown }).rejected));
}

/**
 * `fn` applied to each record; a record it throws for is rejected with `what` and the error, not the whole call.
 *
 * @example
 * ```ts
 * // Inside a sink's write (this module is internal: not exported by 'shardflow').
 * const records: unknown[] = [{ a: 1 }, { n: 1n }];
 * const { ok, rejected } = eachRecord(records, 'not JSON', jsonLine);
 * ok; // [{ index: 0, value: '{"a":1}' }]
 * rejected; // [{ index: 1, reason: 'not JSON: TypeError: Do not know how to serialize a BigInt' }]
 * if (rejected.length > 0) throw new BadRecordsError(rejected, 'ndjson(out.ndjson)'); // after writing `ok`
 * ```
 */
export function eachRecord<T, R>(records: readonly T[], what: string, fn: (record: T) => R): { ok: Array<{ index: number; value: R }>; rejected: RejectedRecord[] } {
  const ok: Array<{ index: number; value: R }> = [];
  const rejected: RejectedRecord[] = [];
  records.forEach((r, index) => {
    try {
      ok.push({ index, value: fn(r) });
    } catch (err) {
      rejected.push({ index, reason: `${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}` });
    }
  });
  return { ok, rejected };
}

/** A record as a JSON line, or a throw when it is not one (a BigInt, a cycle, a function or `undefined`). */
export function jsonLine(record: unknown): string {
  const text = JSON.stringify(record);
  if (text === undefined) throw new TypeError(`${typeof record} is not a JSON value`);
  return text;
}

/** `record` with BigInts as strings, so its dead letter shows the record rather than `[object Object]`. */
export function withoutBigInts(record: unknown): unknown {
  try {
    const text = JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return text === undefined ? record : (JSON.parse(text) as unknown);
  } catch {
    return record;
  }
}
