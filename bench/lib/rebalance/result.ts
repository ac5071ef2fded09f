/** What one run of one system measured: a 3 → 4 node scale-out of the loaded data under the foreground load. */
import type { PhaseStats } from './workload.js';
import type { SystemName } from './options.js';
import type { TimelineSummary } from './timeline.js';

export interface RunResult {
  system: SystemName;
  repeat: number;
  keys: number;
  valueBytes: number;
  /** Seconds the initial load took (not part of any measurement). */
  loadSeconds: number;
  /** From starting the 4th node's process to the end of the rebalance. */
  scaleSeconds: number;
  /** Of which: the 4th node starting and joining (shardflow: ready in membership; Redis: add-node and agreement). */
  joinSeconds: number;
  /** Of which: moving data (shardflow: planRebalance + runMoves; Redis: `redis-cli --cluster rebalance`). */
  moveSeconds: number;
  /** Partitions (shardflow: hash slots of 4096; Redis: hash slots of 16384) whose owner changed. */
  movedPartitions: number;
  partitions: number;
  /** Keys in the partitions that changed owner (counted at the end; the foreground load only overwrites keys). */
  movedKeys: number;
  /** Keys on each node at the end, in node order (the new node last). */
  keysPerNode: number[];
  baseline: PhaseStats;
  during: PhaseStats;
  /** Keys holding an older value than their last acknowledged write (or none) after the scale-out. */
  lostWrites: number;
  /** Keys that could not be read back at all. */
  unreadable: number;
  /** Acknowledged foreground writes over the whole run. */
  ackedWrites: number;
  /** CPU time (user + system) of the server processes while data moved, in core-seconds. */
  serverCpuSeconds: number | undefined;
  /**
   * Cores busy with everything else on the host during the scale-out: host busy time minus this process (client and,
   * for shardflow, the rebalance driver) minus the servers. For Redis it includes redis-cli, the rebalance driver.
   */
  otherCores: number | undefined;
  /** This process's CPU (foreground client; for shardflow also the rebalance driver) during the scale-out, core-seconds. */
  benchCpuSeconds: number;
  /** System-specific remarks for the log (e.g. how long requests were held per partition). */
  notes: string[];
  /** shardflow: requests held per moved partition, ms (median, max). */
  fenceMs?: { p50: number; max: number };
  /** Set when the scale-out failed (the error); the data was still checked afterwards. */
  failure?: string;
  /** shardflow: where the moves spent their time, seen through the coordinator. */
  timeline?: TimelineSummary;
  /** The move window on the monotonic clock (µs), for CPU profile windows. */
  moveWindowUs: { startUs: number; endUs: number };
}

/** The monotonic clock in µs (the clock V8's .cpuprofile timestamps use). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
