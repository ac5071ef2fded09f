/** Reading a follower's own copy of a key in tests. */
import { UnavailableError } from '../../src/errors/index.js';
import type { Connection } from '../../src/wire/index.js';

/**
 * `kv.get` from the copy on `conn` (not redirected). A copy that has not heard from its leader yet — it became a
 * follower a moment ago and the leader's first heartbeat is still on its way — refuses as possibly stale: asked
 * again until it answers, for up to `timeoutMs`.
 */
export async function replicaGet(conn: Connection, params: { ns: string; key: string; epoch: number }, timeoutMs = 5000): Promise<{ value?: unknown } | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await conn.call('kv.get', { ...params, replica: true, maxStalenessMs: 60_000 })) as { value?: unknown } | null;
    } catch (err) {
      if (!(err instanceof UnavailableError) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
