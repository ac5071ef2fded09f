/**
 * Crash points for fault tests: kill -9 of a process at exactly one step (a source holding a partition's writes, a
 * target told to finish, a driver just past the owner switch), which no timing from outside can hit reliably — as
 * etcd's gofail or FoundationDB's buggify do. Off unless the process was started with `SHARDFLOW_FAILPOINT_DIR`: then
 * `failpoint(name, who)` looks for a file `name@who` (or `name`) in that directory, and if it finds one, takes it
 * (renames it, so one process fires it once) and kills its own process with SIGKILL.
 *
 * @example
 * ```ts
 * // A test: SHARDFLOW_FAILPOINT_DIR=/tmp/fp in the cluster's environment, then arm one step of one node:
 * writeFileSync('/tmp/fp/mig.export.fence@s2', '');
 * // In the node: failpoint('mig.export.fence', 's2') -> s2 dies there, the next time it gets that far.
 * ```
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';

const DIR = process.env.SHARDFLOW_FAILPOINT_DIR || undefined;

/** Kills this process (SIGKILL) if the crash point `name` is armed for it (see the module comment). */
export function failpoint(name: string, who?: string): void {
  if (DIR === undefined) return;
  for (const file of who === undefined ? [name] : [`${name}@${who}`, name]) {
    const path = join(DIR, file);
    if (!existsSync(path)) continue;
    try {
      renameSync(path, `${path}.fired`);
    } catch {
      continue; // another process took it
    }
    process.kill(process.pid, 'SIGKILL');
  }
}
