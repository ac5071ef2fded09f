/**
 * The catalog follows the coordinator through a broken watch: after a memory-only embedded coordinator restarts (its
 * revisions start over, so the old watch cannot resume), a namespace created on the new one still reaches it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EmbeddedCoordinatorServer, createCoordinator, type Coordinator } from '../../src/coordination/index.js';
import { Catalog, type RoutingTable } from '../../src/keyspace/index.js';

const secret = randomBytes(32);
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

async function server(port = 0): Promise<{ server: EmbeddedCoordinatorServer; port: number }> {
  const s = new EmbeddedCoordinatorServer({ secret });
  const bound = await s.listen(port);
  cleanup.push(() => s.close());
  return { server: s, port: bound.port };
}

async function client(port: number): Promise<Coordinator> {
  const c = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port, secret });
  cleanup.push(() => c.close());
  return c;
}

const one = (parts: number[]) => new Map(parts.map((p) => [p, 'n1']));

describe('catalog', () => {
  it('re-lists and watches again after its watch breaks', async () => {
    const first = await server();
    const catalog = await Catalog.open(await client(first.port));
    cleanup.push(() => catalog.close());
    await catalog.create('before', { scheme: 'hash', slotCount: 4 }, one);

    await first.server.close();
    await server(first.port); // a new, empty store on the same address
    const seen = new Promise<RoutingTable>((resolve) =>
      catalog.onChange((t, name) => name === 'after' && t && resolve(t)),
    );
    const other = await Catalog.open(await client(first.port));
    cleanup.push(() => other.close());
    await other.create('after', { scheme: 'range' }, one);
    expect((await seen).scheme).toBe('range');
  });
});
