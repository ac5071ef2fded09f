/**
 * Group commit of routing-record changes: changes made at once by concurrent jobs land together in fewer
 * compare-and-sets, each is applied exactly once, one that throws fails alone, and a concurrent writer elsewhere
 * (another process's CAS) is retried over, not lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EmbeddedCoordinatorServer, createCoordinator, type Coordinator } from '../../src/coordination/index.js';
import { Catalog } from '../../src/keyspace/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { updateTable } from '../../src/migration/table-updates.js';

const secret = randomBytes(32);
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup(): Promise<{ coordinator: Coordinator; catalog: Catalog; other: Catalog }> {
  const s = new EmbeddedCoordinatorServer({ secret });
  const { port } = await s.listen(0);
  cleanup.push(() => s.close());
  const coordinator = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port, secret });
  cleanup.push(() => coordinator.close());
  const catalog = await Catalog.open(coordinator);
  cleanup.push(() => catalog.close());
  const other = await Catalog.open(coordinator);
  cleanup.push(() => other.close());
  await catalog.create('ns', { scheme: 'hash', slotCount: 64 }, (parts) => new Map(parts.map((p) => [p, 'n1'])));
  return { coordinator, catalog, other };
}

describe('routing-record group commit', () => {
  it('applies 40 concurrent changes once each in fewer CAS writes; a failing change fails alone', async () => {
    const { coordinator, catalog, other } = await setup();
    const before = (await catalog.refresh('ns'))!.epoch;
    const revisionBefore = (await coordinator.get('/shardflow/namespaces/ns'))!.revision;
    let calls = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, p) =>
        updateTable({ catalog }, 'ns', (t) => {
          calls++;
          if (p === 7) throw new InvalidArgumentError('no');
          return t.withOwners(new Map([[p, 'n2']]));
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect((results[7] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidArgumentError);
    const after = (await other.refresh('ns'))!;
    expect(after.partitionsOf('n2')).toHaveLength(39);
    expect(after.ownerOf(7)).toBe('n1');
    expect(after.epoch - before).toBe(39); // each change applied once
    // Only this key is written, so the store's revision counts the CAS writes: far fewer than the changes.
    const writes = (await coordinator.get('/shardflow/namespaces/ns'))!.revision - revisionBefore;
    expect(writes).toBeLessThan(10);
    expect(calls).toBeGreaterThanOrEqual(40);
  });

  it('retries over a change another process made meanwhile, keeping both', async () => {
    const { catalog, other } = await setup();
    const mine = updateTable({ catalog }, 'ns', (t) => t.withOwners(new Map([[1, 'n3']])));
    await other.update('ns', (t) => t.withOwners(new Map([[2, 'n4']])));
    await mine;
    const t = (await other.refresh('ns'))!;
    expect(t.ownerOf(1)).toBe('n3');
    expect(t.ownerOf(2)).toBe('n4');
  });
});
