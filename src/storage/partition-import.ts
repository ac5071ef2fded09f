/**
 * The target's side of copying one partition (see migration-service.ts): pull the source's read snapshot in pages of
 * stored bytes and write them as they are, at the rate the driver allows; the source's change log is then replayed
 * on top. Whatever an earlier attempt left here is not to be trusted: the copy starts from nothing.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { TokenBucket } from '../autoscale/index.js';
import type { Peer } from '../wire/index.js';
import type { Location, RawEntry, StorageEngine, StoredEntry } from './engine.js';

/** Most entries per page. */
export const PAGE = 1000;
/** Most value bytes per copied page: a page is read, sent and written in one go on each node's event loop. */
export const PAGE_BYTES = 256 * 1024;

/** One partition coming in. */
export interface Import {
  job: string;
  ns: string;
  partition: number;
  location: Location;
  bounds: { start?: string; end?: string | null };
  peer: Peer;
  lastSeq: number;
  copiedKeys: number;
  bytesPerKey: number;
  /** Holds the copy to the driver's rate; undefined when unlimited. */
  bucket: TokenBucket | undefined;
  rate: number | undefined;
}

/** Copies the source's snapshot of the partition here; returns the entries written. */
export async function importSnapshot(engine: StorageEngine, i: Import): Promise<number> {
  await engine.dropPartition(i.location, i.bounds);
  let after: string | undefined;
  for (;;) {
    const page = await i.peer.call<{ entries: (RawEntry | StoredEntry)[]; done: boolean }>('mig.export.page', {
      job: i.job,
      partition: i.partition,
      after,
      limit: pageKeys(i),
      raw: true,
    });
    await writePage(engine, i.location, page.entries);
    i.copiedKeys += page.entries.length;
    await throttle(i, page.entries.length);
    if (page.done || page.entries.length === 0) return i.copiedKeys;
    after = page.entries[page.entries.length - 1]!.key;
  }
}

/** Writes a copied page: stored bytes as they are (a source that sends decoded values is older; those are encoded here). */
async function writePage(engine: StorageEngine, location: Location, entries: (RawEntry | StoredEntry)[]): Promise<void> {
  if (entries.length === 0) return;
  if ('raw' in entries[0]!) {
    for (const e of entries) {
      if (!('raw' in e) || !(e.raw instanceof Uint8Array)) throw new InvalidArgumentError('a raw page holds an entry without its stored bytes');
    }
    return engine.importRaw(location, entries as RawEntry[]);
  }
  return engine.importEntries(location, entries as StoredEntry[]);
}

/** Sets an import's copy rate; undefined or not a positive number: unlimited. */
export function setRate(i: Import, bytesPerSec: number | undefined): void {
  if (bytesPerSec === undefined || !Number.isFinite(bytesPerSec) || bytesPerSec <= 0 || i.bytesPerKey === 0) {
    i.bucket = undefined;
    i.rate = undefined;
    return;
  }
  // Pages of about a tenth of a second at this rate, and a bucket of two pages: the limit holds over short spans too.
  i.rate = bytesPerSec;
  const burst = pageKeys(i) * i.bytesPerKey * 2;
  if (!i.bucket || i.bucket.burst !== burst) i.bucket = new TokenBucket(bytesPerSec, burst);
  else i.bucket.setRate(bytesPerSec, performance.now());
}

/**
 * Entries per page: at most PAGE_BYTES of values (a page is read, encoded, decoded and written in one go on each
 * node's event loop, so big pages stall foreground requests), and about 100 ms worth at the import's rate.
 */
function pageKeys(i: Import): number {
  if (i.bytesPerKey === 0) return PAGE;
  const bySize = Math.floor(PAGE_BYTES / i.bytesPerKey);
  const byRate = i.rate === undefined ? PAGE : Math.floor(i.rate / 10 / i.bytesPerKey);
  return Math.max(1, Math.min(PAGE, bySize, byRate));
}

/** Waits until the bucket allows the bytes of `keys` copied entries. */
async function throttle(i: Import, keys: number): Promise<void> {
  const amount = keys * i.bytesPerKey;
  for (;;) {
    const bucket = i.bucket;
    if (!bucket || amount === 0) return;
    const wait = bucket.take(performance.now(), Math.min(amount, bucket.burst));
    if (wait === 0) return;
    await new Promise((r) => setTimeout(r, Math.min(wait, 250))); // re-check: the rate may change meanwhile
  }
}
