import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { copyValue } from '../../src/processing/copy-value.js';

describe('copyValue', () => {
  it('gives an equal value that shares nothing with the original (JSON-like values, property-tested)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = copyValue(v);
        expect(c).toStrictEqual(v);
        // Changing every object of the copy leaves the original as it was.
        const before = JSON.stringify(v);
        const mutate = (x: unknown): void => {
          if (x === null || typeof x !== 'object') return;
          if (Array.isArray(x)) {
            x.forEach(mutate);
            x.push('changed');
          } else {
            for (const k of Object.keys(x)) mutate((x as Record<string, unknown>)[k]);
            (x as Record<string, unknown>).__changed = true;
          }
        };
        mutate(c);
        expect(JSON.stringify(v)).toBe(before);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('keeps what is not a plain object or array as structuredClone would (Date, Map, typed arrays)', () => {
    const v = { at: new Date(5), m: new Map([['a', 1]]), bytes: new Uint8Array([1, 2]), n: null, u: undefined };
    const c = copyValue(v);
    expect(c.at).toBeInstanceOf(Date);
    expect(c.at).not.toBe(v.at);
    expect(c.at.getTime()).toBe(5);
    expect(c.m).toBeInstanceOf(Map);
    expect(c.m.get('a')).toBe(1);
    expect(c.bytes).toEqual(new Uint8Array([1, 2]));
    expect(c.bytes).not.toBe(v.bytes);
    expect('u' in c && c.n === null).toBe(true);
  });
});
