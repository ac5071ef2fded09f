/**
 * Services for compute nodes: `shardflow up --services examples/services.ts`, then `shardflow call add '{"a":1,"b":2}'`.
 * Every instance can serve every call: they keep nothing between calls.
 */
import type { ServiceContext } from '../src/index.js';

export default {
  /** Answers with what it was sent. */
  echo: (payload: unknown) => payload,
  /** Adds two numbers. */
  add: ({ a, b }: { a: number; b: number }) => {
    if (typeof a !== 'number' || typeof b !== 'number') throw new TypeError('add needs numbers a and b');
    return a + b;
  },
  /** Says which node ran it: shows dispatch at work. */
  whoami: (_: unknown, ctx: ServiceContext) => ctx.node,
  /** Counts words in a text. */
  wordcount: (text: string) => {
    const counts: Record<string, number> = {};
    for (const w of String(text).toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (w) counts[w] = (counts[w] ?? 0) + 1;
    return counts;
  },
  /** Waits `ms` (for load and drain tests), then answers. */
  sleep: {
    timeoutMs: 60_000,
    handler: async ({ ms }: { ms: number }, ctx: ServiceContext) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 60_000)));
      return ctx.node;
    },
  },
};
