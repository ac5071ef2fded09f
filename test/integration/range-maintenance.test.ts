/**
 * Range split and merge. In process, with a clock the test moves (real LMDB, real coordinator): a merge waits for
 * both ranges to stop moving or arriving and leaves exact counters; a hot range splits at its traffic median, or at
 * the size median when too few requests were sampled. With real processes: ranges split as they grow and merge back
 * once deletes leave them small (one node: routing-only); a range hot with reads splits where it halves the traffic
 * and merges back once quiet; and two small ranges on different nodes are put together by a co-locating move and
 * merged while a writer writes, with no acknowledged write lost. Each checks every key through get and scan.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { PeerPool, type ShardflowClient } from '../../src/client/index.js';
import { MigrationDriver, planMerges, runMerges, type PlannedMerge } from '../../src/migration/index.js';
import { compareKeys } from '../../src/partitioning/index.js';
import { Catalog, type RoutingTable } from '../../src/keyspace/index.js';
import { EmbeddedCoordinatorServer, createCoordinator } from '../../src/coordination/index.js';
import { StorageEngine } from '../../src/storage/engine.js';
import { RangeMaintainer, type RangeMaintainerOptions } from '../../src/storage/range-maintainer.js';
import { createLogger } from '../../src/util/logger.js';

let cluster: TestCluster;
let client: ShardflowClient;
let pool: PeerPool;

/** Resolves with the namespace's table once `match` holds for it (checked now and on every change). */
function tableWhere(ns: string, match: (t: RoutingTable) => boolean, timeoutMs = 20_000): Promise<RoutingTable> {
  return new Promise((resolve, reject) => {
    const check = (t: RoutingTable | undefined) => {
      if (!t || !match(t)) return false;
      clearTimeout(timer);
      stop();
      resolve(t);
      return true;
    };
    const timer = setTimeout(() => {
      stop();
      const t = client.catalog.find(ns);
      reject(new Error(`${ns}: no matching table within ${timeoutMs} ms; last: ${JSON.stringify(t?.rangesFor('', null))}`));
    }, timeoutMs);
    const stop = client.catalog.onChange((t, name) => void (name === ns && check(t)));
    check(client.catalog.find(ns));
  });
}

/** Polls `probe` until it returns a value (not undefined); for state that no event announces (a node's counters). */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function call<T>(node: string, method: string, params: unknown): Promise<T> {
  return (await pool.get(node, Date.now() + 5000)).call<T>(method, params, { timeoutMs: 5000 });
}

async function scanAll(ns: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let last: string | undefined;
  for await (const e of client.scan(ns, { pageSize: 7 })) {
    if (last !== undefined) expect(compareKeys(last, e.key)).toBeLessThan(0); // key order, no repeats
    last = e.key;
    out.set(e.key, e.value);
  }
  return out;
}

type RangeStats = { id: number; keys: number; bytes: number };

