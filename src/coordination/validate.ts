/**
 * Input rules every coordinator enforces the same way, so a bad argument fails with
 * {@link InvalidArgumentError} before it reaches a store (and the conformance suite can test it on both).
 */
import { InvalidArgumentError } from '../errors/index.js';

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 4 * 1024;
/** Longest value, in UTF-8 bytes (etcd refuses requests above ~1.5 MiB by default). */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Shortest lease TTL: below this a keep-alive every ttl/3 would be mostly noise. */
export const MIN_TTL_MS = 100;
/** Longest lease TTL (one day). */
export const MAX_TTL_MS = 24 * 60 * 60 * 1000;

/** A non-empty key of at most {@link MAX_KEY_BYTES}. */
export function checkKey(key: unknown, what = 'key'): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string`);
  checkBytes(key, MAX_KEY_BYTES, what);
  return key;
}

/** A prefix: like a key, but empty means "every key". */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix must be a string');
  checkBytes(prefix, MAX_KEY_BYTES, 'prefix');
  return prefix;
}

/** A string value of at most {@link MAX_VALUE_BYTES}. */
export function checkValue(value: unknown): string {
  if (typeof value !== 'string') throw new InvalidArgumentError('value must be a string');
  checkBytes(value, MAX_VALUE_BYTES, 'value');
  return value;
}

/** A revision: a non-negative safe integer (0 means "absent" for compare-and-set). */
export function checkRevision(revision: unknown, what = 'revision'): number {
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer`, { details: { [what]: revision } });
  }
  return revision;
}

/** A lease TTL in milliseconds within [{@link MIN_TTL_MS}, {@link MAX_TTL_MS}]. */
export function checkTtl(ttlMs: unknown): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) {
    throw new InvalidArgumentError(`ttlMs must be a number between ${MIN_TTL_MS} and ${MAX_TTL_MS}`, {
      details: { ttlMs },
    });
  }
  return Math.ceil(ttlMs);
}

function checkBytes(text: string, limit: number, what: string): void {
  // length*3 bounds the UTF-8 size, so the exact count is only needed near the limit.
  if (text.length * 3 > limit && Buffer.byteLength(text, 'utf8') > limit) {
    throw new InvalidArgumentError(`${what} is longer than ${limit} bytes`, { details: { limit } });
  }
}
