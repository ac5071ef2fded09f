/**
 * Membership with real node processes: a watcher learns of a join, a clean leave and a death (kill -9, lease expiry)
 * within the bound the lease TTL gives (1 s TTL, keep-alive every TTL/3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster({ storage: 1, compute: 1 });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('membership of node processes', () => {
  it('sees a death within ~1 s of kill -9, a join on restart, and a clean leave on SIGTERM', async () => {
    const pid = await cluster.pid('c1');
    const death = cluster.nextMemberEvent((e) => e.member.id === 'c1', 5000);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const event = await death;
    const noticedMs = Date.now() - killedAt;
    expect(event.type).toBe('death');
    // TTL 1000 ms after the last keep-alive, which was at most TTL/3 before the kill, plus delivery.
    expect(noticedMs).toBeLessThan(1500);

    const join = cluster.nextMemberEvent((e) => e.member.id === 'c1' && e.type === 'join');
    await cluster.restart('c1');
    expect((await join).member).toMatchObject({ id: 'c1', role: 'compute', state: 'ready' });

    const leave = cluster.nextMemberEvent((e) => e.member.id === 'c1' && (e.type === 'leave' || e.type === 'death'));
    process.kill(await cluster.pid('c1'), 'SIGTERM');
    expect((await leave).type).toBe('leave');
  });
});
