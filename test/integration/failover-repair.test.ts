/**
 * Copies converge after a failover, with real node processes: 3 storage nodes, a namespace with 3 copies. One
 * follower is stopped (SIGSTOP) so its stream from the leader stalls; two writes then reach the leader and the other
 * follower only — the first sits unread in the stopped follower's socket, the second never leaves the leader (one call
 * in flight per stream). Neither is acknowledged. The leader is killed (-9) and the stopped follower resumed at once.
 * Whichever follower takes the lead, the copies then differ on the second key (one has it, the other not): the new
 * leader's repair must leave every copy holding the new leader's value of both keys. Two rounds, stalling each
 * follower in turn, so that the heir is once the copy that missed the write and once the copy that held it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { fullyReplicated, tableWhen } from '../harness/tables.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import type { ShardflowClient } from '../../src/index.js';
import { connect as wireConnect, splitAddress, type Connection } from '../../src/wire/index.js';

let cluster: TestCluster;
let client: ShardflowClient;
let secret: Uint8Array;
const connections: Connection[] = [];

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3, copies: 1 });
  client = await cluster.client();
  secret = await new ClusterDir(cluster.dir).readSecret();
}, 60_000);
afterAll(async () => {
  for (const c of connections) c.close();
  await cluster?.stop();
});

async function open(node: string, address = client.members.get(node)!.address): Promise<Connection> {
  const [host, port] = splitAddress(address);
  const c = await wireConnect({ host, port, secret });
  connections.push(c);
  return c;
}

/** A follower's own copy of a key (a read from the copy, not redirected). */
async function copyOf(ns: string, conn: Connection, key: string): Promise<unknown> {
  const epoch = client.catalog.table(ns).epoch;
  const got = (await conn.call('kv.get', { ns, key, epoch, replica: true, maxStalenessMs: 60_000 })) as { value?: unknown };
  return got.value;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The scenario on a fresh namespace; `pick` chooses which follower (by sorted id) is stalled. Returns whether the
 * heir was the follower that held both writes.
 */
async function scenario(ns: string, pick: 0 | 1): Promise<boolean> {
  await client.createNamespace(ns, { scheme: 'hash', slotCount: 16, copies: 3 });
  const table = await tableWhen(client, ns, fullyReplicated, 30_000);
  const leader = table.ownerOf(0)!;
  const sorted = [...table.followersOf(0)].sort();
  const stalled = sorted[pick]!;
  const other = sorted[1 - pick]!;
  // Two keys the same node leads (3 copies on 3 nodes: every partition on every node).
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`).filter((k) => table.ownerOf(table.place(k).partition) === leader);
  const [k1, k2] = keys as [string, string];
  await client.put(ns, k1, 'v0');
  await client.put(ns, k2, 'v0');
  const onOther = await open(other);

  const leaderPid = await cluster.pid(leader);
  const stalledPid = await cluster.pid(stalled);
  const toLeader = await open(leader);
  process.kill(stalledPid, 'SIGSTOP');
  let resumed = false;
  try {
    // Unacknowledged (the stopped follower never answers): fire and forget, each failing when the leader dies.
    void toLeader.call('kv.put', { ns, key: k1, value: 'a', epoch: table.epoch }).catch(() => undefined);
    await until(async () => ((await copyOf(ns, onOther, k1)) === 'a' ? true : undefined), 'the other follower applies the first write');
    void toLeader.call('kv.put', { ns, key: k2, value: 'b', epoch: table.epoch }).catch(() => undefined);
    await until(async () => ((await copyOf(ns, onOther, k2)) === 'b' ? true : undefined), 'the other follower applies the second write');
    process.kill(leaderPid, 'SIGKILL');
    process.kill(stalledPid, 'SIGCONT');
    resumed = true;
  } finally {
    if (!resumed) process.kill(stalledPid, 'SIGCONT');
  }

  // A follower takes the lead of the dead node's partitions.
  const after = await tableWhen(client, ns, (t) => t.partitions().every((p) => t.ownerOf(p) !== leader && !t.holds(p, leader)), 20_000);
  const heir = after.ownerOf(after.place(k2).partition)!;
  const follower = heir === other ? stalled : other;
  const onFollower = heir === other ? await open(stalled) : onOther;
  // The heir answers with what it holds; the follower's copy must come to hold the same, key by key.
  const leaderValues = [await client.get(ns, k1), await client.get(ns, k2)];
  await until(
    async () => {
      const copies = [await copyOf(ns, onFollower, k1), await copyOf(ns, onFollower, k2)];
      return JSON.stringify(copies) === JSON.stringify(leaderValues) ? true : undefined;
    },
    `${follower}'s copy of ${k1}, ${k2} equal to the new leader's ${JSON.stringify(leaderValues)}`,
  );
  expect(leaderValues[0]).toBe('a'); // both surviving copies had the first write
  expect(leaderValues[1]).toBe(heir === other ? 'b' : 'v0');
  const stats = (await (await open(heir)).call('node.stats', null)) as { repaired?: { repairs: number; keys: number } };
  expect(stats.repaired!.repairs).toBeGreaterThan(0);
  expect(stats.repaired!.keys).toBeGreaterThan(0);
  // Writes go on with the two copies left, and reach the follower.
  await client.put(ns, k2, 'c');
  await until(async () => ((await copyOf(ns, onFollower, k2)) === 'c' ? true : undefined), 'a later write reaches the follower');
  await cluster.restart(leader);
  return heir === other;
}

describe('failover repair', () => {
  it('leaves every copy with the new leader\'s values of the keys the dead leader wrote last, unacknowledged', async () => {
    // Stalling each follower in turn: the heir is the one that missed the second write in one round and the one that
    // held it in the other (lead counts decide the heir, and the first round changes them), or the same case twice.
    const cases = [await scenario('repair1', 0), await scenario('repair2', 1)];
    console.log(`heir held both writes: ${cases.join(', ')}`);
  }, 120_000);
});
