/**
 * How {@link StorageStateBackend} (storage-state.ts) names things in the storage tier: the job's namespace, and the
 * stored key of each `(stage, slot, key)`.
 *
 * ```text
 * stored key = esc(stage) SEP "{" tag(slot) "}" esc(key)          SEP = U+0011; the checkpoint record: SEP "meta"
 * ```
 *
 * - `esc` escapes U+0010 (the escape), U+0011 (SEP), NUL (keys may not hold it) and `{` (so the first `{` of a stored
 *   key is always the one before the tag). It is a prefix code, so `esc(k)` starts with `esc(p)` exactly when `k`
 *   starts with `p` — prefix scans work on escaped keys — and one stage's keys are exactly `[esc(stage) SEP,
 *   esc(stage) U+0012)`.
 * - `tag(slot)` is the first string of the sequence `0, 1, …, z, 10, …` (base 36) whose `keySlot` is `slot`: by the
 *   hash-tag rule the stored key is then hashed as `tag(slot)` alone, so every state entry of processing slot `s`
 *   lands in storage slot `s` of a 4096-slot namespace, or `s mod n` of an `n`-slot one when `n` divides 4096 (a power
 *   of two): the storage partition holding a processing slot's state is the one a distributed worker owning the
 *   slot would read, and a key's state stays in one place. The table is deterministic (a restarted job finds its
 *   keys again) and built once, on first use (~37k hashes).
 */
import { createHash } from 'node:crypto';
import { DEFAULT_SLOT_COUNT, keySlot } from '../partitioning/index.js';

export const SEP = '\u0011';
export const META_KEY = `${SEP}meta`;

/** A namespace name for a job's state: `prefix + job` when that is a valid name, else a readable part and a hash. */
export function stateNamespace(prefix: string, job: string): string {
  const plain = prefix + job;
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(plain)) return plain;
  const hash = createHash('sha256').update(job).digest('hex').slice(0, 12);
  const readable = job.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, Math.max(0, 50 - prefix.length));
  return `${prefix}${readable}-${hash}`.replace(/^[.-]/, '_');
}

export function esc(s: string): string {
  if (!/[\u0000\u0010\u0011{]/.test(s)) return s;
  return s.replace(/[\u0000\u0010\u0011{]/g, (c) =>
    c === '\u0010' ? '\u0010a' : c === '\u0011' ? '\u0010b' : c === '\u0000' ? '\u0010c' : '\u0010d',
  );
}

export function unesc(s: string): string {
  if (!s.includes('\u0010')) return s;
  return s.replace(/\u0010([abcd])/g, (_, c: string) => (c === 'a' ? '\u0010' : c === 'b' ? '\u0011' : c === 'c' ? '\u0000' : '{'));
}

let tags: string[] | undefined;
let slotOfTag: Map<string, number> | undefined;

function buildTags(): void {
  const table = new Array<string>(DEFAULT_SLOT_COUNT);
  const reverse = new Map<string, number>();
  let left = DEFAULT_SLOT_COUNT;
  for (let i = 0; left > 0; i++) {
    const t = i.toString(36);
    const s = keySlot(t);
    if (table[s] === undefined) {
      table[s] = t;
      reverse.set(t, s);
      left--;
    }
  }
  tags = table;
  slotOfTag = reverse;
}

/** The hash tag for processing slot `slot`; slots outside 0…4095 get `~slot` (kept together, not aligned). */
export function tagOf(slot: number): string {
  if (!tags) buildTags();
  return (Number.isInteger(slot) && slot >= 0 && slot < DEFAULT_SLOT_COUNT ? tags![slot] : undefined) ?? `~${slot}`;
}

function slotOf(tag: string): number | undefined {
  if (!slotOfTag) buildTags();
  if (tag.startsWith('~')) {
    const n = Number(tag.slice(1));
    return Number.isFinite(n) ? n : undefined;
  }
  return slotOfTag!.get(tag);
}

/** The first key of stage `stage` (inclusive) and the bound after its last (exclusive). */
export function stageRange(stage: string): { start: string; end: string } {
  const s = esc(stage);
  return { start: s + SEP, end: s + '\u0012' };
}

export function storedKey(stage: string, slot: number, key: string): string {
  return `${esc(stage)}${SEP}{${tagOf(slot)}}${esc(key)}`;
}

/** The `(slot, key)` of a stored key of `stage`, or undefined for a key of another stage or shape. */
export function parseStoredKey(stage: string, stored: string): { slot: number; key: string } | undefined {
  const head = esc(stage) + SEP + '{';
  if (!stored.startsWith(head)) return undefined;
  const close = stored.indexOf('}', head.length);
  if (close < 0) return undefined;
  const slot = slotOf(stored.slice(head.length, close));
  if (slot === undefined) return undefined;
  return { slot, key: unesc(stored.slice(close + 1)) };
}
