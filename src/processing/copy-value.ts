/**
 * Copies of state values on their way into and out of a state backend, so that a user function that changes an
 * accumulator in place cannot change what a checkpoint holds. State values are JSON-like: plain objects and arrays
 * are copied by hand — several times faster than `structuredClone` for the small values state holds, and this runs
 * twice per record of a keyed stage — anything else (a Date, a Map, typed arrays) by `structuredClone`.
 */
export function copyValue<V>(value: V): V {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyValue(value[i]);
    return out as V;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = copyValue((value as Record<string, unknown>)[key]);
  return out as V;
}
