/**
 * The client's view of cluster membership: every node's address and state, kept current by a watch, so a request
 * can wait for a restarting node instead of failing at once.
 */
import type { Coordinator, Watch } from '../coordination/coordinator.js';
import { MEMBERS_PREFIX } from '../coordination/keys.js';

/** A member as registered (see coordination/membership). */
export interface MemberRecord {
  id: string;
  role: 'storage' | 'compute';
  address: string;
  capacity: number;
  state: string;
  pid?: number;
  startedAt?: string;
  [extra: string]: unknown;
}

export class MemberView {
  private readonly members = new Map<string, MemberRecord>();
  private readonly waiters = new Set<() => void>();
  /** `ready()` answers by role, rebuilt only when membership changes (it is on every service call's path). */
  private readyCache = new Map<string, MemberRecord[]>();
  private watch: Watch | undefined;

  static async open(coordinator: Coordinator): Promise<MemberView> {
    const view = new MemberView();
    for (const e of await coordinator.list(MEMBERS_PREFIX)) view.accept(e.key, e.value);
    view.watch = await coordinator.watch(MEMBERS_PREFIX, (event) => {
      if (event.type === 'put' && event.value !== undefined) view.accept(event.key, event.value);
      else view.members.delete(event.key.slice(MEMBERS_PREFIX.length));
      view.readyCache = new Map();
      for (const w of [...view.waiters]) w();
    });
    return view;
  }

  private accept(key: string, value: string): void {
    try {
      const m = JSON.parse(value) as MemberRecord;
      this.members.set(key.slice(MEMBERS_PREFIX.length), m);
    } catch {
      // A member record we cannot read is treated as absent.
    }
  }

  /** Every member known now. */
  all(): MemberRecord[] {
    return [...this.members.values()];
  }

  get(id: string): MemberRecord | undefined {
    return this.members.get(id);
  }

  /** Members in state `ready`, optionally of one role, in id order. */
  ready(role?: 'storage' | 'compute'): readonly MemberRecord[] {
    const cacheKey = role ?? '*';
    let list = this.readyCache.get(cacheKey);
    if (!list) {
      list = this.all()
        .filter((m) => m.state === 'ready' && (role === undefined || m.role === role))
        .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
      this.readyCache.set(cacheKey, list);
    }
    return list;
  }

  /** The member if it is ready, waiting for it until `deadline` (ms since epoch); undefined if it does not come. */
  async waitFor(id: string, deadline: number): Promise<MemberRecord | undefined> {
    for (;;) {
      const m = this.members.get(id);
      if (m && m.state === 'ready') return m;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  async close(): Promise<void> {
    await this.watch?.close();
    for (const w of [...this.waiters]) w();
  }
}
