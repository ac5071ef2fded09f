import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { EtcdCoordinator } from '../../src/coordination/etcd-coordinator.js';
import {
  EmbeddedCoordinatorServer,
  RemoteCoordinator,
  registerNode,
  watchMembers,
  type Coordinator,
  type MemberEvent,
} from '../../src/coordination/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { startEtcd, type RunningEtcd } from '../harness/etcd.js';
import { Collector, signal, uniquePrefix } from './helpers.js';

interface Backend {
  /** A new client of this test's store. */
  client(): Promise<Coordinator>;
  /** Drops a lease behind its holder's back. */
  forceExpire(leaseId: string): Promise<void>;
  cleanup(): Promise<void>;
}

const secret = randomBytes(32);
let etcd: RunningEtcd;
let raw: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: etcd.endpoints });
});
afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

const backends: [string, number, () => Promise<Backend>][] = [
  [
    'embedded',
    // Death is seen TTL after the last keep-alive, which came at most TTL/3 before the death: <= 1000 ms + slack.
    1200,
    async () => {
      const server = new EmbeddedCoordinatorServer({ secret });
      const { host, port } = await server.listen(0);
      const clients: Coordinator[] = [];
      return {
        client: async () => {
          const c = new RemoteCoordinator({ host, port, secret });
          clients.push(c);
          return c;
        },
        forceExpire: async (id) => void (await server.store.revokeLease(id)),
        cleanup: async () => {
          await Promise.all(clients.map((c) => c.close()));
          await server.close();
        },
      };
    },
  ],
  [
    'etcd',
    // Whole-second TTL and a 500 ms expiry sweep in etcd: <= ~1.5 s + slack.
    3000,
    async () => {
      const prefix = uniquePrefix('members-test').slice(0, -1);
      const clients: Coordinator[] = [];
      return {
        client: async () => {
          const c = new EtcdCoordinator({ endpoints: etcd.endpoints, prefix });
          clients.push(c);
          return c;
        },
        forceExpire: async (id) => void (await raw.leaseClient.leaseRevoke({ ID: id })),
        cleanup: async () => {
          await Promise.all(clients.map((c) => c.close()));
          await raw.delete().prefix(prefix);
        },
      };
    },
  ],
];

describe.each(backends)('membership on %s', (name, deathBoundMs, makeBackend) => {
  let backend: Backend;
  let observer: Coordinator;

  beforeEach(async () => {
    backend = await makeBackend();
    observer = await backend.client();
  });
  afterEach(async () => {
    await backend.cleanup();
  });

  const node = (id: string) => ({ id, role: 'storage' as const, address: `127.0.0.1:${7000 + id.length}`, capacity: 1 });

  it('reports join, update and a clean leave', async () => {
    const events = new Collector<MemberEvent>();
    const view = await watchMembers(observer, events.push);
    expect(view.members.size).toBe(0);

    const reg = await registerNode(await backend.client(), { ...node('n1'), pid: 4242, zone: 'a' });
    const joined = await events.waitFor((e) => e.type === 'join', 3000, 'join');
    expect(joined.member).toMatchObject({ id: 'n1', role: 'storage', state: 'ready', pid: 4242, zone: 'a', capacity: 1 });
    expect(typeof joined.member.startedAt).toBe('string');
    expect(view.members.get('n1')?.address).toBe(reg.info.address);

    await reg.update({ state: 'draining', capacity: 2 });
    const updated = await events.waitFor((e) => e.type === 'update', 3000, 'update');
    expect(updated.member).toMatchObject({ id: 'n1', state: 'draining', capacity: 2, zone: 'a' });

    await reg.leave();
    const left = await events.waitFor((e) => e.type === 'leave', 3000, 'leave');
    expect(left.member.id).toBe('n1');
    expect(events.items.map((e) => e.type)).toEqual(['join', 'update', 'update', 'leave']); // 2nd update: 'leaving'
    expect(events.items.some((e) => e.type === 'death')).toBe(false);
    expect(view.members.size).toBe(0);
    await view.close();
  });

  it('lists members present at the start without join events', async () => {
    await registerNode(await backend.client(), node('a1'));
    await registerNode(await backend.client(), { ...node('a2'), role: 'compute' });
    const events = new Collector<MemberEvent>();
    const view = await watchMembers(observer, events.push);
    expect([...view.members.keys()].sort()).toEqual(['a1', 'a2']);
    expect(view.members.get('a2')?.role).toBe('compute');
    expect(events.items).toEqual([]);
    await view.close();
  });

  it(`reports the death of a node that stops keeping its lease alive, within ${deathBoundMs} ms`, async () => {
    const events = new Collector<MemberEvent>();
    const view = await watchMembers(observer, events.push);
    const nodeClient = await backend.client();
    await registerNode(nodeClient, node('doomed'), { ttlMs: 1000 });
    await events.waitFor((e) => e.type === 'join', 3000, 'join');
    // Let a few keep-alives happen first, so the death falls at some point between two of them.
    await new Promise((r) => setTimeout(r, 500));
    const diedAt = Date.now();
    await nodeClient.close(); // The "process" stops: no more keep-alives, no clean leave.
    const death = await events.waitFor((e) => e.type === 'death', deathBoundMs + 2000, 'death');
    const elapsed = Date.now() - diedAt;
    console.info(`[${name}] member death seen ${elapsed} ms after its keep-alives stopped (TTL 1000 ms)`);
    expect(death.member.id).toBe('doomed');
    expect(elapsed).toBeLessThanOrEqual(deathBoundMs);
    expect(view.members.has('doomed')).toBe(false);
    await view.close();
  });

  it('registers again after losing its lease', async () => {
    const events = new Collector<MemberEvent>();
    const view = await watchMembers(observer, events.push);
    const reg = await registerNode(await backend.client(), node('phoenix'));
    await events.waitFor((e) => e.type === 'join', 3000, 'join');
    const lost = signal<Error>();
    reg.onLost(lost.resolve);
    const firstLease = reg.lease.id;
    await backend.forceExpire(firstLease);
    await events.waitFor((e) => e.type === 'death', 3000, 'death');
    await lost.promise;
    const rejoined = await events.waitFor((e) => e.type === 'join' && events.items.indexOf(e) > 0, 5000, 'rejoin');
    expect(rejoined.member.id).toBe('phoenix');
    expect(reg.lease.id).not.toBe(firstLease);
    await reg.update({ state: 'draining' });
    await events.waitFor((e) => e.type === 'update' && e.member.state === 'draining', 3000, 'update after rejoin');
    await reg.leave();
    await events.waitFor((e) => e.type === 'leave', 3000, 'leave');
    await view.close();
  });

  it('refuses a malformed registration', async () => {
    const c = await backend.client();
    await expect(registerNode(c, { ...node('x'), id: 'has/slash' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(registerNode(c, { ...node('x'), address: 'nope' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(registerNode(c, { ...node('x'), capacity: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(registerNode(c, { ...node('x'), role: 'boss' as 'storage' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});
