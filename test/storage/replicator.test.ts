/**
 * Leader to followers in one process: a Replicator shipping to two followers (RpcServer + ReplicaApplier + engine).
 * Groups shipped while a follower's call is unanswered leave together as its next call, in order; a follower that
 * fails takes its waiting groups with it and is dropped from the in-sync copies; followers still refuse a leader
 * that does not lead at their epoch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedCoordinatorServer, createCoordinator } from '../../src/coordination/index.js';
import { Catalog } from '../../src/keyspace/index.js';
import { RpcServer } from '../../src/wire/index.js';
import { StaleEpochError, UnavailableError } from '../../src/errors/index.js';
import { StorageEngine, type ReplicatedChange } from '../../src/storage/engine.js';
import { ReplicaApplier } from '../../src/storage/replica-apply.js';
import { Replicator } from '../../src/storage/replicator.js';
import { createLogger } from '../../src/util/logger.js';

const secret = randomBytes(32);
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

interface Follower {
  engine: StorageEngine;
  address: string;
  /** Calls received: seq and the keys they carried. */
  calls: { seq: number; keys: string[] }[];
  /** While set, calls wait for it before being applied. */
  gate?: Promise<void>;
  /** When set, calls are refused with this error. */
  fail?: Error;
}

async function setup() {
  const server = new EmbeddedCoordinatorServer({ secret });
  const { port } = await server.listen(0);
  cleanup.push(() => server.close());
  const coordinator = await createCoordinator({ kind: 'embedded', host: '127.0.0.1', port, secret });
  cleanup.push(() => coordinator.close());
  const catalog = await Catalog.open(coordinator);
  cleanup.push(() => catalog.close());
  await catalog.create('rep', { scheme: 'hash', slotCount: 8, copies: 3 }, (parts) => new Map(parts.map((p) => [p, 'n1'])));
  await catalog.update('rep', (t) => t.withFollowers(new Map(t.partitions().map((p) => [p, ['f1', 'f2']]))));

  const followers = new Map<string, Follower>();
  for (const id of ['f1', 'f2']) {
    const dir = await mkdtemp(join(tmpdir(), `sf-repl-${id}-`));
    const engine = StorageEngine.open(dir);
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    cleanup.push(() => engine.close());
    const followerCatalog = await Catalog.open(coordinator);
    cleanup.push(() => followerCatalog.close());
    const applier = new ReplicaApplier(id, engine, followerCatalog);
    const f: Follower = { engine, address: '', calls: [] };
    const rpc = new RpcServer({
      secret,
      handler: async (method, params) => {
        const p = params as { seq: number; entries: [string, number, string][] };
        if (p.entries.length > 0) f.calls.push({ seq: p.seq, keys: p.entries.map((e) => e[2]) });
        if (f.gate) await f.gate;
        if (f.fail) throw f.fail;
        return applier.handle(method, params);
      },
    });
    const bound = await rpc.listen(0, '127.0.0.1');
    cleanup.push(() => rpc.close());
    f.address = `127.0.0.1:${bound.port}`;
    followers.set(id, f);
  }
  const replicator = new Replicator({
    nodeId: 'n1',
    catalog,
    secret,
    addressOf: (id) => followers.get(id)?.address,
    log: createLogger('test:replicator'),
  });
  cleanup.push(async () => replicator.close());
  return { catalog, coordinator, followers, replicator };
}

