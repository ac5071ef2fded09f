/**
 * The storage-tier state backend against a real local cluster: the conformance suite every backend passes; a crash
 * (the job's process gone) at each point of a commit — after some state writes, after all of them before the
 * checkpoint record — restores exactly the previous checkpoint; and a storage scale-out (2 → 3 nodes) under a running
 * keyed windowed count changes no result.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import type { ShardflowClient } from '../../src/client/index.js';
import { scaleLocalStorage } from '../../src/cluster/rebalance-local.js';
import {
  count,
  generator,
  MemoryStateBackend,
  pipeline,
  StorageStateBackend,
  tumbling,
  type Checkpoint,
  type JobHandle,
  type Mode,
  rngFor,
  type Json,
  type Source,
  type StateStoreClient,
} from '../../src/index.js';
import { keySlot } from '../../src/partitioning/index.js';
import { parseStoredKey, storedKey } from '../../src/processing/storage-state-keys.js';
import { stateBackendConformance } from './state-backend-conformance.js';
import { upsertSink } from './helpers.js';

let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 2 });
  client = await cluster.client();
});
afterAll(async () => {
  await cluster?.stop();
});

let fresh = 0;
stateBackendConformance('storage tier', async () => new StorageStateBackend(client, { prefix: `conf${++fresh}.`, slotCount: 16 }));

describe('storage state layout', () => {
  it("keeps a key's state in the storage slot of its processing slot, whatever the key holds", async () => {
    const backend = new StorageStateBackend(client, { prefix: 'layout.', slotCount: 64 });
    const state = await backend.open('j');
    const keys = ['u1', 'a{b}c', '}x{', 'nul\u0000in', '\u0010\u0011', 'émoji 🎉', ''];
    for (const k of keys) {
      const slot = keySlot(k);
      for (const ref of [`w\u0000${k}`, `\u0001timers\u0000${k}`]) {
        const stored = storedKey('stage{1}', slot, ref);
        expect(keySlot(stored)).toBe(slot); // the processing slot, in a 4096-slot namespace
        expect(keySlot(stored, 64)).toBe(slot % 64);
        expect(parseStoredKey('stage{1}', stored)).toEqual({ slot, key: ref });
        state.put('stage{1}', slot, ref, k, 1);
      }
    }
    await state.commit(cp(1));
    const table = client.catalog.find(backend.namespaceOf('j'))!;
    for await (const e of client.scan(backend.namespaceOf('j'), {})) {
      if (e.key === '\u0011meta') continue;
      const at = parseStoredKey('stage{1}', e.key)!;
      expect(table.place(e.key).partition).toBe(keySlot(at.key.slice(at.key.indexOf('\u0000') + 1)) % 64);
    }
    const back = await backend.open('j');
    const seen: string[] = [];
    for await (const e of back.scan('stage{1}', { prefix: '\u0001timers\u0000' })) seen.push(String(e.value));
    expect(seen.sort()).toEqual([...keys].sort());
  });
});

type CrashPoint = 'mid-state-writes' | 'before-checkpoint-record';

/**
 * A client that dies like a killed process: once armed, the next state batch (only half of its ops reach storage)
 * or the next checkpoint-record put is where it dies, and from then on nothing it is asked reaches storage.
 */
function crashable(real: ShardflowClient) {
  let armed: CrashPoint | undefined;
  let dead = false;
  let landed: Promise<unknown> = Promise.resolve();
  const never = <T>() => new Promise<T>(() => {});
  const isMeta = (key: string) => key === '\u0011meta';
  const wrapper: StateStoreClient = {
    createNamespace: (ns, o) => (dead ? never() : real.createNamespace(ns, o)),
    getEntry: (ns, key) => (dead ? never() : real.getEntry(ns, key)),
    put: (ns, key, value, o) => {
      if (dead) return never();
      if (armed === 'before-checkpoint-record' && isMeta(key) && (value as { checkpoint?: unknown }).checkpoint) {
        dead = true;
        return never();
      }
      return real.put(ns, key, value, o);
    },
    batch: (ns, ops) => {
      if (dead) return never();
      if (armed === 'mid-state-writes' && ops.some((o) => o.op === 'put')) {
        dead = true;
        landed = real.batch(ns, ops.slice(0, Math.ceil(ops.length / 2)));
        return never();
      }
      return real.batch(ns, ops);
    },
    scan: (ns, o) => (dead ? (async function* () { await never(); })() : real.scan(ns, o)) as never,
  };
  return {
    client: wrapper,
    arm: (point: CrashPoint) => (armed = point),
    get dead() {
      return dead;
    },
    landed: () => landed,
  };
}

const cp = (epoch: number): Checkpoint => ({ epoch, positions: { s0: { position: epoch * 10, done: false } }, at: 1 });

