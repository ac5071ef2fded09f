/**
 * The target's side of copying one partition (see migration-service.ts): pull the source's read snapshot in pages of
 * stored bytes and write them as they are, at the rate the driver allows; the source's change log is then replayed
 * on top.
 *
 * A target that already holds entries of the partition — a follower back after a restart or after its leader dropped
 * it, or an earlier attempt that stopped half way — compares instead of copying it all (as a Redis replica's partial
 * resync or a Kafka follower's truncate-and-fetch spare a full copy): it pulls the snapshot's digests (key, version,
 * size, hash of the stored bytes), fetches only the entries it lacks or holds otherwise, and deletes those the source
 * does not have. What it keeps is then byte for byte what the snapshot holds, as after a full copy.
 */
import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { TokenBucket } from '../autoscale/index.js';
import type { Peer } from '../wire/index.js';
import type { EntryDigest, Location, RawEntry, StorageEngine, StoredEntry } from './engine.js';

/** Most entries per page. */
export const PAGE = 1000;
/** Most value bytes per copied page: a page is read, sent and written in one go on each node's event loop. */
export const PAGE_BYTES = 256 * 1024;
/** Most digests per page of a compare, and most stored bytes hashed for one (hashing runs on the event loop). */
export const DIGEST_PAGE = 2000;
export const DIGEST_BYTES = 1024 * 1024;

/** One partition coming in. */
export interface Import {
  job: string;
  ns: string;
  partition: number;
  location: Location;
  bounds: { start?: string; end?: string | null };
  peer: Peer;
  lastSeq: number;
  /** Keys in place so far: copied, or found here already (the progress the driver shows). */
  copiedKeys: number;
  /** A compare (see the module comment): entries found here already, fetched, and deleted. */
  keptKeys: number;
  fetchedKeys: number;
  deletedKeys: number;
  /** Set when the import is aborted: a loop still running must write nothing more (a new import may have begun). */
  cancelled: boolean;
  /** The partition's size at the source (stored bytes), if the driver said. */
  sourceBytes: number | undefined;
  bytesPerKey: number;
  /** Holds the copy to the driver's rate; undefined when unlimited. */
  bucket: TokenBucket | undefined;
  rate: number | undefined;
}

/**
 * Copies the source's snapshot of the partition here — comparing, when entries of it are here already and it is
 * bigger than a page (a smaller one comes whole in one call, and a compare takes two); returns the keys in place.
 */
export async function importSnapshot(engine: StorageEngine, i: Import): Promise<number> {
  if ((i.sourceBytes ?? 0) > PAGE_BYTES && engine.keys(i.location, i.bounds, 1).length > 0) return compareAndFetch(engine, i);
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
    checkLive(i);
    await writePage(engine, i.location, page.entries);
    i.copiedKeys += page.entries.length;
    await throttle(i, page.entries.length);
    if (page.done || page.entries.length === 0) return i.copiedKeys;
    after = page.entries[page.entries.length - 1]!.key;
  }
}

/** Brings the entries here to the source's snapshot by digests: fetches what differs, deletes what it lacks. */
async function compareAndFetch(engine: StorageEngine, i: Import): Promise<number> {
  let after: string | undefined;
  for (;;) {
    const page = await i.peer.call<{ entries: EntryDigest[]; done: boolean }>('mig.export.digest', {
      job: i.job,
      partition: i.partition,
      after,
      limit: DIGEST_PAGE,
    });
    checkLive(i);
    const theirs = page.entries;
    const done = page.done || theirs.length === 0;
    // Ours in the same span of keys: (after, their last] — (after, last) by the store's own order, and `last` by
    // itself — or to the end of the partition with their last page.
    const last = done ? undefined : theirs[theirs.length - 1]![0];
    const ours = new Map<string, EntryDigest>();
    for (let from = after; ; ) {
      const got = engine.digest(i.location, { start: i.bounds.start, end: last ?? i.bounds.end, after: from, limit: DIGEST_PAGE, maxBytes: DIGEST_BYTES });
      for (const d of got.entries) ours.set(d[0], d);
      if (got.done) break;
      from = got.entries[got.entries.length - 1]![0];
    }
    if (last !== undefined) for (const d of engine.digestOf(i.location, [last])) ours.set(d[0], d);
    const fetch: EntryDigest[] = [];
    for (const d of theirs) {
      const mine = ours.get(d[0]);
      ours.delete(d[0]);
      if (mine && mine[1] === d[1] && mine[2] === d[2] && mine[3] === d[3]) i.keptKeys++;
      else fetch.push(d);
    }
    for (let k = 0; k < fetch.length; ) {
      // Pages of at most PAGE keys and about PAGE_BYTES, by the sizes the digests give.
      const keys: string[] = [];
      for (let bytes = 0; k < fetch.length && keys.length < PAGE && (keys.length === 0 || bytes + fetch[k]![2] <= PAGE_BYTES); k++) {
        keys.push(fetch[k]![0]);
        bytes += fetch[k]![2];
      }
      const got = await i.peer.call<{ entries: RawEntry[] }>('mig.export.get', { job: i.job, partition: i.partition, keys });
      checkLive(i);
      await writePage(engine, i.location, got.entries);
      i.fetchedKeys += got.entries.length;
      await throttle(i, got.entries.length);
    }
    if (ours.size > 0) {
      checkLive(i);
      await engine.importEntries(i.location, [...ours.keys()].map((key) => ({ key, deleted: true, version: 0 })));
      i.deletedKeys += ours.size;
    }
    i.copiedKeys += theirs.length;
    if (done) return i.copiedKeys;
    after = theirs[theirs.length - 1]![0];
  }
}

/** @throws UnavailableError once the import was aborted. */
export function checkLive(i: Import): void {
  if (i.cancelled) throw new UnavailableError(`the import of ${i.ns}/${i.partition} under job ${i.job} was aborted`);
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
