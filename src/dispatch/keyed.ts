/**
 * Keyed dispatch: calls that carry a key (a user id, a session, a document) reach the same instance every time while
 * membership is stable, so that instance's caches stay warm, and as few keys as possible move when it changes.
 *
 * The method is rendezvous hashing (highest random weight, Thaler & Ravishankar 1996): every instance gets a
 * pseudo-random score for the key, `XXH64(utf8(id + "\u0000" + key))`, and the highest score wins.
 *
 * Why not a ring cut into equal slices? Moleculer's Shard strategy assigns equal slices of the hash space to the
 * sorted instance ids in turn; the slice boundaries and owners depend on the number of instances, so one join or
 * leave moves most keys (moleculerjs/moleculer#722). Rendezvous hashing needs no ring and no virtual nodes:
 * - a joining instance takes exactly the keys it now scores highest on, about `1/(n+1)` of them, and no key moves
 *   between the instances that were already there;
 * - a leaving instance's keys spread evenly over the others, and no other key moves;
 * - every caller that sees the same instance ids picks the same instance, whatever their order.
 * The cost is `O(n)` hashes per call, which is negligible for the tens of instances a service has.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';
import { hash64 } from '../partitioning/index.js';

const encoder = new TextEncoder();

// One scratch buffer reused for every score: the hot path allocates nothing once it is large enough.
let scratch = new Uint8Array(256);

/**
 * The instance that serves `key`: the id maximising `XXH64(utf8(id + "\u0000" + key))` (seed 0, compared as unsigned
 * 64-bit integers; see `hash64`). Should two scores ever be equal, the smaller id (by code units) wins, so the result
 * never depends on the order of `instanceIds`. Duplicate ids are harmless.
 *
 * The NUL separator keeps `('ab', 'c')` and `('a', 'bc')` apart, and because it is a whole character the bytes are
 * simply `utf8(id)`, `0x00`, `utf8(key)`: a client in another language can compute the same choice.
 *
 * @param key - Any string; lone surrogates are encoded as U+FFFD (WHATWG UTF-8).
 * @param instanceIds - The ids of the instances that may serve the call; at least one.
 * @throws InvalidArgumentError if `key` or an id is not a string, or `instanceIds` is empty.
 * @example
 * ```ts
 * pickByKey('user-42', ['c1', 'c2', 'c3']); // say 'c2', on every call and every caller
 * pickByKey('user-42', ['c1', 'c2', 'c3', 'c4']); // 'c2' or 'c4', never 'c1' or 'c3'
 * ```
 */
export function pickByKey(key: string, instanceIds: readonly string[]): string {
  if (typeof key !== 'string') throw new InvalidArgumentError('key must be a string');
  if (!Array.isArray(instanceIds) || instanceIds.length === 0) {
    throw new InvalidArgumentError('pickByKey needs at least one instance id');
  }
  const keyBytes = encoder.encode(key);
  let best: string | undefined;
  let bestScore = -1n;
  for (const id of instanceIds) {
    if (typeof id !== 'string') throw new InvalidArgumentError('instance ids must be strings', { details: { id } });
    const s = score(id, keyBytes);
    if (s > bestScore || (s === bestScore && id < best!)) {
      best = id;
      bestScore = s;
    }
  }
  return best!;
}

/** `XXH64(utf8(id) ‖ 0x00 ‖ keyBytes)`, built in the scratch buffer. */
function score(id: string, keyBytes: Uint8Array): bigint {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  const needed = id.length * 3 + 1 + keyBytes.length;
  if (scratch.length < needed) scratch = new Uint8Array(Math.max(needed, scratch.length * 2));
  const { written } = encoder.encodeInto(id, scratch);
  scratch[written] = 0;
  scratch.set(keyBytes, written + 1);
  return hash64(scratch.subarray(0, written + 1 + keyBytes.length));
}