/** Stored records of a namespace newer than `epoch` (the written-but-uncommitted versions a crash left). */
async function uncommitted(ns: string, epoch: number): Promise<number> {
  let n = 0;
  for await (const e of client.scan<{ e?: number }>(ns)) if ((e.value.e ?? 0) > epoch) n++;
  return n;
}

describe.each(['mid-state-writes', 'before-checkpoint-record'] as CrashPoint[])('storage state: crash %s', (point) => {
  it('restores exactly the previous checkpoint, and a later commit of the same epoch does not revive the lost writes', async () => {
    const opts = { prefix: `crash-${point}.`, slotCount: 16, batchOps: 4 };
    const faulty = crashable(client);
    const s1 = await new StorageStateBackend(faulty.client, opts).open('j');
    for (let i = 0; i < 20; i++) s1.put('s', i, `k${i}`, { n: i }, 1);
    s1.put('s', 0, 'gone', 'x', 1);
    await s1.commit(cp(1));
    for (let i = 0; i < 20; i++) s1.put('s', i, `k${i}`, { n: 100 + i }, 2);
    s1.delete('s', 0, 'gone', 2);
    s1.put('s', 0, 'new', 'y', 2);
    faulty.arm(point);
    void s1.commit(cp(2)); // never settles: the process is gone
    await vi.waitFor(() => expect(faulty.dead).toBe(true));
    await faulty.landed();
    const backend = new StorageStateBackend(client, opts);
    expect(await uncommitted(backend.namespaceOf('j'), 1)).toBeGreaterThan(0); // the crash left newer versions

    const s2 = await backend.open('j');
    expect(s2.checkpoint?.epoch).toBe(1);
    for (let i = 0; i < 20; i++) expect(await s2.get('s', i, `k${i}`)).toEqual({ n: i });
    expect(await s2.get('s', 0, 'gone')).toBe('x');
    expect(await s2.get('s', 0, 'new')).toBeUndefined();
    const seen: string[] = [];
    for await (const e of s2.scan('s')) seen.push(`${e.slot}/${e.key}=${JSON.stringify(e.value)}`);
    expect(seen.sort()).toEqual(
      [...Array.from({ length: 20 }, (_, i) => `${i}/k${i}=${JSON.stringify({ n: i })}`), '0/gone="x"'].sort(),
    );

    // The new run commits epoch 2 too, touching one key: the crashed run's epoch-2 versions must stay invisible.
    s2.put('s', 0, 'k0', { n: -1 }, 2);
    await s2.commit(cp(2));
    const s3 = await backend.open('j');
    expect(s3.checkpoint?.epoch).toBe(2);
    expect(await s3.get('s', 0, 'k0')).toEqual({ n: -1 });
    for (let i = 1; i < 20; i++) expect(await s3.get('s', i, `k${i}`)).toEqual({ n: i });
    expect(await s3.get('s', 0, 'gone')).toBe('x');
    expect(await s3.get('s', 0, 'new')).toBeUndefined();
    // And an old run cannot commit over a newer one.
    s2.put('s', 0, 'k0', { n: -2 }, 3);
    await expect(s2.commit(cp(3))).rejects.toMatchObject({ name: 'VersionConflictError' });
  });
});

// ---- jobs --------------------------------------------------------------------------------------------------------

const KEYS = 30;

/** Counts per key per 1 s event-time window, to an idempotent sink: a lost or double-counted record would show. */
function windowed(sink: ReturnType<typeof upsertSink<number>>['sink'], total: number, rate?: number, source?: Source<string>) {
  return pipeline('win')
    .from(source ?? generator({ count: total, seed: 5, make: (_i, rng) => `k${rng.int(KEYS)}`, eventTime: (i) => i * 10, ...(rate ? { rate } : {}) }))
    .timestamps(undefined, { outOfOrderness: 0 })
    .keyBy((k) => k)
    .window(tumbling('1s'))
    .aggregate(count())
    .map((r) => ({ key: `${r.key}@${r.window.start}`, value: r.value }))
    .to(sink);
}

/**
 * The generator's records (same seed, same values and event times), read at ~1000/s and never past 80% while
 * `gate.slow`, then at full speed: the job is sure to be running for as long as the test needs.
 */
function gated(total: number, gate: { slow: boolean }): Source<string> {
  const values = Array.from({ length: total }, (_, i) => `k${rngFor(5, i).int(KEYS)}`);
  return {
    name: 'gated',
    bounded: true,
    async splits() {
      return [{ id: 'gated-0', spec: 0 }];
    },
    async open(_split, from?: Json) {
      let i = typeof from === 'number' ? from : 0;
      return {
        async read(max: number) {
          if (gate.slow) {
            await sleep(10);
            max = Math.min(max, 10, Math.floor(total * 0.8) - i);
          }
          const records = [];
          for (; records.length < max && i < total; i++) records.push({ value: values[i]!, eventTime: i * 10, bytes: 4 });
          return { records, bad: [], position: i, done: i >= total };
        },
        async close() {},
      };
    },
  };
}

