import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import type { Coordinator } from '../../src/coordination/index.js';
import { EtcdCoordinator } from '../../src/coordination/etcd-coordinator.js';
import { CoordinatorError } from '../../src/errors/index.js';
import { startEtcd, type RunningEtcd } from '../harness/etcd.js';
import { freePort } from '../harness/ports.js';
import { coordinatorConformance } from './conformance.js';
import { uniquePrefix } from './helpers.js';

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

coordinatorConformance(
  'etcd',
  async () => {
    // Every test gets its own key prefix: they all share one etcd.
    const prefix = uniquePrefix('etcd-test').slice(0, -1);
    const clients: Coordinator[] = [];
    const newClient = async () => {
      const client = new EtcdCoordinator({ endpoints: etcd.endpoints, prefix });
      clients.push(client);
      return client;
    };
    return {
      coordinator: await newClient(),
      newClient,
      forceExpire: async (leaseId) => {
        await raw.leaseClient.leaseRevoke({ ID: leaseId });
      },
      cleanup: async () => {
        await Promise.all(clients.map((c) => c.close()));
        await raw.delete().prefix(prefix);
      },
    };
  },
  // etcd grants whole seconds and checks for expired leases every 500 ms: up to ~1.5 s, plus slack.
  { expiryBoundMs: 3000 },
);

describe('etcd coordinator without etcd', () => {
  it('fails calls and watches with a retryable CoordinatorError that keeps the cause', async () => {
    const c = new EtcdCoordinator({ endpoints: [`http://127.0.0.1:${await freePort()}`], callTimeoutMs: 1000 });
    try {
      const err = await c.get('/x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CoordinatorError);
      expect((err as CoordinatorError).retryable).toBe(true);
      expect((err as CoordinatorError).cause).toBeInstanceOf(Error);
      await expect(c.watch('/x', () => {})).rejects.toBeInstanceOf(CoordinatorError);
      await expect(c.grantLease(1000)).rejects.toBeInstanceOf(CoordinatorError);
    } finally {
      await c.close();
    }
  });
});
