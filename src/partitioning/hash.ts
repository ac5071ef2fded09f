/**
 * Key hashing: which hash slot a key belongs to.
 *
 * This is a wire-level contract. A client in any language computes the same slot for the same key:
 *
 * ```text
 * slot = XXH64(utf8(hashTag(key)), seed 0) mod slotCount     (the hash read as an unsigned 64-bit integer)
 * ```
 *
 * @module
 */
import xxhash from 'xxhash-wasm';
import { InvalidArgumentError } from '../errors/index.js';

// The WebAssembly module compiles once, at import. Top-level await lets every caller use plain synchronous functions.
const xxh = await xxhash();

/** The slot count a hash-partitioned namespace uses unless it says otherwise. */
export const DEFAULT_SLOT_COUNT = 4096;

/** The largest slot count {@link keySlot} accepts (slot numbers then fit in 16 bits). */
export const MAX_SLOT_COUNT = 65536;

/**
 * XXH64 of `bytes` with seed 0, as an unsigned 64-bit integer (`0n` … `2n ** 64n - 1n`).
 *
 * The algorithm is XXH64 exactly as specified in
 * {@link https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md | the xxHash specification} (the same as
 * Python's `xxhash.xxh64_intdigest(b)`, Go's `github.com/cespare/xxhash/v2.Sum64(b)`, Rust's
 * `xxhash_rust::xxh64::xxh64(b, 0)`). Restated here so it can be reimplemented without looking elsewhere. All
 * arithmetic is modulo 2^64; `rotl` rotates left; multi-byte lanes are read little-endian; `len` is the byte length.
 *
 * ```text
 * P1 = 0x9E3779B185EBCA87  P2 = 0xC2B2AE3D27D4EB4F  P3 = 0x165667B19E3779F9
 * P4 = 0x85EBCA77C2B2AE63  P5 = 0x27D4EB2F165667C5  seed = 0
 * round(acc, lane) = rotl(acc + lane * P2, 31) * P1
 * merge(acc, v)    = (acc ^ round(0, v)) * P1 + P4
 *
 * if len >= 32:
 *   v1 = seed + P1 + P2; v2 = seed + P2; v3 = seed; v4 = seed - P1
 *   for each whole 32-byte stripe (four u64 lanes l1..l4): vi = round(vi, li)
 *   acc = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)
 *   acc = merge(merge(merge(merge(acc, v1), v2), v3), v4)
 * else:
 *   acc = seed + P5
 * acc = acc + len
 * for each remaining whole u64 lane:  acc = rotl(acc ^ round(0, lane), 27) * P1 + P4
 * if a whole u32 lane remains:        acc = rotl(acc ^ (u32 * P1), 23) * P2 + P3
 * for each remaining byte b:          acc = rotl(acc ^ (b * P5), 11) * P1
 * acc ^= acc >> 33; acc *= P2; acc ^= acc >> 29; acc *= P3; acc ^= acc >> 32
 * return acc
 * ```
 *
 * Test vectors: `""` → `0xef46db3751d8e999`, `"a"` → `0xd24ec4f1a98c6e5b`, `"abc"` → `0x44bc2cf5ad770999`.
 *
 * @example
 * ```ts
 * hash64(new TextEncoder().encode('abc')); // 0x44bc2cf5ad770999n
 * ```
 */
export function hash64(bytes: Uint8Array): bigint {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('hash64 expects a Uint8Array');
  return xxh.h64Raw(bytes, 0n);
}

/**
 * The part of `key` that decides its slot, by Redis Cluster's hash-tag rule: if the key contains a `{`, and after the
 * first `{` a `}`, and at least one character lies between that `{` and the first `}` after it, only those characters
 * are hashed; otherwise the whole key is. This lets a caller keep related keys in one slot (`{user1}.profile`,
 * `{user1}.cart`).
 *
 * Positions are found on code units; `{` and `}` are ASCII, so this is the same as searching the UTF-8 bytes.
 *
 * @example
 * ```ts
 * hashTag('{user1}.cart'); // 'user1'
 * hashTag('{}x');          // '{}x' (empty tag: whole key)
 * hashTag('{a}{b}');       // 'a'   (only the first tag counts)
 * ```
 */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

let lastSlotCount = DEFAULT_SLOT_COUNT;
let lastSlotCountBig = BigInt(DEFAULT_SLOT_COUNT);

/**
 * The hash slot of `key`: `XXH64(utf8(hashTag(key)), seed 0) mod slotCount`, a number in `0 … slotCount - 1`.
 *
 * UTF-8 is the WHATWG encoding (`TextEncoder`): a lone surrogate encodes as U+FFFD (`EF BF BD`). See {@link hash64}
 * for the hash and {@link hashTag} for the part of the key that is hashed.
 *
 * Hot path (every request): the key is encoded straight into the hash module's memory (no intermediate buffer) and
 * the `BigInt` of the slot count is cached.
 *
 * @param slotCount - An integer in `1 … 65536`; {@link DEFAULT_SLOT_COUNT} unless given.
 * @throws InvalidArgumentError if `key` is not a string or `slotCount` is out of range.
 * @example
 * ```ts
 * keySlot('{user1}.cart') === keySlot('{user1}.profile'); // true
 * keySlot('hello', 16);                                   // a number in 0..15
 * ```
 */
export function keySlot(key: string, slotCount: number = DEFAULT_SLOT_COUNT): number {
  if (slotCount !== lastSlotCount) {
    if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > MAX_SLOT_COUNT) {
      throw new InvalidArgumentError(`slotCount must be an integer in 1..${MAX_SLOT_COUNT}, got ${String(slotCount)}`, {
        details: { slotCount },
      });
    }
    lastSlotCount = slotCount;
    lastSlotCountBig = BigInt(slotCount);
  }
  if (typeof key !== 'string') throw new InvalidArgumentError('key must be a string');
  // h64(string) encodes with TextEncoder.encodeInto directly into the wasm memory: same bytes as utf8(), no copy.
  return Number(xxh.h64(hashTag(key), 0n) % lastSlotCountBig);
}
