import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryStore, type WatchEvent } from '../../src/coordination/index.js';
import { compareKeys } from '../../src/coordination/key-order.js';

type Op =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string }
  | { kind: 'cas'; key: string; value: string; stale: boolean }
  | { kind: 'cad'; key: string; stale: boolean };

// Few distinct keys so operations collide; characters chosen where UTF-16 and UTF-8 orders disagree.
const key = fc.constantFrom('/a', '/a/b', '/b', '/é', '/\ufffd', '/😀', '/z', '/ab');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('put' as const), key, value: fc.string({ maxLength: 4 }) }),
  fc.record({ kind: fc.constant('delete' as const), key }),
  fc.record({ kind: fc.constant('cas' as const), key, value: fc.string({ maxLength: 4 }), stale: fc.boolean() }),
  fc.record({ kind: fc.constant('cad' as const), key, stale: fc.boolean() }),
);

describe('MemoryStore', () => {
  it('matches a plain map model; lists in UTF-8 byte order; replaying the history rebuilds the state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const store = await MemoryStore.open();
        const model = new Map<string, { value: string; revision: number }>();
        const events: WatchEvent[] = [];
        store.watch('/', (e) => events.push(e));
        for (const o of ops) {
          const current = model.get(o.key);
          if (o.kind === 'put') {
            model.set(o.key, { value: o.value, revision: await store.put(o.key, o.value) });
          } else if (o.kind === 'delete') {
            expect(await store.delete(o.key)).toBe(model.delete(o.key));
          } else if (o.kind === 'cas') {
            const expected = o.stale ? (current?.revision ?? 0) + 1 : (current?.revision ?? 0);
            const r = await store.compareAndSet(o.key, expected, o.value);
            expect(r.ok).toBe(!o.stale);
            if (r.ok) model.set(o.key, { value: o.value, revision: r.revision });
            else expect(r.current?.revision).toBe(current?.revision);
          } else {
            const expected = o.stale ? (current?.revision ?? 0) + 1 : (current?.revision ?? 0);
            const deleted = await store.compareAndDelete(o.key, expected);
            expect(deleted).toBe(!o.stale && current !== undefined);
            if (deleted) model.delete(o.key);
          }
        }
        const byBytes = [...model.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(store.list('/').map((e) => e.key)).toEqual(byBytes);
        expect(store.list('/').map((e) => [e.value, e.revision])).toEqual(
          byBytes.map((k) => [model.get(k)!.value, model.get(k)!.revision]),
        );
        // One event per change, revisions 1..n without a gap.
        expect(events.map((e) => e.revision)).toEqual(events.map((_, i) => i + 1));
        expect(store.revision).toBe(events.length);
        const replayed = new Map<string, string>();
        if (events.length > 0) {
          store.watch('/', (e) => (e.type === 'put' ? replayed.set(e.key, e.value!) : replayed.delete(e.key)), 1);
        }
        expect(Object.fromEntries(replayed)).toEqual(Object.fromEntries([...model].map(([k, v]) => [k, v.value])));
        await store.close();
      }),
      { numRuns: 200 },
    );
  });

  it('orders keys by code point like etcd does by bytes', () => {
    const keys = ['\ufffd', '😀', 'z', 'é', '', 'a', 'ab'];
    const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...keys].sort(compareKeys)).toEqual(expected);
  });

  it('expires a lease after its TTL unless kept alive, deleting its keys with one event each', async () => {
    const store = await MemoryStore.open();
    const events: WatchEvent[] = [];
    store.watch('/', (e) => events.push(e));
    const lease = store.grantLease(150);
    await store.put('/x', '1', lease.id);
    await store.put('/y', '2', lease.id);
    await store.put('/y', '3'); // A put without the lease detaches the key from it.
    const expired = new Promise<void>((resolve) => store.watch('/x', (e) => e.type === 'delete' && resolve()));
    const started = Date.now();
    await expired;
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(store.keepAlive(lease.id)).toBe(false);
    expect(store.get('/y')?.value).toBe('3');
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(['put /x', 'put /y', 'put /y', 'delete /x']);
    expect(store.leaseCount).toBe(0);
    await store.close();
  });
});
