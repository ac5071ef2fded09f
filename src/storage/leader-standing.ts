/**
 * Whether this storage node may act as the leader of its replicated partitions right now — a read lease on its
 * membership, so that a leader cut off from the coordinator stops serving before anyone can replace it.
 *
 * The replica controller fails a node's partitions over only once the node's membership lease has expired at the
 * coordinator, and the lease is surely held until {@link Lease.heldUntil} (the sending of the last acknowledged
 * keep-alive plus the TTL): before then no successor can exist, so reads served before then are not stale. A small
 * margin covers clocks that run at slightly different rates.
 *
 * A lease that lapsed is followed by a re-registration with a new lease, but this node's routing tables may predate
 * a failover made meanwhile. It leads again only after it has re-registered, waited long enough for a controller that
 * saw it die to have written any failover, and re-read every namespace's routing. (Lease expiry is final, so a node
 * whose keep-alive was answered after a delay was never replaced: it simply goes on.)
 */
import type { Catalog } from '../keyspace/index.js';
import type { Lease } from '../coordination/coordinator.js';
import type { Logger } from '../util/logger.js';

export interface StandingOptions {
  /** Stop this long before the lease's end (default: a tenth of the TTL, at most 100 ms). */
  marginMs?: number;
  /** After re-registering, wait this long before re-reading the routing (default: twice the TTL). */
  settleMs?: number;
}

/** What the standing needs of the node's membership registration. */
export interface LeasedRegistration {
  /** The current lease (a new one after a re-registration). */
  readonly lease: Lease;
  onLost(listener: (reason: Error) => void): void;
}

const RETRY_MS = 200;

export class LeaderStanding {
  /** Set from a lost lease until the routing has been re-read under a new one. */
  private rejoining = false;
  private generation = 0;
  private closed = false;

  constructor(
    private readonly registration: LeasedRegistration,
    private readonly catalog: Catalog,
    private readonly log: Logger,
    private readonly options: StandingOptions = {},
  ) {
    registration.onLost(() => this.lapsed());
  }

  /** Whether requests for partitions this node leads may be served now. */
  mayLead(): boolean {
    if (this.rejoining) return false;
    const lease = this.registration.lease;
    return performance.now() < lease.heldUntil - this.margin(lease);
  }

  /** Why not, for the refusal's message. */
  why(): string {
    return this.rejoining
      ? 'its membership lease lapsed and it is rejoining (re-reading the routing)'
      : 'its membership lease may have lapsed (no keep-alive acknowledged in time)';
  }

  close(): void {
    this.closed = true;
  }

  private margin(lease: Lease): number {
    return this.options.marginMs ?? Math.min(100, lease.ttlMs / 10);
  }

  private lapsed(): void {
    const lost = this.registration.lease;
    const generation = ++this.generation;
    this.rejoining = true;
    void this.rejoin(lost, generation);
  }

  private async rejoin(lost: Lease, generation: number): Promise<void> {
    const current = () => !this.closed && generation === this.generation;
    // A new lease first: the registration's own loop grants it and writes the member record again.
    while (current() && (this.registration.lease === lost || this.registration.lease.heldUntil <= performance.now())) {
      await sleep(RETRY_MS);
    }
    await sleep(this.options.settleMs ?? 2 * this.registration.lease.ttlMs);
    while (current()) {
      try {
        for (const name of this.catalog.names()) await this.catalog.refresh(name);
        if (!current()) return;
        this.rejoining = false;
        this.log.info('leading again after a lapsed membership lease: routing re-read');
        return;
      } catch (err) {
        this.log.warn('could not re-read the routing after a lapsed lease; retrying', { error: String(err) });
        await sleep(RETRY_MS);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