function changes(keys: string[], partition = 1): ReplicatedChange[] {
  return keys.map((key, i) => ({ location: { namespace: 'rep', partition, slot: partition }, key, deleted: false, value: `v:${key}`, version: 1000 + i, bytes: 10 }));
}

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe('replicator', () => {
  it('sends groups shipped during an unanswered call together as the next call, in order', async () => {
    const { followers, replicator } = await setup();
    const f1 = followers.get('f1')!;
    const f2 = followers.get('f2')!;
    const g = gate();
    f1.gate = g.promise;
    const first = replicator.ship(changes(['a']));
    await until(() => f1.calls.length === 1 && f2.calls.length === 1);
    const second = replicator.ship(changes(['b', 'c']));
    const third = replicator.ship(changes(['d']));
    await until(() => f2.calls.flatMap((c) => c.keys).length === 4); // f2 is not held up by f1
    const done = { first: false, second: false, third: false };
    void first.then(() => (done.first = true));
    void second.then(() => (done.second = true));
    void third.then(() => (done.third = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(f1.calls).toHaveLength(1); // the rest waits for f1's answer
    expect(done).toEqual({ first: false, second: false, third: false });
    f1.gate = undefined;
    g.open();
    await Promise.all([first, second, third]);
    expect(f1.calls).toEqual([
      { seq: 1, keys: ['a'] },
      { seq: 2, keys: ['b', 'c', 'd'] },
    ]);
    for (const key of ['a', 'b', 'c', 'd']) {
      for (const f of [f1, f2]) expect(f.engine.get({ namespace: 'rep', partition: 1, slot: 1 }, key)?.value).toBe(`v:${key}`);
    }
  });

  it('fails a follower with the groups waiting for it, drops it, and answers with the copies left', async () => {
    const { catalog, followers, replicator } = await setup();
    const f2 = followers.get('f2')!;
    const g = gate();
    f2.gate = g.promise;
    const first = replicator.ship(changes(['a']));
    await until(() => f2.calls.length === 1);
    const second = replicator.ship(changes(['b']));
    f2.fail = new UnavailableError('disk on fire');
    g.open();
    // 2 of 3 copies (leader + f1) still hold each write: a majority, so both are answered.
    await Promise.all([first, second]);
    expect(f2.calls.map((c) => c.keys)).toEqual([['a']]);
    const table = (await catalog.refresh('rep'))!;
    expect(table.followersOf(1)).toEqual(['f1']);
  });

  it('cuts a group larger than the wire frame limit into calls, so no follower is dropped for it', async () => {
    const { catalog, followers, replicator } = await setup();
    const big = 'x'.repeat(1024 * 1024 - 64);
    // 24 values of 1 MiB in one group: 24 MiB, more than a 16 MiB frame.
    const group = Array.from({ length: 24 }, (_, i) => ({ ...changes([`big${i}`])[0]!, value: big, bytes: big.length + 16 }));
    await replicator.ship(group);
    for (const f of followers.values()) {
      expect(f.calls.length).toBeGreaterThan(1);
      expect(f.calls.flatMap((c) => c.keys)).toEqual(group.map((c) => c.key));
      expect(f.engine.get({ namespace: 'rep', partition: 1, slot: 1 }, 'big23')?.value).toBe(big);
    }
    expect((await catalog.refresh('rep'))!.followersOf(1)).toEqual(['f1', 'f2']);
  });

  it('drops a follower from some partitions only, its stream going on for the others', async () => {
    const { catalog, followers, replicator } = await setup();
    const f2 = followers.get('f2')!;
    await replicator.ship(changes(['a'], 1));
    await replicator.dropFollower('f2', { namespace: 'rep', partitions: [1, 2] });
    const table = (await catalog.refresh('rep'))!;
    expect(table.followersOf(1)).toEqual(['f1']);
    expect(table.followersOf(2)).toEqual(['f1']);
    expect(table.followersOf(3)).toEqual(['f1', 'f2']);
    await replicator.ship(changes(['b'], 3));
    // The same stream (call 2 after call 1): nothing was lost on it, so it was not closed.
    expect(f2.calls).toEqual([
      { seq: 1, keys: ['a'] },
      { seq: 2, keys: ['b'] },
    ]);
    expect(f2.engine.get({ namespace: 'rep', partition: 3, slot: 3 }, 'b')?.value).toBe('v:b');
  });

  it('is refused by a follower that does not see it leading', async () => {
    const { catalog, followers } = await setup();
    const f1 = followers.get('f1')!;
    const applier = new ReplicaApplier('f1', f1.engine, catalog);
    const entries = [
      ['rep', 1, 'a', 0, 'x', 5],
      ['rep', 2, 'b', 0, 'y', 6],
    ];
    const epoch = catalog.find('rep')!.epoch;
    await expect(applier.handle('repl.apply', { leader: 'n9', stream: 's', seq: 1, epochs: { rep: epoch }, entries })).rejects.toBeInstanceOf(StaleEpochError);
    await expect(applier.handle('repl.apply', { leader: 'n1', stream: 't', seq: 1, epochs: { rep: epoch }, entries: [...entries, ['rep', 2, '', 0, 'z', 7]] })).rejects.toThrow(/key/);
    expect(await applier.handle('repl.apply', { leader: 'n1', stream: 'u', seq: 1, epochs: { rep: epoch }, entries })).toEqual({ applied: 2 });
    expect(f1.engine.get({ namespace: 'rep', partition: 2, slot: 2 }, 'b')).toEqual({ key: 'b', value: 'y', version: 6 });
  });
});
