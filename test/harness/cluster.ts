/**
 * A real local cluster for integration tests: node processes started through the same launcher `shardflow up` uses,
 * in a temporary directory that `stop()` removes along with every process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restartLocalNode, startLocalCluster, stopLocalCluster } from '../../src/cluster/local-cluster.js';
import { isAlive } from '../../src/cluster/spawn.js';
import { ClusterDir, type CoordinatorAddress } from '../../src/config/cluster-dir.js';
import { connect, type ShardflowClient } from '../../src/client/index.js';
import { openCoordinator } from '../../src/client/connect.js';
import { watchMembers, type MemberEvent } from '../../src/coordination/index.js';

export interface TestCluster {
  dir: string;
  /** A new client (closed by `stop()` too). */
  client(): Promise<ShardflowClient>;
  /** The pid of a node as last started. */
  pid(id: string): Promise<number>;
  /** kill -9 a node and resolve once membership has seen it die. */
  kill9(id: string): Promise<void>;
  /** Start a stopped or killed node again on its data; resolves when it is ready. */
  restart(id: string): Promise<void>;
  /** Resolves with the first membership event matching `match` from now on. */
  nextMemberEvent(match: (e: MemberEvent) => boolean, timeoutMs?: number): Promise<MemberEvent>;
  stop(): Promise<void>;
}

export async function startTestCluster(options: {
  storage: number;
  compute?: number;
  coordinator?: CoordinatorAddress;
  services?: string;
  /** Copies of the `default` namespace (default: the product's — 3 on 3 or more storage nodes). */
  copies?: number;
}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-cluster-'));
  const clients: ShardflowClient[] = [];
  try {
    await startLocalCluster({
      dir,
      storage: options.storage,
      compute: options.compute ?? 0,
      coordinator: options.coordinator,
      services: options.services,
      copies: options.copies,
    });
  } catch (err) {
    await stopLocalCluster(dir).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const { coordinator } = await openCoordinator({ dir });
  const listeners = new Set<(e: MemberEvent) => void>();
  const watch = await watchMembers(coordinator, (e) => {
    for (const l of [...listeners]) l(e);
  });
  const files = new ClusterDir(dir);

  const nextMemberEvent = (match: (e: MemberEvent) => boolean, timeoutMs = 10_000) =>
    new Promise<MemberEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no matching membership event within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (e: MemberEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(e);
      };
      listeners.add(listener);
    });

  const pid = async (id: string) => {
    const node = await files.readNode(id);
    if (!node?.pid) throw new Error(`no pid for ${id}`);
    return node.pid;
  };

  return {
    dir,
    async client() {
      const c = await connect({ dir, name: 'test' });
      clients.push(c);
      return c;
    },
    pid,
    async kill9(id) {
      const p = await pid(id);
      const died = nextMemberEvent((e) => e.member.id === id && e.type === 'death');
      process.kill(p, 'SIGKILL');
      await died;
    },
    async restart(id) {
      await restartLocalNode(dir, id);
    },
    nextMemberEvent,
    async stop() {
      for (const c of clients.splice(0)) await c.close().catch(() => undefined);
      await watch.close().catch(() => undefined);
      await coordinator.close().catch(() => undefined);
      await stopLocalCluster(dir).catch(() => undefined);
      for (const n of await files.listNodes()) if (n.pid && isAlive(n.pid)) process.kill(n.pid, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
