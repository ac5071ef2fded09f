/**
 * `shardflow scale` (and the autoscaler's local provisioner) start and stop node processes on this host, named from
 * this directory's own node files (s1, s2, … / c1, c2, …). On a directory whose nodes run elsewhere — one made by
 * `shardflow attach`, or a cluster other hosts joined — that would start a second `s1` next to the live one, so it is
 * refused before anything starts.
 */
import { ClusterDir, type LocalNodeFile } from '../config/cluster-dir.js';
import { openCoordinator } from '../client/index.js';
import { MEMBERS_PREFIX } from '../coordination/index.js';
import { ConfigError } from '../errors/index.js';

/** What to use instead of `scale` on a cluster whose nodes run elsewhere. */
export function remoteScaleAdvice(dir: string, tier: 'storage' | 'compute'): string {
  return (
    `start or stop ${tier} nodes with the platform's own tooling (systemd, Kubernetes${tier === 'storage' ? ', then shardflow rebalance' : ''}), ` +
    `or let the autoscaler do it through its command provisioner: shardflow autoscale --dir ${dir} --hook "CMD {tier} {count} {nodes}" ` +
    `(docs/deploy.md, "Scaling")`
  );
}

/**
 * Throws ConfigError unless every `tier` node registered in membership is a process this directory started (same
 * id, same pid), and the directory has started nodes at all (an attached directory has none).
 * `members`: the registered members (id, role, pid); read from the coordinator when not given.
 */
export async function assertLocalTier(
  dirPath: string,
  tier: 'storage' | 'compute',
  members?: Iterable<{ id: string; role: string; pid?: number }>,
): Promise<void> {
  const dir = new ClusterDir(dirPath);
  const local = await dir.listNodes();
  if (local.length === 0) {
    throw new ConfigError(
      `${dir.root} has started no node processes (a directory made by 'shardflow attach' for a cluster that runs elsewhere?): ` +
        `'scale' only starts and stops this directory's own local processes; ${remoteScaleAdvice(dirPath, tier)}`,
      { details: { dir: dir.root, tier } },
    );
  }
  const registered = members ? [...members] : await readMembers(dirPath);
  // A node of this directory that died is still its own (restarted on its data); a live record under one of its ids
  // with another pid is not.
  const mine = new Map<string, LocalNodeFile>(local.filter((n) => n.role === tier).map((n) => [n.id, n]));
  const foreign = registered
    .filter((m) => m.role === tier)
    .filter((m) => {
      const n = mine.get(m.id);
      return !n || (m.pid !== undefined && n.pid !== m.pid);
    })
    .map((m) => m.id);
  if (foreign.length > 0) {
    throw new ConfigError(
      `${tier} node${foreign.length === 1 ? '' : 's'} ${foreign.join(', ')} of this cluster ${foreign.length === 1 ? 'is' : 'are'} not ` +
        `running processes started from ${dir.root}: 'scale' only starts and stops this directory's own local processes ` +
        `(new local ids would clash with nodes elsewhere); ${remoteScaleAdvice(dirPath, tier)}`,
      { details: { dir: dir.root, tier, nodes: foreign } },
    );
  }
}

async function readMembers(dirPath: string): Promise<{ id: string; role: string; pid?: number }[]> {
  const { coordinator } = await openCoordinator({ dir: dirPath });
  try {
    const out: { id: string; role: string; pid?: number }[] = [];
    for (const entry of await coordinator.list(MEMBERS_PREFIX)) {
      try {
        const m = JSON.parse(entry.value) as { id?: unknown; role?: unknown; pid?: unknown };
        if (typeof m.id === 'string' && typeof m.role === 'string') {
          out.push({ id: m.id, role: m.role, ...(typeof m.pid === 'number' ? { pid: m.pid } : {}) });
        }
      } catch {
        // an unreadable record names no node; membership itself ignores it too
      }
    }
    return out;
  } finally {
    await coordinator.close();
  }
}
