import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_SLOT_COUNT, hash64, hashTag, keySlot } from '../../src/partitioning/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
// Any code point or a lone surrogate (fast-check's 'binary' unit is much slower to generate).
const anyCodePoint = fc.oneof(
  fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
);

// XXH64 written from hash64's TSDoc alone: if this agrees with the library, the documented contract is exact.
const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, lane: bigint) => (rotl((acc + lane * P2) & M, 31n) * P1) & M;
const merge = (acc: bigint, v: bigint) => (((acc ^ round(0n, v)) * P1 + P4) & M);
function referenceXxh64(b: Uint8Array): bigint {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = b.length;
  let i = 0;
  let acc: bigint;
  if (len >= 32) {
    let v1 = (P1 + P2) & M;
    let v2 = P2;
    let v3 = 0n;
    let v4 = (0n - P1) & M;
    for (; i + 32 <= len; i += 32) {
      v1 = round(v1, view.getBigUint64(i, true));
      v2 = round(v2, view.getBigUint64(i + 8, true));
      v3 = round(v3, view.getBigUint64(i + 16, true));
      v4 = round(v4, view.getBigUint64(i + 24, true));
    }
    acc = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    acc = merge(merge(merge(merge(acc, v1), v2), v3), v4);
  } else {
    acc = P5;
  }
  acc = (acc + BigInt(len)) & M;
  for (; i + 8 <= len; i += 8) acc = (rotl(acc ^ round(0n, view.getBigUint64(i, true)), 27n) * P1 + P4) & M;
  if (i + 4 <= len) {
    acc = (rotl(acc ^ ((BigInt(view.getUint32(i, true)) * P1) & M), 23n) * P2 + P3) & M;
    i += 4;
  }
  for (; i < len; i++) acc = (rotl(acc ^ ((BigInt(b[i]!) * P5) & M), 11n) * P1) & M;
  acc ^= acc >> 33n;
  acc = (acc * P2) & M;
  acc ^= acc >> 29n;
  acc = (acc * P3) & M;
  acc ^= acc >> 32n;
  return acc;
}

describe('hash64', () => {
  it('matches known XXH64 (seed 0) vectors', () => {
    expect(hash64(new Uint8Array())).toBe(0xef46db3751d8e999n);
    expect(hash64(utf8('a'))).toBe(0xd24ec4f1a98c6e5bn);
    expect(hash64(utf8('abc'))).toBe(0x44bc2cf5ad770999n);
    expect(hash64(utf8('Nobody inspects the spammish repetition'))).toBe(0xfbcea83c8a378bf1n);
  });

  it('equals the algorithm restated in its documentation, for every length class', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        expect(hash64(bytes)).toBe(referenceXxh64(bytes));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('hashes only the bytes of a view, is unsigned and 64-bit', () => {
    const buf = utf8('xxabcxx');
    expect(hash64(buf.subarray(2, 5))).toBe(0x44bc2cf5ad770999n);
    expect(hash64(Buffer.from('abc'))).toBe(0x44bc2cf5ad770999n);
    for (const s of ['', 'a', 'hello world', 'z'.repeat(1000)]) {
      const h = hash64(utf8(s));
      expect(h >= 0n && h <= M).toBe(true);
    }
  });

  it('rejects non-bytes', () => {
    expect(() => hash64('abc' as unknown as Uint8Array)).toThrow(InvalidArgumentError);
  });
});

describe('hashTag', () => {
  it('follows the Redis Cluster rules', () => {
    expect(hashTag('{user1}.a')).toBe('user1');
    expect(hashTag('foo{user1}bar')).toBe('user1');
    expect(hashTag('plain')).toBe('plain');
    expect(hashTag('{}x')).toBe('{}x'); // empty tag: whole key
    expect(hashTag('{}{a}')).toBe('{}{a}'); // only the first '{' counts, and its tag is empty
    expect(hashTag('x{')).toBe('x{'); // no closing brace
    expect(hashTag('x}{')).toBe('x}{'); // '}' before '{' does not close it
    expect(hashTag('{a}{b}')).toBe('a'); // first tag only
    expect(hashTag('{{a}}')).toBe('{a'); // from the first '{' to the first '}' after it
    expect(hashTag('a{b}')).toBe('b');
    expect(hashTag('')).toBe('');
  });
});

describe('keySlot', () => {
  it('puts keys with the same tag in the same slot', () => {
    expect(keySlot('{user1}.a')).toBe(keySlot('{user1}.b'));
    expect(keySlot('{user1}.a')).toBe(keySlot('user1'));
    expect(keySlot('{}x')).toBe(Number(hash64(utf8('{}x')) % 4096n));
  });

  it('is XXH64(utf8(hashTag(key))) mod slotCount, in range, for any key and slot count', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: anyCodePoint, maxLength: 40 }),
          fc.string({ unit: 'grapheme', maxLength: 20 }),
          fc.string({ maxLength: 40 }),
        ),
        fc.integer({ min: 1, max: 65536 }),
        (key, slots) => {
          const slot = keySlot(key, slots);
          expect(slot).toBe(Number(referenceXxh64(utf8(hashTag(key))) % BigInt(slots)));
          expect(Number.isInteger(slot) && slot >= 0 && slot < slots).toBe(true);
          expect(keySlot(key)).toBe(Number(hash64(utf8(hashTag(key))) % BigInt(DEFAULT_SLOT_COUNT)));
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  it('encodes a lone surrogate as U+FFFD, like TextEncoder', () => {
    expect(keySlot('a\uD800b')).toBe(keySlot('a\uFFFDb'));
  });

  it('spreads 100k keys roughly uniformly over 4096 slots', () => {
    const counts = new Array<number>(DEFAULT_SLOT_COUNT).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) counts[keySlot(`user:${i}`)]!++;
    const expected = n / DEFAULT_SLOT_COUNT;
    const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // 4095 degrees of freedom: mean 4095, sd ~90.5; allow 6 sd.
    expect(chi2).toBeLessThan(4095 + 6 * 90.5);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it('rejects bad slot counts and non-string keys', () => {
    for (const bad of [0, -1, 65537, 1.5, Number.NaN, Infinity]) {
      expect(() => keySlot('k', bad)).toThrow(InvalidArgumentError);
    }
    expect(keySlot('k', 65536)).toBeLessThan(65536);
    expect(keySlot('k', 1)).toBe(0);
    expect(() => keySlot(42 as unknown as string)).toThrow(InvalidArgumentError);
  });
});
