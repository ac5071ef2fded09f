/**
 * Teardown that happens whatever way the benchmark ends: normal return, a thrown error, Ctrl-C / SIGTERM, or
 * `process.exit`. Each resource registers an async cleanup (run in reverse order, once) plus the processes and
 * directories it owns, so that a second Ctrl-C — or an exit before the async cleanup finished — can still SIGKILL
 * those processes and remove those directories synchronously.
 */
import { rmSync } from 'node:fs';

type Action = { name: string; run: () => Promise<void> };

const actions: Action[] = [];
const pids = new Set<number>();
const dirs = new Set<string>();
let running: Promise<void> | undefined;
let finished = false;

/** Registers an async cleanup step; returns a function that drops it (after the resource was released normally). */
export function onCleanup(name: string, run: () => Promise<void>): () => void {
  const action = { name, run };
  actions.push(action);
  return () => {
    const i = actions.indexOf(action);
    if (i >= 0) actions.splice(i, 1);
  };
}

/** A process to SIGKILL if the orderly cleanup cannot run or does not finish. */
export function trackPid(pid: number | undefined): void {
  if (pid) pids.add(pid);
}
export function untrackPid(pid: number | undefined): void {
  if (pid) pids.delete(pid);
}

/** A directory to remove if the orderly cleanup cannot run or does not finish. */
export function trackDir(dir: string): void {
  dirs.add(dir);
}
export function untrackDir(dir: string): void {
  dirs.delete(dir);
}

/** Runs every registered step, newest first, each bounded in time; later calls return the same promise. */
export function cleanup(): Promise<void> {
  running ??= (async () => {
    while (actions.length > 0) {
      const action = actions.pop()!;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          action.run(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('timed out after 20 s')), 20_000);
          }),
        ]);
      } catch (err) {
        process.stderr.write(`cleanup: ${action.name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
    emergencyCleanup();
    finished = true;
  })();
  return running;
}

/** Synchronous last resort: SIGKILL every tracked process, remove every tracked directory. */
export function emergencyCleanup(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  pids.clear();
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Nothing more to do.
    }
  }
  dirs.clear();
}

/** Ctrl-C / SIGTERM / SIGHUP: orderly cleanup, then exit; a second signal kills everything at once. */
export function installSignalHandlers(): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`\n${signal} again: killing everything now\n`);
      emergencyCleanup();
      process.exit(130);
    }
    signalled = true;
    process.stderr.write(`\n${signal}: stopping the clusters and removing temporary files (again to force)...\n`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', () => {
    if (!finished) emergencyCleanup();
  });
}

/**
 * Starts a resource whose `stop` must run whatever way the benchmark ends: `stop` is registered for the cleanup
 * while the resource lives, and run (the error rethrown) if `start` fails. `start` gets `release`, the stop to hand
 * out: it drops the registration, then stops.
 */
export async function owned<T>(name: string, stop: () => Promise<void>, start: (release: () => Promise<void>) => Promise<T>): Promise<T> {
  const drop = onCleanup(name, stop);
  const release = async () => {
    drop();
    await stop();
  };
  try {
    return await start(release);
  } catch (err) {
    await release();
    throw err;
  }
}
