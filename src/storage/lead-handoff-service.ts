/**
 * A storage node's part in handing the lead of partitions to one of their in-sync followers (preferred-leader
 * balancing, as Kafka's preferred replica election does; the driver is migration/lead-handoff.ts):
 *
 *   lead.fence { job, ns, partitions, to }   hold the partitions' requests; wait until every in-sync follower holds
 *                                            every write committed here -> { ok }
 *   lead.end   { job }                       release the held requests (answered MOVED if the lead has passed)
 *
 * Between the two the driver writes the new leader with one compare-and-set. No data moves: the follower already
 * has it, and the wait makes sure it has all of it — a write this node committed but could not ship fails the
 * fence (that follower is then being dropped), so the lead never passes to a copy that lacks a write, and the old
 * leader, now a follower, holds nothing its new leader does not. A driver that dies between the two leaves the
 * requests held for at most {@link LEAD_FENCE_LIMIT_MS}; the routing record then decides who answers them.
 */
import type { Catalog } from '../keyspace/index.js';
import { InvalidArgumentError, UnavailableError, UnknownMethodError } from '../errors/index.js';
import type { StorageEngine } from './engine.js';
import type { KvService } from './kv-service.js';
import type { Replicator } from './replicator.js';

/** The longest a handoff holds a partition's requests if its driver never ends it. */
export const LEAD_FENCE_LIMIT_MS = 5000;
const MAX_PARTITIONS = 100_000;

interface Held {
  ns: string;
  partitions: number[];
  timer: NodeJS.Timeout;
}

export class LeadHandoffService {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly nodeId: string,
    private readonly engine: StorageEngine,
    private readonly catalog: Catalog,
    private readonly kv: KvService,
    private readonly replicator: Pick<Replicator, 'barrier'>,
  ) {}

  async handle(method: string, raw: unknown): Promise<unknown> {
    if (typeof raw !== 'object' || raw === null) throw new InvalidArgumentError('parameters must be an object');
    const p = raw as Record<string, unknown>;
    const job = p.job;
    if (typeof job !== 'string' || job.length === 0 || job.length > 100) throw new InvalidArgumentError('job must be a job id');
    switch (method) {
      case 'lead.fence':
        return this.fence(job, p);
      case 'lead.end':
        return this.end(job);
      default:
        throw new UnknownMethodError(`unknown method ${method}`);
    }
  }

  private async fence(job: string, p: Record<string, unknown>): Promise<{ ok: true }> {
    const { ns, partitions, to } = p;
    if (typeof ns !== 'string' || ns === '') throw new InvalidArgumentError('ns must be a namespace name');
    if (typeof to !== 'string' || to === '') throw new InvalidArgumentError('to must be a node id');
    if (!Array.isArray(partitions) || partitions.length === 0 || partitions.length > MAX_PARTITIONS) {
      throw new InvalidArgumentError(`partitions must be a list of 1 to ${MAX_PARTITIONS} partition numbers`);
    }
    if (this.held.has(job)) throw new InvalidArgumentError(`handoff ${job} already holds its partitions`);
    const table = await this.catalog.refresh(ns);
    if (!table) throw new InvalidArgumentError(`no namespace ${ns}`);
    const followers = new Set<string>();
    for (const partition of partitions) {
      if (typeof partition !== 'number' || !Number.isInteger(partition) || table.ownerOf(partition) === undefined) {
        throw new InvalidArgumentError(`bad partition ${String(partition)}`);
      }
      if (table.ownerOf(partition) !== this.nodeId) throw new UnavailableError(`${ns}/${partition} is not led by ${this.nodeId} (it changed meanwhile?)`);
      if (!table.followersOf(partition).includes(to)) throw new UnavailableError(`${to} is not an in-sync follower of ${ns}/${partition}`);
      if (table.migrationOf(partition)) throw new UnavailableError(`${ns}/${partition} is moving`);
      for (const f of table.followersOf(partition)) followers.add(f);
    }
    const held: Held = {
      ns,
      partitions: partitions as number[],
      timer: setTimeout(() => void this.end(job), LEAD_FENCE_LIMIT_MS),
    };
    held.timer.unref();
    this.held.set(job, held);
    try {
      await this.hold(ns, held.partitions, [...followers]); // released by `end`, once the outcome is known
    } catch (err) {
      await this.end(job);
      throw new UnavailableError(`the followers of ${ns} did not confirm every write; the lead stays here`, { cause: err });
    }
    return { ok: true };
  }

  /**
   * Holds the requests of `partitions`, commits what was accepted before and waits until `followers` have applied
   * it; resolves with the release (on failure, releases and throws). The moment a lead handoff needs, and a merge of
   * replicated ranges (range-maintainer.ts): after it, no write to those partitions is committed or in flight.
   */
  async hold(ns: string, partitions: number[], followers: readonly string[]): Promise<() => void> {
    for (const p of partitions) this.kv.fence(ns, p);
    const release = () => partitions.forEach((p) => this.kv.unfence(ns, p));
    try {
      await this.engine.settle(); // writes taken before the hold have committed, so their changes are on the streams
      if (followers.length > 0) await this.replicator.barrier(followers);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  private async end(job: string): Promise<{ ended: boolean }> {
    const held = this.held.get(job);
    if (!held) return { ended: false };
    this.held.delete(job);
    clearTimeout(held.timer);
    // Learn the outcome before answering the held requests, so those of a partition that changed lead get MOVED.
    await this.catalog.refresh(held.ns).catch(() => undefined);
    for (const partition of held.partitions) this.kv.unfence(held.ns, partition);
    return { ended: true };
  }
}
