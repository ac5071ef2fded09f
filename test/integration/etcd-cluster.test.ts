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

describe('shardflow attach', () => {
  it('makes a directory from which every --dir command works on the etcd cluster, and refuses what does not fit', async () => {
    const { mkdtemp, rm, writeFile, chmod } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { cli } = await import('../harness/cli.js');
    const elsewhere = await mkdtemp(join(tmpdir(), 'sf-attach-'));
    try {
      const url = `etcd://${etcd.endpoints.map((e) => e.replace(/^http:\/\//, '')).join(',')}/it-${process.pid}`;
      const dir = join(elsewhere, 'prod');
      const attached = await cli(['attach', '--dir', dir, '--coordinator', url, '--secret-file', join(cluster.dir, 'secret')]);
      expect(attached.code, attached.stderr).toBe(0);
      expect(attached.stdout).toMatch(/now points at .* \(3 nodes registered\)/);

      const status = await cli(['status', '--dir', dir, '--json']);
      expect(status.code, status.stderr).toBe(0);
      expect((JSON.parse(status.stdout) as { nodes: Array<{ id: string }> }).nodes.map((n) => n.id).sort()).toEqual(['c1', 's1', 's2']);
      expect((await cli(['kv', 'put', 'from-elsewhere', '42', '--dir', dir])).code).toBe(0);
      expect(await (await cluster.client()).get('default', 'from-elsewhere')).toBe(42);
      // Attaching again to the same cluster is fine; to another coordinator, not.
      expect((await cli(['attach', '--dir', dir, '--coordinator', url, '--secret-file', join(cluster.dir, 'secret')])).code).toBe(0);
      const other = await cli(['attach', '--dir', dir, '--coordinator', 'etcd://127.0.0.1:1', '--secret-file', join(cluster.dir, 'secret')]);
      expect(other.code).not.toBe(0);
      expect(other.stderr).toMatch(/already belongs to a cluster with another coordinator/);

      // A secret others can read is refused; a coordinator that does not answer leaves no directory behind.
      const loose = join(elsewhere, 'loose-secret');
      await writeFile(loose, 'ab'.repeat(32));
      await chmod(loose, 0o644);
      const refused = await cli(['attach', '--dir', join(elsewhere, 'x'), '--coordinator', url, '--secret-file', loose]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/readable by others/);
      const dead = await cli(['attach', '--dir', join(elsewhere, 'y'), '--coordinator', 'embedded://127.0.0.1:1', '--secret-file', join(cluster.dir, 'secret')]);
      expect(dead.code).not.toBe(0);
      expect(dead.stderr).toMatch(/does not answer/);
      expect(existsSync(join(elsewhere, 'y', 'cluster.json'))).toBe(false);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});
