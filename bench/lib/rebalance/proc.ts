/** Small helpers on processes: CPU time from /proc, waiting for a condition. */
import { readFileSync } from 'node:fs';

const USER_HZ = 100;

/** CPU time (user + system, all threads) of a process in µs; 0 if it is gone or /proc is unavailable. */
export function processCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / USER_HZ : 0;
  } catch {
    return 0;
  }
}

/** CPU time of each process, by pid. */
export function cpuOf(pids: readonly number[]): Map<number, number> {
  return new Map(pids.map((pid) => [pid, processCpuUs(pid)]));
}

/** Core-seconds the processes spent between two readings (a process missing from `before` started in between). */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let us = 0;
  for (const [pid, end] of after) us += end - (before.get(pid) ?? 0);
  return us / 1e6;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not yet.
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
