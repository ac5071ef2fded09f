/**
 * Leader election built once on the {@link Coordinator} primitives, so every implementation elects the same way.
 *
 * The leader is whoever created the key `/shardflow/elections/<election>` (compare-and-set from revision 0) with its
 * lease; the value is the candidate's name. Others watch the key and try again when it is deleted (the leader
 * resigned, or its lease expired and took the key along). Leadership ends with the lease, so a leader that stalls
 * past its TTL loses it and hears so through `onLost` (if it still runs), while another candidate can take over.
 *
 * There is no queue: when the key goes, the waiting candidates race and one wins. That is fair enough for the
 * few candidates shardflow has per election.
 *
 * @example
 * ```ts
 * const lease = await coordinator.grantLease(1000);
 * const leadership = await campaign(coordinator, 'rebalancer', 'node-1', lease);
 * leadership.onLost(() => stopRebalancing());
 * // ... later
 * await leadership.resign();
 * ```
 */
import { CoordinatorError } from '../errors/index.js';
import type { Coordinator, Lease, Leadership } from './coordinator.js';
import { electionKey } from './keys.js';
import { checkKey, checkValue } from './validate.js';

/**
 * Campaigns until elected; rejects if `signal` aborts (with its reason) or the lease is lost first.
 * Campaigning again with the same lease while already leader resolves at once (the key is already ours).
 */
export async function campaign(
  coordinator: Coordinator,
  election: string,
  candidate: string,
  lease: Lease,
  options: { signal?: AbortSignal } = {},
): Promise<Leadership> {
  const key = electionKey(checkKey(election, 'election'));
  checkKey(candidate, 'candidate');
  checkValue(candidate);
  const { signal } = options;
  let leaseLost: Error | undefined;
  let leadership: ElectedLeadership | undefined;
  let interrupt: (() => void) | undefined;
  // The Lease interface cannot remove a listener, so one listener serves both the campaign and the leadership.
  lease.onLost((reason) => {
    leaseLost = reason;
    interrupt?.();
    leadership?.lose(reason);
  });
  while (true) {
    signal?.throwIfAborted();
    if (leaseLost) throw leaseLost;
    const result = await coordinator.compareAndSet(key, 0, candidate, { lease });
    // Already ours (we campaigned before with this lease, e.g. an answer got lost): that is winning too.
    const ours = result.ok
      ? result.revision
      : result.current?.leaseId === lease.id && result.current.value === candidate
        ? result.current.revision
        : undefined;
    if (ours !== undefined) {
      leadership = new ElectedLeadership(coordinator, election, candidate, key, ours);
      if (leaseLost) leadership.lose(leaseLost);
      return leadership;
    }
    if (!result.ok && result.current) {
      await untilGone(coordinator, key, result.current.revision, signal, (wake) => {
        interrupt = wake;
        if (leaseLost) wake();
      });
      interrupt = undefined;
    }
  }
}

/** The candidate leading `election` now, if any. */
export async function leader(coordinator: Coordinator, election: string): Promise<string | undefined> {
  return (await coordinator.get(electionKey(checkKey(election, 'election'))))?.value;
}

class ElectedLeadership implements Leadership {
  private ended = false;
  private lostReason: Error | undefined;
  private readonly listeners: ((reason: Error) => void)[] = [];

  constructor(
    private readonly coordinator: Coordinator,
    readonly election: string,
    readonly candidate: string,
    private readonly key: string,
    private readonly revision: number,
  ) {}

  async resign(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    // Only our own key: if we lost it and someone else leads now, resigning must not unseat them.
    await this.coordinator.compareAndDelete(this.key, this.revision);
  }

  onLost(listener: (reason: Error) => void): void {
    if (this.lostReason) {
      const reason = this.lostReason;
      queueMicrotask(() => listener(reason));
      return;
    }
    this.listeners.push(listener);
  }

  lose(cause: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.lostReason = new CoordinatorError(`lost the leadership of ${this.election}: ${cause.message}`, { cause });
    for (const l of this.listeners.splice(0)) l(this.lostReason);
  }
}

/**
 * Resolves once `key` no longer holds revision `revision` (deleted, or replaced). Watches before checking, so a
 * delete between the check and the watch cannot be missed; no `fromRevision`, so an old revision that the store
 * compacted away does not matter.
 */
async function untilGone(
  coordinator: Coordinator,
  key: string,
  revision: number,
  signal: AbortSignal | undefined,
  setInterrupt: (wake: () => void) => void,
): Promise<void> {
  let wake!: () => void;
  const changed = new Promise<void>((resolve) => (wake = resolve));
  const watch = await coordinator.watch(
    key,
    (e) => {
      if (e.key === key) wake();
    },
    { onError: () => wake() },
  );
  const onAbort = () => wake();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) wake();
  setInterrupt(wake); // Our lease's loss ends the wait: the campaign cannot win with it any more.
  try {
    const current = await coordinator.get(key);
    if (current?.revision !== revision) return;
    await changed;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await watch.close();
  }
}
