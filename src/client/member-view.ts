/**
 * The client's view of cluster membership: every node's address and state, kept current by
 * {@link watchMembers} (which also re-lists after a broken watch), so a request can wait for a restarting node
 * instead of failing at once.
 */
import type { Coordinator } from '../coordination/coordinator.js';
import { watchMembers, type MemberInfo, type MembershipWatch } from '../coordination/index.js';

/** A member as registered (see coordination/membership). */
export type MemberRecord = MemberInfo;

export class MemberView {
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<() => void>();
  /** `ready()` answers by role, rebuilt only when membership changes (it is on every service call's path). */
  private readyCache = new Map<string, MemberRecord[]>();
  private watch!: MembershipWatch;

  static async open(coordinator: Coordinator): Promise<MemberView> {
    const view = new MemberView();
    view.watch = await watchMembers(coordinator, () => {
      view.readyCache = new Map();
      for (const w of [...view.waiters]) w();
      for (const l of [...view.listeners]) l();
    });
    return view;
  }

  /** Calls `listener` after every change of membership; returns what stops it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every member known now. */
  all(): MemberRecord[] {
    return [...this.watch.members.values()];
  }

  get(id: string): MemberRecord | undefined {
    return this.watch.members.get(id);
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
      const m = this.get(id);
      // A stopping storage node still answers for what it leads until it has handed that off.
      if (m && (m.state === 'ready' || m.state === 'stopping')) return m;
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
    await this.watch.close();
    for (const w of [...this.waiters]) w();
  }
}
