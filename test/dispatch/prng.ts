/**
 * mulberry32: a tiny seeded PRNG (32-bit state, uniform in [0, 1)), so every statistical test here sees the same
 * numbers on every run and a failure reproduces.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` fresh instance states named `i0 … i{n-1}`, idle. */
export function instances(n: number): { id: string; inFlight: number; latencyMs: number }[] {
  return Array.from({ length: n }, (_, i) => ({ id: `i${i}`, inFlight: 0, latencyMs: 0 }));
}
