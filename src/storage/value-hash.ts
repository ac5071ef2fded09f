/**
 * A 32-bit FNV-1a hash of a stored value's bytes. A follower copy that comes back compares its entries with the
 * source's by version, size and this hash (partition-import.ts): versions come from each node's clock, so two nodes
 * could give different writes of one key the same version; the hash makes taking one for the other unlikely enough
 * (a 1 in 2^32 chance per such pair, on top of equal versions and sizes). Not for anything adversarial.
 */
export function valueHash(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
