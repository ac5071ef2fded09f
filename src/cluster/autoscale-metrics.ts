/**
 * What the autoscaler loop measures: one metric summed over the ready nodes of a tier, from each node's
 * `node.stats` (the same numbers `shardflow status` shows).
 *
 * @module
 */
import { PeerPool, type MemberView } from '../client/index.js';
import type { Tier } from './provisioner.js';

/**
 * The metrics each tier's nodes report, which a policy may scale on. Storage: `bytes` and `keys` held (as leader),
 * `opsPerSec` (kv requests served, over a short sliding window); compute: `callsPerSec` (completed, over a short
 * sliding window) and `inFlight` (calls running at the moment of the sample).
 */
export const TIER_METRICS: Readonly<Record<Tier, readonly string[]>> = Object.freeze({
  storage: Object.freeze(['bytes', 'keys', 'opsPerSec']),
  compute: Object.freeze(['callsPerSec', 'inFlight']),
});

/** One sample of a tier. */
export interface TierSample {
  tier: Tier;
  metric: string;
  /** The ready nodes of the tier, in id order. */
  nodes: string[];
  /** The metric per node that answered. */
  values: Record<string, number>;
  /** The sum over the nodes that answered. */
  total: number;
  /** Nodes that did not answer (or answered without the metric), with why. */
  missing: { id: string; error: string }[];
}

/**
 * Reads one metric from every ready node of a tier, over connections kept between samples.
 *
 * @example
 * ```ts
 * const sampler = new StatsSampler(client.members, secret);
 * const s = await sampler.sample('compute', 'inFlight'); // { nodes: ['c1', 'c2'], total: 7, ... }
 * sampler.close();
 * ```
 */
export class StatsSampler {
  private readonly pool: PeerPool;

  constructor(
    private readonly members: MemberView,
    secret: Uint8Array,
    private readonly timeoutMs = 2000,
  ) {
    this.pool = new PeerPool(members, secret, 'autoscaler');
  }

  async sample(tier: Tier, metric: string): Promise<TierSample> {
    const ready = this.members.ready(tier);
    const out: TierSample = { tier, metric, nodes: ready.map((m) => m.id), values: {}, total: 0, missing: [] };
    await Promise.all(
      ready.map(async (m) => {
        try {
          const peer = this.pool.peerAt(m.id, m.address, Date.now() + this.timeoutMs);
          const stats = await peer.call<Record<string, unknown>>('node.stats', null, { timeoutMs: this.timeoutMs });
          const value = stats?.[metric];
          if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
            out.missing.push({ id: m.id, error: `node.stats has no ${metric}` });
          } else {
            out.values[m.id] = value;
          }
        } catch (err) {
          out.missing.push({ id: m.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
        }
      }),
    );
    out.total = Object.values(out.values).reduce((a, b) => a + b, 0);
    out.missing.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
    return out;
  }

  close(): void {
    this.pool.close();
  }
}
