/**
 * The one conformance suite every {@link Coordinator} implementation must pass. A test file calls
 * `coordinatorConformance(name, factory)`; the factory makes a fresh subject for each test.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../src/coordination/index.js';
import { InvalidArgumentError } from '../../src/errors/index.js';
import { Collector, signal, uniquePrefix, within } from './helpers.js';

export interface ConformanceSubject {
  coordinator: Coordinator;
  /** Another client of the same store (its own connection and keep-alives). */
  newClient: () => Promise<Coordinator>;
  /** Makes the store drop a lease behind its holder's back (so the holder's `onLost` must fire). */
  forceExpire: (leaseId: string) => Promise<void>;
  /** Closes everything the factory (and newClient) made. */
  cleanup: () => Promise<void>;
}

export interface ConformanceOptions {
  /** Longest time from a lease holder's close() (its keep-alives stop) to the delete event, for TTL 1000 ms. */
  expiryBoundMs: number;
}

const TTL = 1000;

export function coordinatorConformance(
  name: string,
  factory: () => Promise<ConformanceSubject>,
  options: ConformanceOptions,
): void {
  describe(`${name} conformance`, () => {
    let subject: ConformanceSubject;
    let c: Coordinator;
    let p: string;

    beforeEach(async () => {
      subject = await factory();
      c = subject.coordinator;
      p = uniquePrefix();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('gets, puts and lists in byte order, isolated by prefix', async () => {
      expect(await c.get(`${p}missing`)).toBeUndefined();
      // Byte (code point) order, which differs from UTF-16 order for the last two keys.
      const keys = ['b', 'a', 'a/x', 'z', 'é', '\ufffd', '😀'];
      for (const k of keys) await c.put(`${p}${k}`, `v-${k}`);
      await c.put(`${p.slice(0, -1)}X/sibling`, 'not under the prefix');
      const listed = await c.list(p);
      expect(listed.map((e) => e.key)).toEqual(['a', 'a/x', 'b', 'z', 'é', '\ufffd', '😀'].map((k) => p + k));
      expect(listed.map((e) => e.value)).toEqual(['a', 'a/x', 'b', 'z', 'é', '\ufffd', '😀'].map((k) => `v-${k}`));
      expect(await c.list(`${p}a`)).toHaveLength(2);
      expect(await c.list(`${p}nothing/`)).toEqual([]);
      const entry = await c.get(`${p}b`);
      expect(entry).toMatchObject({ key: `${p}b`, value: 'v-b' });
      expect(entry!.revision).toBeGreaterThan(0);
      expect(entry!.leaseId).toBeUndefined();
      await c.put(`${p}b`, 'second');
      expect((await c.get(`${p}b`))!.value).toBe('second');
    });

    it('bumps the revision with every change and reports it per key', async () => {
      const r1 = await c.put(`${p}a`, '1');
      const r2 = await c.put(`${p}b`, '1');
      const r3 = await c.put(`${p}a`, '2');
      expect(r2).toBeGreaterThan(r1);
      expect(r3).toBeGreaterThan(r2);
      expect((await c.get(`${p}a`))!.revision).toBe(r3);
      expect((await c.get(`${p}b`))!.revision).toBe(r2);
      expect(await c.delete(`${p}b`)).toBe(true);
      expect(await c.put(`${p}c`, '1')).toBeGreaterThan(r3 + 1); // The delete took a revision too.
    });

    it('compare-and-set creates if absent, succeeds on the current revision, and returns the current on failure', async () => {
      const key = `${p}cas`;
      const created = await c.compareAndSet(key, 0, 'one');
      expect(created.ok).toBe(true);
      const rev1 = created.ok ? created.revision : 0;
      expect((await c.get(key))!.revision).toBe(rev1);

      const again = await c.compareAndSet(key, 0, 'other');
      expect(again).toEqual({ ok: false, current: expect.objectContaining({ key, value: 'one', revision: rev1 }) });

      const updated = await c.compareAndSet(key, rev1, 'two');
      expect(updated.ok).toBe(true);
      const stale = await c.compareAndSet(key, rev1, 'three');
      expect(stale.ok).toBe(false);
      expect(!stale.ok && stale.current?.value).toBe('two');
      expect((await c.get(key))!.value).toBe('two');

      const missing = await c.compareAndSet(`${p}absent`, 5, 'x');
      expect(missing).toEqual({ ok: false });
      expect(await c.get(`${p}absent`)).toBeUndefined();
    });

    it('compare-and-delete deletes only the expected revision', async () => {
      const key = `${p}cad`;
      const rev = await c.put(key, 'v');
      expect(await c.compareAndDelete(key, rev + 1000)).toBe(false);
      expect(await c.compareAndDelete(key, 0)).toBe(false);
      expect(await c.get(key)).toBeDefined();
      expect(await c.compareAndDelete(key, rev)).toBe(true);
      expect(await c.get(key)).toBeUndefined();
      expect(await c.compareAndDelete(key, rev)).toBe(false);
      await c.put(key, 'again');
      expect(await c.delete(key)).toBe(true);
      expect(await c.delete(key)).toBe(false);
    });

    it('watches see puts and deletes under the prefix, in order', async () => {
      const events = new Collector();
      const watch = await c.watch(p, events.push);
      const r1 = await c.put(`${p}a`, '1');
      await c.put(`${p.slice(0, -1)}X/outside`, 'no');
      const r2 = await c.put(`${p}b`, '2');
      await c.delete(`${p}a`);
      const r4 = await c.put(`${p}a`, '3');
      const seen = await events.waitForCount(4, 3000);
      expect(seen.map((e) => [e.type, e.key, e.value])).toEqual([
        ['put', `${p}a`, '1'],
        ['put', `${p}b`, '2'],
        ['delete', `${p}a`, undefined],
        ['put', `${p}a`, '3'],
      ]);
      expect(seen[0]!.revision).toBe(r1);
      expect(seen[1]!.revision).toBe(r2);
      expect(seen[2]!.revision).toBeGreaterThan(r2);
      expect(seen[3]!.revision).toBe(r4);
      await watch.close();
    });

    it('replays from fromRevision', async () => {
      const r1 = await c.put(`${p}a`, '1');
      await c.put(`${p}b`, '2');
      await c.delete(`${p}a`);
      const events = new Collector();
      const watch = await c.watch(p, events.push, { fromRevision: r1 });
      const r4 = await c.put(`${p}c`, '4');
      const seen = await events.waitForCount(4, 3000);
      expect(seen.map((e) => `${e.type} ${e.key.slice(p.length)}`)).toEqual(['put a', 'put b', 'delete a', 'put c']);
      expect(seen[0]!.revision).toBe(r1);
      expect(seen[3]!.revision).toBe(r4);
      await watch.close();
    });

    it('stops delivering after close', async () => {
      const closed = new Collector();
      const open = new Collector();
      const w1 = await c.watch(p, closed.push);
      const w2 = await c.watch(p, open.push);
      await c.put(`${p}before`, '1');
      await closed.waitForCount(1, 3000);
      await w1.close();
      await c.put(`${p}after`, '2');
      await open.waitFor((e) => e.key === `${p}after`, 3000);
      expect(closed.items.map((e) => e.key)).toEqual([`${p}before`]);
      await w2.close();
    });

    it('deletes a lease\'s keys when it is revoked', async () => {
      const lease = await c.grantLease(TTL);
      expect(lease.ttlMs).toBeGreaterThanOrEqual(TTL);
      await c.put(`${p}owned`, 'x', { lease });
      await c.put(`${p}free`, 'y');
      expect((await c.get(`${p}owned`))!.leaseId).toBe(lease.id);
      const events = new Collector();
      const watch = await c.watch(p, events.push);
      const lost = new Collector<Error>();
      lease.onLost(lost.push);
      await lease.revoke();
      await events.waitFor((e) => e.type === 'delete' && e.key === `${p}owned`, 3000);
      expect(await c.get(`${p}owned`)).toBeUndefined();
      expect(await c.get(`${p}free`)).toBeDefined();
      await expect(c.put(`${p}again`, 'z', { lease })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(lost.items).toEqual([]); // onLost is not for revoke().
      expect(lease.heldUntil).toBe(0);
      await watch.close();
    });

    it('keeps a lease alive past its TTL while its holder runs', async () => {
      const lease = await c.grantLease(TTL);
      // Held for a while yet, and never further than a TTL from now (the coordinator's clock started no earlier).
      expect(lease.heldUntil).toBeGreaterThan(performance.now());
      expect(lease.heldUntil).toBeLessThanOrEqual(performance.now() + lease.ttlMs);
      await c.put(`${p}kept`, 'x', { lease });
      const events = new Collector();
      const watch = await c.watch(p, events.push);
      // Nothing may happen here, so this one test has to wait: 2.5 TTLs with keep-alives every TTL/3.
      await expect(events.waitFor(() => true, 2.5 * TTL)).rejects.toThrow(/timed out/);
      expect((await c.get(`${p}kept`))?.leaseId).toBe(lease.id);
      // Keep-alives moved it on: still held past the first TTL, and never further than a TTL from now.
      expect(lease.heldUntil).toBeGreaterThan(performance.now());
      expect(lease.heldUntil).toBeLessThanOrEqual(performance.now() + lease.ttlMs);
      await watch.close();
      await lease.revoke();
    });

    it('expires a lease whose holder stopped keeping it alive, and others see the delete', async () => {
      const owner = await subject.newClient();
      const lease = await owner.grantLease(TTL);
      await owner.put(`${p}node`, 'alive', { lease });
      const events = new Collector();
      const watch = await c.watch(p, events.push);
      const stoppedAt = Date.now();
      await owner.close();
      await events.waitFor((e) => e.type === 'delete' && e.key === `${p}node`, options.expiryBoundMs + 2000);
      const elapsed = Date.now() - stoppedAt;
      console.info(`[${name}] lease of TTL ${TTL} ms: delete seen ${elapsed} ms after the holder stopped`);
      expect(elapsed).toBeLessThanOrEqual(options.expiryBoundMs);
      expect(await c.get(`${p}node`)).toBeUndefined();
      await watch.close();
    });

    it('calls onLost once when the store drops the lease', async () => {
      const lease = await c.grantLease(TTL);
      await c.put(`${p}k`, 'v', { lease });
      const lost = new Collector<Error>();
      lease.onLost(lost.push);
      await subject.forceExpire(lease.id);
      const reason = await lost.waitFor(() => true, 2 * TTL + 1000, 'onLost');
      expect(reason).toBeInstanceOf(Error);
      expect(await c.get(`${p}k`)).toBeUndefined();
      const late = await within(new Promise<Error>((r) => lease.onLost(r)), 1000, 'a late onLost listener');
      expect(late).toBe(reason);
      expect(lost.items).toHaveLength(1);
      expect(lease.heldUntil).toBe(0);
    });

    it('elects one leader; the next takes over when it resigns', async () => {
      const election = `e-${p.slice(1, -1)}`;
      const other = await subject.newClient();
      const leaseA = await c.grantLease(TTL);
      const leaseB = await other.grantLease(TTL);
      const a = await c.campaign(election, 'alice', leaseA);
      expect(a).toMatchObject({ election, candidate: 'alice' });
      let bWon = false;
      const bCampaign = other.campaign(election, 'bob', leaseB).then((l) => {
        bWon = true;
        return l;
      });
      expect(await other.leader(election)).toBe('alice');
      expect(await c.leader(election)).toBe('alice');
      expect(bWon).toBe(false);
      // Campaigning again with the same lease is a no-op win, not a deadlock.
      const again = await c.campaign(election, 'alice', leaseA);
      expect(again.candidate).toBe('alice');
      await a.resign();
      const b = await within(bCampaign, 3000, 'bob to be elected');
      expect(b.candidate).toBe('bob');
      expect(await c.leader(election)).toBe('bob');
      await b.resign();
      expect(await c.leader(election)).toBeUndefined();
      await leaseA.revoke();
      await leaseB.revoke();
    });

    it('hands leadership over when the leader\'s lease is lost, and tells the old leader', async () => {
      const election = `e-${p.slice(1, -1)}`;
      const other = await subject.newClient();
      const leaseA = await c.grantLease(TTL);
      const leaseB = await other.grantLease(TTL);
      const a = await c.campaign(election, 'alice', leaseA);
      const lostA = signal<Error>();
      a.onLost(lostA.resolve);
      const bCampaign = other.campaign(election, 'bob', leaseB);
      expect(await c.leader(election)).toBe('alice');
      await subject.forceExpire(leaseA.id);
      await within(lostA.promise, 2 * TTL + 1000, 'alice to hear she lost');
      const b = await within(bCampaign, 3000, 'bob to take over');
      expect(b.candidate).toBe('bob');
      expect(await other.leader(election)).toBe('bob');
      await a.resign(); // After a loss, resigning must not unseat the new leader.
      expect(await other.leader(election)).toBe('bob');
      await leaseB.revoke();
    });

    it('hands leadership over when the leader stops keeping its lease alive', async () => {
      const election = `e-${p.slice(1, -1)}`;
      const owner = await subject.newClient();
      const lease = await owner.grantLease(TTL);
      await owner.campaign(election, 'alice', lease);
      const mine = await c.grantLease(TTL);
      const bCampaign = c.campaign(election, 'bob', mine);
      await owner.close();
      const b = await within(bCampaign, options.expiryBoundMs + 2000, 'bob to take over');
      expect(b.candidate).toBe('bob');
      await mine.revoke();
    });

    it('stops campaigning when aborted', async () => {
      const election = `e-${p.slice(1, -1)}`;
      const lease = await c.grantLease(TTL);
      await c.campaign(election, 'alice', lease);
      const other = await c.grantLease(TTL);
      const abort = new AbortController();
      const pending = c.campaign(election, 'bob', other, { signal: abort.signal });
      abort.abort();
      await expect(within(pending, 3000, 'the campaign to end')).rejects.toThrow(/abort/i);
      expect(await c.leader(election)).toBe('alice');
    });

    it('refuses bad arguments with InvalidArgumentError', async () => {
      await expect(c.put('', 'v')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(c.put(`${p}${'k'.repeat(5000)}`, 'v')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(c.put(`${p}big`, 'v'.repeat(1024 * 1024 + 1))).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(c.compareAndSet(`${p}k`, -1, 'v')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(c.grantLease(0)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(c.watch(p, () => {}, { fromRevision: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      // A value right at the limit is fine.
      await c.put(`${p}max`, 'v'.repeat(1024 * 1024));
      expect((await c.get(`${p}max`))!.value).toHaveLength(1024 * 1024);
    });
  });
}
