/**
 * CPU time spent by this process (the client) and by the server processes, to report CPU per operation: on a small
 * machine where client and servers share the cores, that is what throughput comes down to.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every common Linux). */
const USER_HZ = 100;

export interface CpuSnapshot {
  /** CPU time of this process, all threads, µs. */
  clientUs: number;
  /** CPU time of the server processes, all threads, µs; undefined where /proc is not available. */
  serversUs: number | undefined;
  /** Busy CPU time of the whole host (every process, all cores), µs; undefined without /proc/stat. */
  hostUs: number | undefined;
}

function hostBusyUs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = user! + nice! + system! + irq! + softirq! + steal!;
    return Number.isFinite(ticks) ? (ticks * 1e6) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

function processCpuUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces, so split after its closing parenthesis):
    // state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

export function cpuSnapshot(serverPids: readonly number[]): CpuSnapshot {
  const usage = process.cpuUsage();
  let serversUs: number | undefined = 0;
  for (const pid of serverPids) {
    const us = processCpuUs(pid);
    if (us === undefined) {
      serversUs = undefined;
      break;
    }
    serversUs! += us;
  }
  return { clientUs: usage.user + usage.system, serversUs, hostUs: hostBusyUs() };
}
