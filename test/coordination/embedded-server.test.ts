import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EmbeddedCoordinatorServer,
  MemoryStore,
  RemoteCoordinator,
  type Coordinator,
} from '../../src/coordination/index.js';
import { CoordinatorError, InvalidArgumentError, UnknownMethodError } from '../../src/errors/index.js';
import { connect, type Connection } from '../../src/wire/index.js';
import { freePort } from '../harness/ports.js';
import { Collector, signal, within } from './helpers.js';

const secret = randomBytes(32);

describe('embedded coordinator server: input validation', () => {
  let server: EmbeddedCoordinatorServer;
  let conn: Connection;
  let port: number;

  beforeEach(async () => {
    server = new EmbeddedCoordinatorServer({ secret });
    ({ port } = await server.listen(0));
    conn = await connect({ host: '127.0.0.1', port, secret, name: 'validation-test' });
  });
  afterEach(async () => {
    conn.close();
    await server.close();
  });

  const bad: [string, unknown][] = [
    ['coord.get', null],
    ['coord.get', []],
    ['coord.get', 'key'],
    ['coord.get', { key: 5 }],
    ['coord.get', { key: '' }],
    ['coord.get', { key: 'k'.repeat(4097) }],
    ['coord.list', {}],
    ['coord.put', { key: 'k' }],
    ['coord.put', { key: 'k', value: 7 }],
    ['coord.put', { key: 'k', value: 'v'.repeat(1024 * 1024 + 1) }],
    ['coord.put', { key: 'k', value: 'v', leaseId: 12 }],
    ['coord.put', { key: 'k', value: 'v', leaseId: 'no-such-lease' }],
    ['coord.cas', { key: 'k', expectedRevision: -1, value: 'v' }],
    ['coord.cas', { key: 'k', expectedRevision: 1.5, value: 'v' }],
    ['coord.cas', { key: 'k', expectedRevision: '0', value: 'v' }],
    ['coord.cad', { key: 'k' }],
    ['coord.watch', { prefix: '/' }],
    ['coord.watch', { watchId: '', prefix: '/' }],
    ['coord.watch', { watchId: 'w', prefix: 3 }],
    ['coord.watch', { watchId: 'w', prefix: '/', fromRevision: 0 }],
    ['coord.watch', { watchId: 'w', prefix: '/', fromRevision: 'x' }],
    ['coord.unwatch', {}],
    ['coord.lease.grant', { ttlMs: 0 }],
    ['coord.lease.grant', { ttlMs: 'x' }],
    ['coord.lease.grant', { ttlMs: 1e12 }],
    ['coord.lease.grant', { ttlMs: Number.NaN }],
    ['coord.lease.keepalive', { id: 7 }],
    ['coord.lease.revoke', {}],
  ];

  it.each(bad)('%s %j fails with InvalidArgumentError', async (method, params) => {
    await expect(conn.call(method, params)).rejects.toBeInstanceOf(InvalidArgumentError);
    // The server and this very connection stay up.
    expect(await conn.call('coord.put', { key: '/ok', value: 'v' })).toEqual({ revision: expect.any(Number) });
  });

  it('refuses a duplicate watch id and an unknown method, and keeps serving', async () => {
    await conn.call('coord.watch', { watchId: 'w1', prefix: '/' });
    await expect(conn.call('coord.watch', { watchId: 'w1', prefix: '/' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(conn.call('coord.nope', {})).rejects.toBeInstanceOf(UnknownMethodError);
    expect(await conn.call('coord.unwatch', { watchId: 'w1' })).toEqual({ closed: true });
    expect(await conn.call('coord.unwatch', { watchId: 'w1' })).toEqual({ closed: false });
    expect(await conn.call('coord.lease.keepalive', { id: 'unknown' })).toEqual({ found: false });
  });

  it('ends the watches of a connection that closes', async () => {
    await conn.call('coord.watch', { watchId: 'w1', prefix: '/' });
    const other = await connect({ host: '127.0.0.1', port, secret });
    const pushes = new Collector<unknown>();
    other.onPush('coord.watch.w2', pushes.push);
    await other.call('coord.watch', { watchId: 'w2', prefix: '/' });
    conn.close();
    await other.call('coord.put', { key: '/after', value: 'v' });
    await pushes.waitForCount(1, 2000);
    // The closed connection's watch is gone from the server: only the live one remains subscribed.
    expect(await other.call('coord.unwatch', { watchId: 'w1' })).toEqual({ closed: false });
    other.close();
  });
});

describe('embedded coordinator server: persistence and reconnects', () => {
  let dir: string;
  let dataFile: string;
  let port: number;
  const servers: EmbeddedCoordinatorServer[] = [];
  const clients: Coordinator[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-coord-'));
    dataFile = join(dir, 'coordinator.json');
    port = await freePort();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function startServer(
    options: { historyLimit?: number; memoryOnly?: boolean } = {},
  ): Promise<EmbeddedCoordinatorServer> {
    const { memoryOnly, ...rest } = options;
    const server = new EmbeddedCoordinatorServer({ secret, ...(memoryOnly ? {} : { dataFile }), ...rest });
    await server.listen(port);
    servers.push(server);
    return server;
  }

  async function stopServer(server: EmbeddedCoordinatorServer): Promise<void> {
    servers.splice(servers.indexOf(server), 1);
    await server.close();
  }

  function client(): RemoteCoordinator {
    const c = new RemoteCoordinator({ host: '127.0.0.1', port, secret, callTimeoutMs: 2000 });
    clients.push(c);
    return c;
  }

  it('saves durably before answering, and coalesces a burst of writes', async () => {
    await startServer();
    const c = client();
    const rev = await c.put('/a', 'one');
    const onDisk = JSON.parse(await readFile(dataFile, 'utf8')) as { revision: number; entries: unknown[][] };
    expect(onDisk.revision).toBe(rev);
    expect(onDisk.entries).toContainEqual(['/a', 'one', rev, null]);
    const revisions = await Promise.all(Array.from({ length: 200 }, (_, i) => c.put(`/burst/${i}`, String(i))));
    expect(new Set(revisions).size).toBe(200);
    const after = JSON.parse(await readFile(dataFile, 'utf8')) as { revision: number };
    expect(after.revision).toBe(Math.max(...revisions));
  });

  it('keeps keys and revision across a restart and drops lease keys; a watch resumes without loss or repeats', async () => {
    const first = await startServer();
    const writer = client();
    const watcher = client();
    await writer.put('/keep/a', '1');
    const lease = await writer.grantLease(1000);
    const lost = signal<Error>();
    lease.onLost(lost.resolve);
    await writer.put('/keep/leased', 'x', { lease });
    const lastRev = await writer.put('/keep/b', '2');
    const events = new Collector();
    await watcher.watch('/keep/', events.push);

    await stopServer(first);
    await startServer();

    // The lease is unknown to the new server: its holder hears so at the next keep-alive.
    await within(lost.promise, 3000, 'onLost after the restart');
    // The watcher reconnects on its own and replays the delete the restart made.
    const dropped = await events.waitFor((e) => e.type === 'delete' && e.key === '/keep/leased', 5000, 'the drop');
    expect(dropped.revision).toBe(lastRev + 1);
    const next = await writer.put('/keep/c', '3');
    expect(next).toBe(lastRev + 2);
    await events.waitFor((e) => e.key === '/keep/c', 3000, 'a put after the restart');
    expect(events.items.map((e) => `${e.type} ${e.key}`)).toEqual(['delete /keep/leased', 'put /keep/c']);

    expect((await writer.get('/keep/a'))?.value).toBe('1');
    expect((await writer.get('/keep/b'))?.revision).toBe(lastRev);
    expect(await writer.get('/keep/leased')).toBeUndefined();
  });

  it('fails calls with a retryable CoordinatorError while the server is down, and works again after', async () => {
    const server = await startServer();
    const c = client();
    await c.put('/x', '1');
    await stopServer(server);
    const err = await c.get('/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoordinatorError);
    expect((err as CoordinatorError).retryable).toBe(true);
    await startServer();
    expect((await c.get('/x'))?.value).toBe('1');
  });

  it('calls onLost when keep-alives fail for a whole TTL', async () => {
    const server = await startServer();
    const c = client();
    const lease = await c.grantLease(1000);
    const lost = signal<Error>();
    lease.onLost(lost.resolve);
    const downAt = Date.now();
    await stopServer(server);
    const reason = await within(lost.promise, 3000, 'onLost');
    expect(reason).toBeInstanceOf(CoordinatorError);
    expect(Date.now() - downAt).toBeLessThanOrEqual(1100);
  });

  it('refuses a fromRevision older than the history, and tells a watch that cannot resume', async () => {
    const server = await startServer({ historyLimit: 10 });
    const c = client();
    for (let i = 0; i < 30; i++) await c.put(`/h/${i}`, String(i));
    await expect(c.watch('/h/', () => {}, { fromRevision: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);

    const broken = signal<Error>();
    const events = new Collector();
    await c.watch('/h/', events.push, { onError: broken.resolve });
    await stopServer(server);
    // While the watcher is away, more happens than the history keeps.
    const store = await MemoryStore.open({ path: dataFile, historyLimit: 10 });
    for (let i = 0; i < 30; i++) await store.put(`/h/${i}`, 'again');
    await store.close();
    await startServer({ historyLimit: 10 });
    const err = await within(broken.promise, 5000, 'onError');
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(events.items).toEqual([]);
  });

  it('tells a watch it cannot resume on a memory-only server that restarted (revisions began again)', async () => {
    const first = await startServer({ memoryOnly: true });
    const c = client();
    for (let i = 0; i < 5; i++) await c.put(`/m/${i}`, 'v');
    const broken = signal<Error>();
    const events = new Collector();
    await c.watch('/m/', events.push, { onError: broken.resolve });
    await stopServer(first);
    await startServer({ memoryOnly: true });
    expect(await within(broken.promise, 5000, 'onError')).toBeInstanceOf(InvalidArgumentError);
    expect(events.items).toEqual([]);
  });

  it('refuses a damaged data file instead of starting empty', async () => {
    await writeFile(dataFile, '{not json');
    const server = new EmbeddedCoordinatorServer({ secret, dataFile });
    await expect(server.listen(port)).rejects.toBeInstanceOf(CoordinatorError);
  });
});
