/**
 * A node id belongs to one live node: a second registration under an id whose record is held by another live
 * instance's lease is refused (nothing written, the first record untouched); a node restarted after a crash waits
 * for its old lease to expire and then registers; the same instance re-registering after losing its lease works.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EmbeddedCoordinatorServer, RemoteCoordinator, registerNode, type Coordinator } from '../../src/coordination/index.js';
import { MEMBERS_PREFIX } from '../../src/coordination/keys.js';
import { ConfigError } from '../../src/errors/index.js';

const secret = randomBytes(32);
let server: EmbeddedCoordinatorServer;
let clients: Coordinator[];
let bound: { host: string; port: number };

async function client(): Promise<Coordinator> {
  const c = new RemoteCoordinator({ host: bound.host, port: bound.port, secret });
  clients.push(c);
  return c;
}

const node = (id: string, port: number) => ({ id, role: 'storage' as const, address: `127.0.0.1:${port}`, capacity: 1 });

beforeEach(async () => {
  server = new EmbeddedCoordinatorServer({ secret });
  bound = await server.listen(0, '127.0.0.1');
  clients = [];
});
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await server.close();
});

describe('membership: one live node per id', () => {
  it('refuses a second live node with the same id and leaves the first record as it was', async () => {
    const first = await registerNode(await client(), node('s1', 7001), { ttlMs: 1000 });
    const observer = await client();
    const before = await observer.get(`${MEMBERS_PREFIX}s1`);
    const t0 = Date.now();
    const err = await registerNode(await client(), node('s1', 7002), { ttlMs: 1000, takeoverWaitMs: 1500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/node id s1 is in use by another live node \(at 127\.0\.0\.1:7001/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400); // waited for the holder's lease first
    const after = await observer.get(`${MEMBERS_PREFIX}s1`);
    expect(after).toEqual(before);
    expect(JSON.parse(after!.value).address).toBe('127.0.0.1:7001');
    await first.leave();
  });

  it('registers a node restarted after a crash once the old lease expires', async () => {
    const crashed = await client();
    await registerNode(crashed, node('s2', 7001), { ttlMs: 1000 });
    await crashed.close(); // no clean leave: the record stays until its lease expires
    const t0 = Date.now();
    const again = await registerNode(await client(), node('s2', 7003), { ttlMs: 1000 });
    const waited = Date.now() - t0;
    expect(waited).toBeLessThan(3000);
    const record = await (await client()).get(`${MEMBERS_PREFIX}s2`);
    expect(JSON.parse(record!.value).address).toBe('127.0.0.1:7003');
    expect(record!.leaseId).toBe(again.lease.id);
    await again.leave();
  });

  it('takes over a record whose holder left cleanly at once', async () => {
    const a = await registerNode(await client(), node('s3', 7001), { ttlMs: 1000 });
    await a.leave();
    const t0 = Date.now();
    const b = await registerNode(await client(), node('s3', 7004), { ttlMs: 1000 });
    expect(Date.now() - t0).toBeLessThan(500);
    await b.leave();
  });

  it('the same instance registers again after losing its lease', async () => {
    const reg = await registerNode(await client(), node('s4', 7001), { ttlMs: 1000 });
    const firstLease = reg.lease.id;
    await server.store.revokeLease(firstLease);
    const deadline = Date.now() + 5000;
    while (reg.lease.id === firstLease && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(reg.lease.id).not.toBe(firstLease);
    let record;
    while (!(record = await (await client()).get(`${MEMBERS_PREFIX}s4`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(record?.leaseId).toBe(reg.lease.id);
    await reg.leave();
  });
});
