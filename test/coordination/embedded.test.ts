import { randomBytes } from 'node:crypto';
import { EmbeddedCoordinatorServer, RemoteCoordinator, type Coordinator } from '../../src/coordination/index.js';
import { coordinatorConformance } from './conformance.js';

const secret = randomBytes(32);

coordinatorConformance(
  'embedded',
  async () => {
    const server = new EmbeddedCoordinatorServer({ secret });
    const { host, port } = await server.listen(0, '127.0.0.1');
    const clients: Coordinator[] = [];
    const newClient = async () => {
      const client = new RemoteCoordinator({ host, port, secret, name: 'conformance' });
      clients.push(client);
      return client;
    };
    return {
      coordinator: await newClient(),
      newClient,
      forceExpire: async (leaseId) => {
        await server.store.revokeLease(leaseId);
      },
      cleanup: async () => {
        await Promise.all(clients.map((c) => c.close()));
        await server.close();
      },
    };
  },
  // TTL after the last keep-alive, which came at most TTL/3 before close(): ~1 s, plus slack for a loaded machine.
  { expiryBoundMs: 1200 },
);