describe('range maintainer (in process, test clock)', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  });

  /** One node 'n1' with a real engine and catalog, and a maintainer on a clock the test sets. */
  async function node(options: { splitOps?: number; copies?: number; hold?: RangeMaintainerOptions['hold'] } = {}) {
    const { hold, ...nsOptions } = options;
    const secret = randomBytes(32);
    const server = new EmbeddedCoordinatorServer({ secret });
    const { port } = await server.listen(0);
    cleanup.push(() => server.close());
    const coordinator = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port, secret });
    cleanup.push(() => coordinator.close());
    const catalog = await Catalog.open(coordinator);
    cleanup.push(() => catalog.close());
    const dir = await mkdtemp(join(tmpdir(), 'sf-ranges-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const engine = StorageEngine.open(dir);
    cleanup.push(() => engine.close());
    const clock = { now: 0 };
    const arriving = new Set<number>();
    const maintainer = new RangeMaintainer('n1', engine, catalog, createLogger('test'), {
      now: () => clock.now,
      receiving: (_ns, p) => arriving.has(p),
      hold,
    });
    catalog.onChange((t, name) => maintainer.onTable(t, name));
    const nodes = ['n1', 'n2', 'n3'];
    await catalog.create('r', { scheme: 'range', splitBytes: 1024, splitOpsSustainMs: 1000, ...nsOptions }, (ps) => new Map(ps.map((p) => [p, 'n1'])), nodes);
    /** Puts keys where the kv service would: under the range that holds them now. */
    const put = async (keys: string[], value: unknown) => {
      const t = catalog.table('r');
      await Promise.all(keys.map((k) => engine.put({ namespace: 'r', partition: t.place(k).partition }, k, value)));
    };
    /** One pass at time `at`. */
    const pass = async (at: number) => {
      clock.now = at;
      await maintainer.checkAll();
      return catalog.table('r');
    };
    return { catalog, engine, maintainer, arriving, put, pass };
  }

  it('merges only once neither range is moving or arriving, and leaves the merged range counted exactly', async () => {
    const { catalog, engine, arriving, put, pass } = await node();
    await catalog.update('r', (t) => t.withSplit(0, 'm'));
    await put(['a', 'b', 'c', 'x', 'y'], 1);
    await pass(0); // first sight: nothing is known about the ranges yet
    expect((await pass(500)).partitions()).toEqual([0, 1]); // watched for less than a sustain window
    const move = { to: 'n2', job: 'j', startedAt: new Date(0).toISOString() };
    await catalog.update('r', (t) => t.withMigration(1, move));
    expect((await pass(2000)).partitions()).toEqual([0, 1]);
    await catalog.update('r', (t) => t.withMigration(1, undefined));
    arriving.add(0);
    expect((await pass(3000)).partitions()).toEqual([0, 1]);
    arriving.clear();
    const merged = await pass(4000);
    expect(merged.rangesFor('', null)).toEqual([{ id: 0, start: '', end: null, owner: 'n1' }]);
    expect(engine.countersFor({ namespace: 'r', partition: 0 }).keys).toBe(5);
    await put(['z'], 2); // writes after the merge count under the merged range
    expect(engine.countersFor({ namespace: 'r', partition: 0 }).keys).toBe(6);
  });

  it('merges replicated ranges with both held until the merged table is in; not when the followers do not confirm', async () => {
    const holds: { ranges: number[]; followers: string[]; partitionsAtRelease?: number }[] = [];
    let confirm = false;
    const { catalog, put, pass } = await node({
      copies: 3,
      hold: async (_ns, ranges, followers) => {
        const h: (typeof holds)[number] = { ranges, followers: [...followers] };
        holds.push(h);
        if (!confirm) throw new Error('a follower failed');
        return () => void (h.partitionsAtRelease = catalog.table('r').partitions().length);
      },
    });
    await catalog.update('r', (t) => t.withSplit(0, 'm'));
    const followers = [...catalog.table('r').followersOf(0)].sort();
    expect(followers).toEqual(['n2', 'n3']);
    await put(['a', 'x'], 1);
    await pass(0);
    expect((await pass(2000)).partitions()).toEqual([0, 1]); // held, but the followers did not confirm: no merge
    expect(holds.map((h) => [h.ranges, h.followers.sort()])).toEqual([[[0, 1], followers]]);
    confirm = true;
    const merged = await pass(3000);
    expect(merged.partitions()).toEqual([0]);
    expect(merged.followersOf(0).slice().sort()).toEqual(followers);
    expect(holds).toHaveLength(2);
    expect(holds[1]!.partitionsAtRelease).toBe(1); // released only once the catalog had the merged table
  });

  it('splits a hot range at the median of its sampled requests, after the sustain window only', async () => {
    const { maintainer, put, pass } = await node({ splitOps: 100 });
    const keys = Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i));
    await put(keys, 'v');
    await pass(0);
    // 1000 requests a second, all for the last six keys: the size median ('n') would leave them on one side.
    const second = (t: number) => {
      for (let i = 0; i < 1000; i++) maintainer.traffic.record('r', 0, keys[20 + (i % 6)]!);
      return pass(t);
    };
    expect((await second(1000)).partitions()).toEqual([0]); // hot from here...
    expect((await second(1500)).partitions()).toEqual([0]); // ...but not for a full second yet
    const split = await second(2000);
    expect(split.rangesFor('', null).map((r) => r.start)).toEqual(['', 'x']);
  });

  it('splits a hot range at the size median when too few requests were sampled', async () => {
    const { maintainer, put, pass } = await node({ splitOps: 1 });
    const keys = Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i));
    await put(keys, 'v');
    await pass(0);
    const second = (t: number) => {
      for (let i = 0; i < 20; i++) maintainer.traffic.record('r', 0, 'z'); // 20 per second: a sample of a few keys
      return pass(t);
    };
    let table = await second(1000);
    for (let t = 2000; table.partitions().length === 1 && t <= 5000; t += 1000) table = await second(t);
    expect(table.rangesFor('', null).map((r) => r.start)).toEqual(['', 'n']);
  });
});

