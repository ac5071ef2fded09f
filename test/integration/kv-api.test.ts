/**
 * The key-value API against real storage node processes: conditional writes, batches, range namespaces that split
 * themselves while being written and scan in order, MOVED answers for partitions a node does not own, and bad input
 * that gets a typed error while the node stays up and no data changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import type { ShardflowClient } from '../../src/client/index.js';
import { splitAddress } from '../../src/client/index.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { connect as wireConnect, encodeFrame, type Connection } from '../../src/wire/index.js';
import {
  AuthenticationError,
  InvalidArgumentError,
  MovedError,
  NamespaceExistsError,
  TooLargeError,
  UnknownNamespaceError,
  VersionConflictError,
} from '../../src/errors/index.js';
import { compareKeys } from '../../src/partitioning/index.js';
import { randomBytes } from 'node:crypto';

let cluster: TestCluster;
let client: ShardflowClient;
let secret: Buffer;

beforeAll(async () => {
  cluster = await startTestCluster({ storage: 3 });
  client = await cluster.client();
  secret = await new ClusterDir(cluster.dir).readSecret();
});
afterAll(async () => {
  await cluster?.stop();
});

/** A raw authenticated connection to one storage node. */
async function nodeConnection(id: string): Promise<Connection> {
  const m = client.members.get(id)!;
  const [host, port] = splitAddress(m.address);
  return wireConnect({ host, port, secret });
}

async function countKeys(ns: string): Promise<number> {
  let n = 0;
  for await (const _ of client.scan(ns, {})) n++;
  return n;
}

