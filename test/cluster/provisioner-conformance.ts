/**
 * The one test suite every {@link Provisioner} must pass, against a real local cluster: counts, refusals, compute
 * scale-out and drained scale-in, storage scale-out with data moved online and scale-in that hands the data over
 * before the node stops. Each implementation's test file calls {@link provisionerConformance} with a factory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { connect, type ShardflowClient } from '../../src/client/index.js';
import type { Provisioner } from '../../src/cluster/provisioner.js';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { load, missingKeys, SMALL_SLOTS, startSmallCluster, type SmallCluster } from './small-cluster.js';

export const SERVICES = join(import.meta.dirname, '..', '..', 'examples', 'services.ts');
const KEYS = 1000;

/**
 * Registers the suite. `make` builds the provisioner under test for a cluster that starts with one storage node (its
 * `default` namespace holding {@link KEYS} keys) and no compute node; the services module is examples/services.ts.
 */
export function provisionerConformance(name: string, make: (cluster: SmallCluster) => Promise<Provisioner>): void {
  describe(`Provisioner conformance: ${name}`, () => {
    let cluster: SmallCluster;
    let provisioner: Provisioner;
    let client: ShardflowClient;

    beforeAll(async () => {
      cluster = await startSmallCluster({ storage: 1, compute: 0, services: SERVICES });
      client = await cluster.client();
      await load(client, KEYS);
      provisioner = await make(cluster);
    });
    afterAll(async () => {
      await provisioner?.close();
      await cluster?.stop();
    });

    /** Node ids of `tier` registered and ready, as a client that connects now sees them. */
    async function readyIds(tier: 'storage' | 'compute'): Promise<string[]> {
      const fresh = await connect({ dir: cluster.dir, name: 'conformance' });
      try {
        return fresh.members.ready(tier).map((m) => m.id);
      } finally {
        await fresh.close();
      }
    }

    it('counts the nodes of each tier', async () => {
      expect(provisioner.kind).toMatch(/\w/);
      expect(await provisioner.count('storage')).toBe(1);
      expect(await provisioner.count('compute')).toBe(0);
    });

    it('refuses a count or tier it cannot honour, before anything changes', async () => {
      for (const [tier, count] of [
        ['storage', 0],
        ['compute', -1],
        ['compute', 1.5],
        ['storage', 65],
        ['gpu', 1],
      ] as const) {
        await expect(provisioner.scaleTo(tier as 'storage', count, 'test')).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(await provisioner.count('storage')).toBe(1);
      expect(await provisioner.count('compute')).toBe(0);
    });

    it('treats the current count as nothing to do', async () => {
      expect(await provisioner.scaleTo('storage', 1, 'test')).toMatchObject({ tier: 'storage', from: 1, to: 1 });
      expect(await readyIds('storage')).toEqual(['s1']);
    });

    it('scales compute out: the new instances are ready and serve calls when it resolves', async () => {
      const outcome = await provisioner.scaleTo('compute', 2, 'conformance: compute out');
      expect(outcome).toMatchObject({ tier: 'compute', from: 0, to: 2 });
      expect(await provisioner.count('compute')).toBe(2);
      expect(await readyIds('compute')).toHaveLength(2);
      const fresh = await connect({ dir: cluster.dir, name: 'conformance' });
      try {
        const seen = await Promise.all(Array.from({ length: 8 }, () => fresh.call<string>('whoami')));
        expect(new Set(seen).size).toBe(2);
      } finally {
        await fresh.close();
      }
    });

    it('scales compute in: calls running on the leaving instances finish first', async () => {
      const fresh = await connect({ dir: cluster.dir, name: 'conformance' });
      try {
        const calls = Array.from({ length: 4 }, () => fresh.call<string>('sleep', { ms: 600 }));
        const outcome = await provisioner.scaleTo('compute', 0, 'conformance: compute in');
        expect(outcome).toMatchObject({ tier: 'compute', from: 2, to: 0 });
        const answers = await Promise.allSettled(calls);
        expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      } finally {
        await fresh.close();
      }
      expect(await provisioner.count('compute')).toBe(0);
      expect(await readyIds('compute')).toEqual([]);
    });

    it('scales storage out: the new node takes its share of the data, online', async () => {
      const outcome = await provisioner.scaleTo('storage', 2, 'conformance: storage out');
      expect(outcome).toMatchObject({ tier: 'storage', from: 1, to: 2 });
      expect(await provisioner.count('storage')).toBe(2);
      expect(await readyIds('storage')).toEqual(['s1', 's2']);
      const table = await client.catalog.refresh('default');
      expect(table!.partitionsOf('s2')).toHaveLength(SMALL_SLOTS / 2);
      expect(await missingKeys(client, KEYS)).toEqual([]);
    });

    it('scales storage in: the leaving node hands its data over before it stops', async () => {
      const outcome = await provisioner.scaleTo('storage', 1, 'conformance: storage in');
      expect(outcome).toMatchObject({ tier: 'storage', from: 2, to: 1 });
      expect(await provisioner.count('storage')).toBe(1);
      expect(await readyIds('storage')).toEqual(['s1']);
      const table = await client.catalog.refresh('default');
      expect(table!.partitionsOf('s1')).toHaveLength(SMALL_SLOTS);
      expect(await missingKeys(client, KEYS)).toEqual([]);
    });
  });
}
