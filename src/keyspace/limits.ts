/** What a key, a value and a namespace name may be: checked at the node's boundary, before anything is written. */
import { encodeBody } from '../wire/index.js';
import { InvalidArgumentError, TooLargeError } from '../errors/index.js';

export const MAX_KEY_BYTES = 1024;
export const MAX_VALUE_BYTES = 1024 * 1024;
export const MAX_BATCH_OPS = 10_000;
export const MAX_SCAN_LIMIT = 10_000;
/** Largest service-call payload frame: callers refuse bigger ones before sending, compute nodes answer TooLargeError. */
export const MAX_CALL_BYTES = 4 * 1024 * 1024;

/** A key: a non-empty string of at most 1 KiB in UTF-8, without NUL characters (they delimit stored keys). */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidArgumentError(`invalid key ${JSON.stringify(key)}: keys are non-empty strings`);
  }
  if (key.includes('\u0000')) throw new InvalidArgumentError('invalid key: keys may not contain NUL characters');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new TooLargeError(`key of ${bytes} bytes exceeds the limit of ${MAX_KEY_BYTES}`, {
      details: { bytes, limit: MAX_KEY_BYTES },
    });
  }
  return key;
}

/** A value: anything msgpack can carry except `undefined`, at most 1 MiB encoded. Returns the encoded size. */
export function checkValue(value: unknown): number {
  if (value === undefined) throw new InvalidArgumentError('invalid value: undefined cannot be stored (use delete)');
  // Strings and bytes are measured without encoding them (the common case, and on every write's path).
  const bytes =
    typeof value === 'string'
      ? Buffer.byteLength(value, 'utf8') + 5
      : value instanceof Uint8Array
        ? value.length + 5
        : typeof value === 'number' || typeof value === 'boolean' || value === null
          ? 9
          : encodeBody(value).length;
  if (bytes > MAX_VALUE_BYTES) {
    throw new TooLargeError(`value of ${bytes} bytes exceeds the limit of ${MAX_VALUE_BYTES}`, {
      details: { bytes, limit: MAX_VALUE_BYTES },
    });
  }
  return bytes;
}
