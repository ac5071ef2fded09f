/**
 * The multi-host configuration on one machine: storage node processes coordinated by a real etcd instead of the
 * embedded coordinator — registration, namespace tables, routing and kill -9 recovery all through etcd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type RunningEtcd } from '../harness/etcd.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';

let etcd: RunningEtcd;
let cluster: TestCluster;

beforeAll(async () => {
  etcd = await startEtcd();
  cluster = await startTestCluster({
    storage: 2,
    compute: 1,
    coordinator: { kind: 'etcd', endpoints: etcd.endpoints, prefix: `/it-${process.pid}` },
  });
});
afterAll(async () => {
  await cluster?.stop();
  await etcd?.stop();
});

describe('a cluster coordinated by etcd', () => {
  it('registers nodes, routes keys, and recovers a killed node', async () => {
    const client = await cluster.client();
    expect(client.members.ready().map((m) => m.id)).toEqual(['c1', 's1', 's2']);
    await client.createNamespace('ordered', { scheme: 'range' });
    await Promise.all(Array.from({ length: 2000 }, (_, i) => client.put('default', `k${i}`, i)));
    await client.batch('ordered', Array.from({ length: 100 }, (_, i) => ({ op: 'put' as const, key: `o${String(i).padStart(3, '0')}`, value: i })));

    await cluster.kill9('s1');
    await cluster.restart('s1');
    const values = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.get('default', `k${i}`)));
    expect(values).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    const keys: string[] = [];
    for await (const e of client.scan('ordered', {})) keys.push(e.key);
    expect(keys).toHaveLength(100);
    expect(keys[0]).toBe('o000');
    expect(keys[99]).toBe('o099');
  });
});
