/**
 * Durable snapshots of the embedded coordinator's state in one file.
 *
 * A save writes the whole state to a temporary file, fsyncs it, renames it over the old one and fsyncs the folder:
 * after a crash the file holds either the old or the new state, never a mix. Saves are coalesced: requests that
 * arrive while a save runs share the next one, so a burst of N mutations costs two writes, not N.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CoordinatorError } from '../errors/index.js';
import type { WatchEvent } from './coordinator.js';

/** What the file holds. Leases are left out on purpose: their owners re-register after a restart. */
export interface Snapshot {
  format: 1;
  /** The store's identity: revisions are comparable only within one store. */
  storeId: string;
  /** The store's global revision; it survives restarts so revisions never repeat. */
  revision: number;
  /** `[key, value, revision, leaseId or null]`, in key order. */
  entries: [string, string, number, string | null][];
  /** The newest events, so watchers that reconnect after a restart can resume without a gap. */
  history: WatchEvent[];
}

interface Waiter {
  resolve(revision: number): void;
  reject(err: Error): void;
}

export class SnapshotFile {
  private waiting: Waiter[] = [];
  private running: Promise<void> | undefined;

  /** `take` captures the state to write; it is called when a save starts, not when it is requested. */
  constructor(
    readonly path: string,
    private readonly take: () => Snapshot,
  ) {}

  /** Reads the file; `undefined` when there is none yet. A damaged file is an error, not an empty store. */
  async load(): Promise<Snapshot | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CoordinatorError(`cannot read the coordinator state at ${this.path}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CoordinatorError(`the coordinator state at ${this.path} is not valid JSON`, { cause: err });
    }
    if (!isSnapshot(parsed)) throw new CoordinatorError(`the coordinator state at ${this.path} has an unknown format`);
    return parsed;
  }

  /**
   * Resolves with the saved revision once a save that began after this call is durable; rejects with a
   * {@link CoordinatorError} if that save failed.
   */
  requestSave(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Waits for the save in progress (and those queued behind it). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0);
        const snapshot = this.take();
        try {
          await this.write(snapshot);
          for (const w of batch) w.resolve(snapshot.revision);
        } catch (err) {
          const failure = new CoordinatorError(`cannot save the coordinator state to ${this.path}`, { cause: err });
          for (const w of batch) w.reject(failure);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async write(snapshot: Snapshot): Promise<void> {
    const tmp = `${this.path}.tmp-${process.pid}`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(snapshot));
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    // The rename is durable only once the folder's entry is on disk too.
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

function isSnapshot(value: unknown): value is Snapshot {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Snapshot>;
  return (
    v.format === 1 &&
    typeof v.storeId === 'string' &&
    typeof v.revision === 'number' &&
    Array.isArray(v.entries) &&
    v.entries.every(
      (e) =>
        Array.isArray(e) &&
        typeof e[0] === 'string' &&
        typeof e[1] === 'string' &&
        typeof e[2] === 'number' &&
        (e[3] === null || typeof e[3] === 'string'),
    ) &&
    Array.isArray(v.history) &&
    v.history.every((h) => typeof h === 'object' && h !== null && typeof h.revision === 'number')
  );
}
