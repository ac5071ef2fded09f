/**
 * Starting shardflow processes on this host: each runs the `shardflow` command in its own process group (so a
 * Ctrl-C in the launcher's terminal reaches only the launcher, which then stops them in order), logs to a file, and
 * reports readiness with one JSON line on stdout: `{"ready":true,...}`. The launcher waits for that line — an event,
 * not a poll — and then lets the process go.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ConfigError, TimeoutError } from '../errors/index.js';

/** The `shardflow` executable of this package. */
export const BIN_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'shardflow.js');

export interface Spawned {
  pid: number;
  /** The JSON the process printed when it became ready. */
  ready: Record<string, unknown>;
  child: ChildProcess;
}

/**
 * Runs `shardflow ARGS...` detached, its output appended to `logFile`, and resolves once it prints its ready line.
 * Rejects (and kills it) if it exits first or takes longer than `timeoutMs`; the error quotes the log's tail.
 */
export function spawnShardflow(args: string[], logFile: string, timeoutMs = 30_000): Promise<Spawned> {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [BIN_PATH, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', log],
    env: { ...process.env },
  });
  closeSync(log);
  return new Promise((resolve, reject) => {
    let settled = false;
    const lines = createInterface({ input: child.stdout! });
    const finish = (err: Error | undefined, ready?: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      lines.close();
      child.stdout?.destroy();
      child.removeAllListeners('exit');
      if (err) {
        child.kill('SIGKILL');
        reject(err);
      } else {
        child.unref();
        resolve({ pid: child.pid!, ready: ready!, child });
      }
    };
    const timer = setTimeout(
      () => finish(new TimeoutError(`shardflow ${args[0]} did not become ready in ${timeoutMs} ms; see ${logFile}${logTail(logFile)}`)),
      timeoutMs,
    );
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.ready === true) finish(undefined, msg);
      } catch {
        // Not the ready line.
      }
    });
    child.once('error', (err) => finish(new ConfigError(`cannot start shardflow ${args[0]}: ${err.message}`, { cause: err })));
    child.once('exit', (code, signal) =>
      finish(new ConfigError(`shardflow ${args.join(' ')} exited (${signal ?? code}) before it was ready; see ${logFile}${logTail(logFile)}`)),
    );
  });
}

/** The last lines of a log (at most 4 KiB), indented, for an error message; empty if it cannot be read. */
function logTail(logFile: string, lines = 12): string {
  try {
    const text = readFileSync(logFile, 'utf8').slice(-4096).trimEnd();
    return text ? `; its last lines:\n  ${text.split('\n').slice(-lines).join('\n  ')}` : '';
  } catch {
    return '';
  }
}

/** Prints the ready line a launcher waits for (called by the process that became ready). */
export function announceReady(info: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ready: true, ...info }) + '\n');
}

/**
 * Whether a process with this pid is alive. A zombie (exited, not yet reaped) counts as gone: nodes outlive the
 * launcher that started them, so they are reaped by init, which in some containers takes seconds.
 */
export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // No /proc (not Linux): trust kill(0).
  }
}

/**
 * Sends `signal` (SIGTERM: a storage node hands its leads off first, a compute node drains; SIGINT: stop at once),
 * waits up to `graceMs` for the process to exit, then SIGKILL. Waiting polls `kill(pid, 0)`: a process we did not
 * start (or no longer hold a handle to) offers no exit event.
 */
export async function terminate(pid: number, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<'stopped' | 'killed' | 'gone'> {
  if (!isAlive(pid)) return 'gone';
  try {
    process.kill(pid, signal);
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'stopped';
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  return 'killed';
}

