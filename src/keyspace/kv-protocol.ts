/**
 * The shapes of key-value answers that storage nodes send and clients read. Both sides import them from here, so
 * neither reaches into the other's code.
 */

/** `kv.get` answer for a present key. */
export interface KvEntry {
  value: unknown;
  version: number;
}

/** A page of a scan, and where the next page starts (`null` when the partition or range is done). */
export interface ScanPage {
  entries: { key: string; value: unknown; version: number }[];
  next: { after: string } | { from: string } | null;
}
