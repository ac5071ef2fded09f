/**
 * The compute tier with real node processes: dispatch across instances, failures under load (kill -9), elastic
 * scale-out and drained scale-in with zero failed calls, and bad input that costs one call, never a node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import type { ShardflowClient } from '../../src/client/index.js';
import { scaleLocalCompute } from '../../src/cluster/local-cluster.js';
import {
  ConnectionError,
  ServiceError,
  TimeoutError,
  TooLargeError,
  UnknownServiceError,
  ConfigError,
} from '../../src/errors/index.js';
import { loadServices } from '../../src/compute/services.js';

const SERVICES = join(import.meta.dirname, '..', '..', 'examples', 'services.ts');
let cluster: TestCluster;
let client: ShardflowClient;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 1, compute: 3, services: SERVICES });
  client = await cluster.client();
});
afterAll(async () => {
  await cluster?.stop();
});

/** Runs `call` in `workers` loops until `stop()` resolves; returns counts of outcomes. */
function load(call: () => Promise<unknown>, workers: number) {
  let running = true;
  const outcome = { ok: 0, failed: 0, errors: [] as unknown[] };
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        await call();
        outcome.ok++;
      } catch (err) {
        outcome.failed++;
        outcome.errors.push(err);
      }
    }
  });
  return {
    outcome,
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcome;
    },
  };
}

/** Resolves once at least `n` more calls have succeeded under `l`. */
async function progress(l: { outcome: { ok: number } }, n: number): Promise<void> {
  const target = l.outcome.ok + n;
  while (l.outcome.ok < target) await new Promise((r) => setImmediate(r));
}

describe('dispatch over compute instances', () => {
  it('round-robin spreads calls exactly; a key always reaches the same instance', async () => {
    const seen = await Promise.all(Array.from({ length: 30 }, () => client.call<string>('whoami')));
    const counts = new Map<string, number>();
    for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ c1: 10, c2: 10, c3: 10 });
    const byKey = await Promise.all(Array.from({ length: 10 }, () => client.call<string>('whoami', null, { key: 'user-42' })));
    expect(new Set(byKey).size).toBe(1);
    expect(await client.call('add', { a: 2, b: 3 }, { strategy: 'power-of-two' })).toBe(5);
    expect(await client.call('echo', { x: [1, 'two'] }, { strategy: 'least-outstanding' })).toEqual({ x: [1, 'two'] });
  });

  it('gives typed errors for bad calls and keeps serving', async () => {
    await expect(client.call('nope')).rejects.toBeInstanceOf(UnknownServiceError);
    const failed = await client.call('add', { a: 'x' }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ServiceError);
    expect((failed as ServiceError).message).toMatch(/add needs numbers/);
    await expect(client.call('sleep', { ms: 5000 }, { timeoutMs: 300 })).rejects.toBeInstanceOf(TimeoutError);
    await expect(client.call('echo', 'x'.repeat(5 * 1024 * 1024))).rejects.toBeInstanceOf(TooLargeError);
    expect(await client.call('add', { a: 1, b: 1 })).toBe(2);
    expect(client.members.ready('compute').map((m) => m.id)).toEqual(['c1', 'c2', 'c3']);
  });

  it('refuses a services module that does not load, or defines nothing usable', async () => {
    const broken = join(cluster.dir, 'broken.mjs');
    await writeFile(broken, 'export default { ok: () => 1, bad: 42 };');
    await expect(loadServices(broken)).rejects.toBeInstanceOf(ConfigError);
    const syntax = join(cluster.dir, 'syntax.mjs');
    await writeFile(syntax, 'export default {{{');
    await expect(loadServices(syntax)).rejects.toThrow(/cannot load services/);
    await expect(loadServices(join(cluster.dir, 'missing.ts'))).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('failures and elasticity under load', () => {
  it('kill -9 of an instance: idempotent calls succeed elsewhere, others fail fast and typed, nothing hangs', async () => {
    const idem = load(() => client.call('sleep', { ms: 20 }, { idempotent: true, timeoutMs: 5000 }), 16);
    const once = load(() => client.call('sleep', { ms: 20 }, { timeoutMs: 5000 }), 16);
    await progress(idem, 100);
    await cluster.kill9('c2');
    await progress(idem, 200);
    await progress(once, 100);
    const [a, b] = await Promise.all([idem.stop(), once.stop()]);
    expect(a.failed).toBe(0);
    // Calls in flight on the killed node were lost: without the idempotent retry the first loop would show them too.
    expect(b.failed).toBeGreaterThan(0);
    expect(b.errors.every((e) => e instanceof ConnectionError)).toBe(true);
    await cluster.restart('c2');
  });

  it('scales out and in under steady load with zero failed calls', async () => {
    const l = load(() => client.call<string>('sleep', { ms: 5 }), 24);
    await progress(l, 100);
    const joined = cluster.nextMemberEvent((e) => e.type === 'join' && e.member.id === 'c4');
    await scaleLocalCompute(cluster.dir, 4);
    await joined;
    // The new instance takes calls as soon as its announcement arrives.
    const onNew = await Promise.all(Array.from({ length: 8 }, () => client.call<string>('whoami')));
    expect(onNew).toContain('c4');
    await progress(l, 200);
    await scaleLocalCompute(cluster.dir, 2);
    await progress(l, 200);
    const outcome = await l.stop();
    expect(outcome.failed).toBe(0);
    expect(client.members.ready('compute').map((m) => m.id)).toEqual(['c1', 'c2']);
  });
});