describe('key-value operations', () => {
  it('gets, puts, deletes and compares versions', async () => {
    expect(await client.get('default', 'absent')).toBeUndefined();
    const v1 = await client.put('default', 'cas', { n: 1 }, { ifVersion: 0 });
    await expect(client.put('default', 'cas', { n: 2 }, { ifVersion: 0 })).rejects.toBeInstanceOf(VersionConflictError);
    const err = await client.put('default', 'cas', { n: 2 }, { ifVersion: v1 + 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect((err as VersionConflictError).details.actual).toBe(v1);
    const v2 = await client.put('default', 'cas', { n: 2 }, { ifVersion: v1 });
    expect(v2).toBeGreaterThan(v1);
    expect(await client.getEntry('default', 'cas')).toEqual({ value: { n: 2 }, version: v2 });
    await expect(client.delete('default', 'cas', { ifVersion: v1 })).rejects.toBeInstanceOf(VersionConflictError);
    expect(await client.delete('default', 'cas', { ifVersion: v2 })).toBe(true);
    expect(await client.delete('default', 'cas')).toBe(false);
    expect(await client.get('default', 'cas')).toBeUndefined();
  });

  it('applies batches across nodes and keeps {tag} keys together', async () => {
    const ops = Array.from({ length: 300 }, (_, i) => ({ op: 'put' as const, key: `b:${i}`, value: i }));
    const versions = await client.batch('default', ops);
    expect(versions).toHaveLength(300);
    expect(await client.get('default', 'b:299')).toBe(299);
    await client.batch('default', [{ op: 'del', key: 'b:0' }, { op: 'put', key: 'b:1', value: 'one' }]);
    expect(await client.get('default', 'b:0')).toBeUndefined();
    expect(await client.get('default', 'b:1')).toBe('one');
    const table = client.catalog.table('default');
    expect(table.place('{user7}.profile').partition).toBe(table.place('{user7}.orders').partition);
  });

  it('splits a range namespace as it grows and scans it in key order across ranges', async () => {
    await client.createNamespace('events', { scheme: 'range', splitBytes: 8 * 1024 });
    const split = new Promise<void>((resolve) => {
      const stop = client.catalog.onChange((t, name) => {
        if (name === 'events' && t && t.partitions().length >= 3) {
          stop();
          resolve();
        }
      });
    });
    const keys = Array.from({ length: 3000 }, (_, i) => `evt:${String((i * 7919) % 3000).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 250) {
      await client.batch('events', keys.slice(i, i + 250).map((key) => ({ op: 'put' as const, key, value: { key, pad: 'x'.repeat(40) } })));
    }
    await split;
    const scanned: string[] = [];
    for await (const e of client.scan('events', { pageSize: 100 })) scanned.push(e.key);
    expect(scanned).toEqual([...new Set(keys)].sort(compareKeys));
    const bounded: string[] = [];
    for await (const e of client.scan('events', { start: 'evt:01000', end: 'evt:01010' })) bounded.push(e.key);
    expect(bounded).toEqual(Array.from({ length: 10 }, (_, i) => `evt:${String(1000 + i).padStart(5, '0')}`));
    // Writes keep landing on the right range after the splits.
    await client.put('events', 'evt:99999', 'last');
    expect(await client.get('events', 'evt:99999')).toBe('last');
  });

  it('answers MOVED with the owner and epoch for a partition the node does not own', async () => {
    const table = client.catalog.table('default');
    const slot = table.place('moved-key').partition;
    const owner = table.ownerOf(slot)!;
    const other = ['s1', 's2', 's3'].find((id) => id !== owner)!;
    const conn = await nodeConnection(other);
    try {
      const err = await conn.call('kv.get', { ns: 'default', key: 'moved-key' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MovedError);
      expect((err as MovedError).details).toMatchObject({ namespace: 'default', partition: slot, owner, epoch: table.epoch });
    } finally {
      conn.close();
    }
  });

  it('a consistent scan sees the data as it was when it began, on every node', async () => {
    await client.createNamespace('snap', { scheme: 'hash', slotCount: 16 });
    const keys = Array.from({ length: 400 }, (_, i) => `s${i}`);
    await client.batch('snap', keys.map((key) => ({ op: 'put' as const, key, value: 0 })));
    const rewrite = async (value: number) => {
      await client.batch('snap', [...keys, 'new-1', 'new-2'].map((key) => ({ op: 'put' as const, key, value })));
    };
    const scanWhileWriting = async (consistent: boolean, value: number) => {
      const seen = new Map<string, unknown>();
      let wrote = false;
      for await (const e of client.scan('snap', { consistent, pageSize: 10 })) {
        if (!wrote) {
          await rewrite(value); // after the scan began, before most of it is read
          wrote = true;
        }
        seen.set(e.key, e.value);
      }
      return seen;
    };
    const snapshot = await scanWhileWriting(true, 1);
    expect(snapshot.size).toBe(400);
    expect([...snapshot.values()].every((v) => v === 0)).toBe(true);
    // Without a snapshot the same scan sees the later writes: the check above would catch a snapshot that is not one.
    const live = await scanWhileWriting(false, 2);
    expect(live.has('new-1')).toBe(true);
    expect([...live.values()].filter((v) => v === 2).length).toBeGreaterThan(300);
  });

  it('refuses a namespace re-created with another scheme, copies or slot count, and returns it for the same', async () => {
    await expect(client.createNamespace('events', { scheme: 'hash' })).rejects.toBeInstanceOf(NamespaceExistsError);
    const t = await client.createNamespace('fixed', { scheme: 'hash', slotCount: 32, copies: 1 });
    await expect(client.createNamespace('fixed', { scheme: 'hash', copies: 3 })).rejects.toThrow(/exists with 1 copies/);
    await expect(client.createNamespace('fixed', { scheme: 'hash', slotCount: 64 })).rejects.toThrow(/exists with 32 slots/);
    expect((await client.createNamespace('fixed', { scheme: 'hash', slotCount: 32, copies: 1 })).epoch).toBe(t.epoch);
    expect((await client.createNamespace('fixed', { scheme: 'hash' })).copies).toBe(1);
    await client.createNamespace('fixed-range', { scheme: 'range', autoMerge: false });
    await expect(client.createNamespace('fixed-range', { scheme: 'range', autoMerge: true })).rejects.toThrow(/exists with autoMerge false/);
  });
});

describe('bad input', () => {
  it('gives typed errors for bad keys, values, namespaces and params, and changes nothing', async () => {
    await client.put('default', 'keep', 'safe');
    const before = await countKeys('default');
    await expect(client.put('default', '', 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.put('default', 'a\u0000b', 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.put('default', 'k'.repeat(2000), 1)).rejects.toBeInstanceOf(TooLargeError);
    await expect(client.put('default', 'big', 'x'.repeat(2 * 1024 * 1024))).rejects.toBeInstanceOf(TooLargeError);
    await expect(client.put('nope', 'k', 1)).rejects.toBeInstanceOf(UnknownNamespaceError);
    await expect(client.batch('default', [{ op: 'put', key: 'fine', value: 1 }, { op: 'put', key: '', value: 2 }])).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.createNamespace('bad name!', { scheme: 'hash' })).rejects.toBeInstanceOf(InvalidArgumentError);

    const conn = await nodeConnection('s1');
    try {
      await expect(conn.call('kv.put', 'not an object')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(conn.call('kv.put', { ns: 42, key: 'k', value: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(conn.call('kv.put', { ns: 'default', key: 'k' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(conn.call('kv.batch', { ns: 'default', ops: 'x' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(conn.call('kv.scan', { ns: 'default', partition: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(conn.call('kv.put', { ns: 'default', key: 'k', value: 1, ifVersion: 'x' })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    } finally {
      conn.close();
    }
    expect(await client.get('default', 'fine')).toBeUndefined();
    expect(await countKeys('default')).toBe(before);
    expect(await client.get('default', 'keep')).toBe('safe');
  });

  it('closes connections with malformed, oversized or unauthenticated frames; the node keeps serving', async () => {
    const m = client.members.get('s2')!;
    const [host, port] = splitAddress(m.address);
    const rawClosed = async (bytes: Buffer) => {
      const socket = netConnect({ host, port });
      socket.on('data', () => {});
      socket.on('error', () => {});
      await once(socket, 'connect');
      const closed = once(socket, 'close');
      socket.write(bytes);
      await closed;
    };
    await rawClosed(encodeFrame([0, 1, 'kv.get', { ns: 'default', key: 'k' }])); // no handshake
    await rawClosed(Buffer.from([0xff, 0xff, 0xff, 0xff])); // a 4 GiB frame announced
    await rawClosed(Buffer.from([0, 0, 0, 2, 0xc1, 0xc1])); // not msgpack
    await expect(wireConnect({ host, port, secret: randomBytes(32) })).rejects.toBeInstanceOf(AuthenticationError);

    const conn = await nodeConnection('s2');
    try {
      const closed = once(conn, 'close');
      await conn.call('kv.put', { ns: 'default', key: 'huge', value: Buffer.alloc(17 * 1024 * 1024) }).catch(() => undefined);
      await closed;
    } finally {
      conn.close();
    }
    await client.put('default', 'after-abuse', 'ok');
    expect(await client.get('default', 'after-abuse')).toBe('ok');
    expect(client.members.get('s2')?.state).toBe('ready');
  });
});