async function expectedCounts(total: number): Promise<Map<string, number>> {
  const out = upsertSink<number>();
  await windowed(out.sink, total).run({ checkpointInterval: false, state: new MemoryStateBackend() });
  expect([...out.map.values()].reduce((a, b) => a + b, 0)).toBe(total);
  return out.map;
}

/** Resolves with the `n`th checkpoint the job commits from now on. */
function checkpoints(job: JobHandle, n: number): Promise<Checkpoint> {
  let seen = 0;
  return new Promise((resolve, reject) => {
    job.on('checkpoint', (c: Checkpoint) => {
      if (++seen === n) resolve(c);
    });
    job.done.then(() => reject(new Error(`the job ended before ${n} checkpoints`)), reject);
  });
}

describe.each([
  ['stream', 'mid-state-writes'],
  ['batch', 'before-checkpoint-record'],
] as Array<[Mode, CrashPoint]>)('a job on storage state (%s mode), its process killed %s', (mode, point) => {
  it('restarts from the last checkpoint with results identical to an uninterrupted run', async () => {
    const TOTAL = 5000;
    const expected = await expectedCounts(TOTAL);
    const opts = { prefix: `job-${mode}.`, slotCount: 16 };
    const run = { mode, checkpointInterval: 25, readBatch: 20, trigger: 'count=40' } as const;

    // An uninterrupted run on storage state gives the same results.
    const clean = upsertSink<number>();
    await windowed(clean.sink, TOTAL).run({ ...run, state: new StorageStateBackend(client, { ...opts, prefix: `clean-${mode}.` }) });
    expect(clean.map).toEqual(expected);

    const out = upsertSink<number>();
    const faulty = crashable(client);
    const first = windowed(out.sink, TOTAL, 2000).start({ ...run, state: new StorageStateBackend(faulty.client, opts) });
    await checkpoints(first, 3);
    faulty.arm(point);
    await vi.waitFor(() => expect(faulty.dead).toBe(true), { timeout: 5000 });
    await faulty.landed();
    const readBeforeCrash = first.metrics.source.records;
    expect(readBeforeCrash).toBeLessThan(TOTAL);
    // `first` is abandoned, hung in its commit, as a killed process would be.

    const backend = new StorageStateBackend(client, opts);
    const committed = await backend.checkpointOf('win');
    expect(committed?.epoch).toBe(first.metrics.checkpoints.lastEpoch);
    expect(await uncommitted(backend.namespaceOf('win'), committed!.epoch)).toBeGreaterThan(0); // the lost commit's writes
    const second = await windowed(out.sink, TOTAL).run({ ...run, state: backend });
    expect(second.state).toBe('finished');
    expect(second.metrics.source.records).toBeLessThan(TOTAL); // it resumed rather than starting over
    expect(second.metrics.source.records + readBeforeCrash).toBeGreaterThanOrEqual(TOTAL);
    expect(out.map).toEqual(expected);
  });
});

describe('a job on storage state while the storage tier scales out', () => {
  it('2 -> 3 storage nodes in the middle of a keyed windowed count: no lost or double-counted record', async () => {
    const TOTAL = 8000;
    const expected = await expectedCounts(TOTAL);
    const backend = new StorageStateBackend(client, { prefix: 'scale.', slotCount: 32 });
    const out = upsertSink<number>();
    const gate = { slow: true };
    const job = windowed(out.sink, TOTAL, undefined, gated(TOTAL, gate)).start({ mode: 'stream', state: backend, checkpointInterval: 50, readBatch: 25 });
    let ended = false;
    void job.done.then(() => (ended = true), () => (ended = true));
    await checkpoints(job, 2);
    const before = job.metrics.checkpoints.count;
    await scaleLocalStorage(cluster.dir, 3, { write: () => {} });
    expect(ended).toBe(false); // the scale-out happened under the running job
    expect(job.metrics.checkpoints.count).toBeGreaterThan(before);
    const during = job.metrics.source.records;
    expect(during).toBeGreaterThan(0);
    gate.slow = false;
    const table = await client.catalog.refresh(backend.namespaceOf('win'));
    expect(table!.partitionsOf('s3').length).toBeGreaterThan(0); // some of the job's state moved
    const result = await job.done;
    expect(result.state).toBe('finished');
    expect(out.map).toEqual(expected);
    // The state is still all there, on three nodes: a reopened job has nothing left to do.
    const again = upsertSink<number>();
    const rerun = await windowed(again.sink, TOTAL, undefined, gated(TOTAL, gate)).run({ mode: 'stream', state: backend, checkpointInterval: 50 });
    expect(rerun.metrics.source.records).toBe(0);
  });
});