describe('range split and merge (processes)', () => {
  beforeAll(async () => {
    cluster = await startTestCluster({ storage: 2 });
    client = await cluster.client();
    pool = new PeerPool(client.members, await new ClusterDir(cluster.dir).readSecret(), 'test-ranges');
  });
  afterAll(async () => {
    pool?.close();
    await cluster?.stop();
  });

  it('splits ranges as they grow and merges them back on their node once deletes leave them small', async () => {
    const ns = 'sized';
    await client.createNamespace(ns, { scheme: 'range', splitBytes: 1024, splitOpsSustainMs: 1000 });
    const owner = client.catalog.table(ns).ownerOf(0)!;
    const keys = Array.from({ length: 80 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    await client.batch(ns, keys.map((key) => ({ op: 'put' as const, key, value: `${key}:${'x'.repeat(100)}` })));
    const split = await tableWhere(ns, (t) => t.partitions().length >= 4);
    expect(split.partitionsOf(owner)).toEqual(split.partitions()); // splits move nothing
    for (const key of keys) expect(await client.get(ns, key)).toBe(`${key}:${'x'.repeat(100)}`);
    expect([...(await scanAll(ns)).keys()]).toEqual(keys);

    // Delete most keys and shrink the rest: every range is now far under a quarter of splitBytes. A writer keeps
    // writing its own keys meanwhile.
    const kept = keys.filter((_, i) => i % 9 === 0);
    await client.batch(ns, keys.map((key) => (kept.includes(key) ? { op: 'put' as const, key, value: key.length } : { op: 'del' as const, key })));
    const acked = new Map<string, number>();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const key = `w${i % 5}`;
        await client.put(ns, key, i);
        acked.set(key, i);
      }
    })();
    const merged = await tableWhere(ns, (t) => t.partitions().length === 1);
    writing = false;
    await writer;
    expect(merged.rangesFor('', null)).toEqual([{ id: 0, start: '', end: null, owner }]);

    const expected = new Map<string, unknown>([...kept.map((k): [string, unknown] => [k, k.length]), ...acked]);
    for (const [key, value] of expected) expect(await client.get(ns, key)).toEqual(value);
    for (const key of keys.filter((k) => !kept.includes(k))) expect(await client.get(ns, key)).toBeUndefined();
    expect(await scanAll(ns)).toEqual(new Map([...expected].sort(([a], [b]) => compareKeys(a, b))));
    // The owner's counters cover the merged range exactly (recounted after the merge).
    const stats = await call<{ ranges: RangeStats[] }>(owner, 'range.stats', { ns });
    expect(stats.ranges.map((r) => [r.id, r.keys])).toEqual([[0, expected.size]]);
    const node = await call<{ namespaces: Record<string, { keys: number; partitions: number }> }>(owner, 'node.stats', null);
    expect(node.namespaces[ns]).toMatchObject({ keys: expected.size, partitions: 1 });
  });

  it('splits a range hot with reads where it halves the traffic, and merges the halves once it is quiet', async () => {
    const ns = 'hot';
    await client.createNamespace(ns, { scheme: 'range', splitBytes: 1024 * 1024, splitOps: 200, splitOpsSustainMs: 1000 });
    const keys = Array.from({ length: 40 }, (_, i) => `h${String(i).padStart(2, '0')}`);
    await client.batch(ns, keys.map((key) => ({ op: 'put' as const, key, value: key })));
    let reading = true;
    let reads = 0;
    const readers = Array.from({ length: 8 }, async (_, r) => {
      for (let i = r; reading; i += 7) {
        expect(await client.get(ns, keys[i % keys.length]!)).toBe(keys[i % keys.length]);
        reads++;
      }
    });
    const started = Date.now();
    const split = await tableWhere(ns, (t) => t.partitions().length >= 2);
    reading = false;
    await Promise.all(readers);
    const rate = (reads * 1000) / (Date.now() - started);
    expect(rate).toBeGreaterThan(200); // the load really was over splitOps
    // Cut at a key from the traffic sample that gives each side at least a quarter of the reads (the keys are read
    // evenly, so at least 10 of the 40 keys on each side).
    const cut = split.rangesFor('', null)[1]!.start;
    expect(keys).toContain(cut);
    expect(keys.indexOf(cut)).toBeGreaterThanOrEqual(10);
    expect(keys.indexOf(cut)).toBeLessThanOrEqual(30);

    // Quiet now, and small: the halves merge back once their rates have decayed under a quarter of splitOps.
    await tableWhere(ns, (t) => t.partitions().length === 1);
    for (const key of keys) expect(await client.get(ns, key)).toBe(key);
    expect([...(await scanAll(ns)).keys()]).toEqual(keys);
  });

  it('merges small ranges on two nodes: the smaller moves to its neighbour, then they merge, under writes', async () => {
    const ns = 'spread';
    // autoMerge off: this test runs the merge itself (the controller would otherwise do it; see the next test).
    await client.createNamespace(ns, { scheme: 'range', splitBytes: 1024, splitOpsSustainMs: 1000, autoMerge: false });
    // Two ranges on two nodes, set up while the namespace is empty (so no data has to move yet).
    const left = client.catalog.table(ns).ownerOf(0)!;
    const right = left === 's1' ? 's2' : 's1';
    await client.catalog.update(ns, (t) => t.withSplit(0, 'm').withOwners(new Map([[1, right]])));
    const keys = [...Array.from({ length: 12 }, (_, i) => `a${i}`), ...Array.from({ length: 5 }, (_, i) => `n${i}`)];
    await client.batch(ns, keys.map((key) => ({ op: 'put' as const, key, value: 0 })));

    // Both owners must have watched their range for a sustain window before it can be planned for a merge.
    const driver = await MigrationDriver.open({ coordinator: client.coordinator, catalog: client.catalog, members: client.members, pool });
    try {
      const plan = await eventually<PlannedMerge[]>(async () => {
        const p = await planMerges(driver.context, { namespaces: [ns] });
        return p.length > 0 ? p : undefined;
      });
      // Range 1 holds fewer keys: it goes to range 0's owner.
      expect(plan).toEqual([{ namespace: ns, partition: 1, from: right, to: left, left: 0, right: 1, bytes: expect.any(Number) }]);

      const acked = new Map<string, number>();
      let writing = true;
      let writes = 0;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let round = 1; writing; round++) {
          const key = keys[w + 4 * (round % 4)]!; // each writer has its own keys
          await client.put(ns, key, round * 10 + w);
          acked.set(key, round * 10 + w);
          writes++;
        }
      });
      const before = writes;
      const results = await runMerges(driver.context, plan);
      const during = writes - before;
      writing = false;
      await Promise.all(writers);
      expect(during).toBeGreaterThan(0); // writes went on while the range moved and merged
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ merged: true, left: 0, right: 1, move: { from: right, to: left } });

      const table = await client.catalog.refresh(ns);
      expect(table!.rangesFor('', null)).toEqual([{ id: 0, start: '', end: null, owner: left }]);
      const lost: string[] = [];
      for (const key of keys) {
        const value = await client.get(ns, key);
        if (value !== (acked.get(key) ?? 0)) lost.push(`${key}: ${String(value)} != ${acked.get(key) ?? 0}`);
      }
      expect(lost).toEqual([]);
      expect(await scanAll(ns)).toEqual(new Map(keys.map((k) => [k, acked.get(k) ?? 0] as const).sort(([a], [b]) => compareKeys(a, b))));
      const stats = await call<{ ranges: RangeStats[] }>(left, 'range.stats', { ns });
      expect(stats.ranges.map((r) => [r.id, r.keys])).toEqual([[0, keys.length]]);
    } finally {
      await driver.close();
    }
  });

  it('merges small ranges on two nodes by itself: the replica controller moves and merges them, no rebalance run', async () => {
    const ns = 'auto-merged';
    await client.createNamespace(ns, { scheme: 'range', splitBytes: 1024, splitOpsSustainMs: 1000 });
    const left = client.catalog.table(ns).ownerOf(0)!;
    const right = left === 's1' ? 's2' : 's1';
    await client.catalog.update(ns, (t) => t.withSplit(0, 'm').withOwners(new Map([[1, right]])));
    const keys = [...Array.from({ length: 12 }, (_, i) => `a${i}`), ...Array.from({ length: 5 }, (_, i) => `n${i}`)];
    await client.batch(ns, keys.map((key, i) => ({ op: 'put' as const, key, value: i })));
    // Both ranges are watched for a sustain window, then a look of the controller (every 10 s) finds the pair.
    const merged = await tableWhere(ns, (t) => t.rangesFor('', null).length === 1, 30_000);
    expect(merged.rangesFor('', null)).toEqual([{ id: 0, start: '', end: null, owner: left }]);
    expect(await scanAll(ns)).toEqual(new Map(keys.map((k, i) => [k, i] as const).sort(([a], [b]) => compareKeys(a, b))));
  }, 45_000);
});
