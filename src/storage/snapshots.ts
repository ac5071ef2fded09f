/**
 * Read snapshots lent to clients for consistent scans (`kv export`). Each is an LMDB read transaction, so they are
 * bounded in number and in idle time, and released when the connection that opened them closes.
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import type { Connection } from '../wire/index.js';
import type { ReadSnapshot, StorageEngine } from './engine.js';

export const MAX_OPEN_SNAPSHOTS = 32;
export const SNAPSHOT_IDLE_MS = 60_000;

interface Held {
  snapshot: ReadSnapshot;
  lastUsed: number;
  connection: Connection | undefined;
}

export class SnapshotRegistry {
  private readonly held = new Map<string, Held>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly engine: StorageEngine) {
    this.sweeper = setInterval(() => this.sweep(), 5000);
    this.sweeper.unref();
  }

  /** Opens a snapshot for `connection`; it is released when that connection closes. */
  open(connection?: Connection): { id: string; idleMs: number } {
    if (this.held.size >= MAX_OPEN_SNAPSHOTS) {
      throw new UnavailableError(`this node already holds ${MAX_OPEN_SNAPSHOTS} snapshots; try again later`);
    }
    const id = randomUUID();
    this.held.set(id, { snapshot: this.engine.openSnapshot(), lastUsed: Date.now(), connection });
    connection?.once('close', () => this.release(id));
    return { id, idleMs: SNAPSHOT_IDLE_MS };
  }

  /** The snapshot with this id (and keeps it from idling out). */
  use(id: unknown): ReadSnapshot {
    const h = typeof id === 'string' ? this.held.get(id) : undefined;
    if (!h) throw new InvalidArgumentError(`no open snapshot ${String(id)} (released, or idle for over ${SNAPSHOT_IDLE_MS} ms)`);
    h.lastUsed = Date.now();
    return h.snapshot;
  }

  release(id: unknown): boolean {
    const h = typeof id === 'string' ? this.held.get(id) : undefined;
    if (!h) return false;
    this.held.delete(id as string);
    h.snapshot.release();
    return true;
  }

  get size(): number {
    return this.held.size;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const id of [...this.held.keys()]) this.release(id);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, h] of this.held) if (now - h.lastUsed > SNAPSHOT_IDLE_MS) this.release(id);
  }
}
