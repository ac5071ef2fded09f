/**
 * Replication benchmark: what 3 copies per partition cost and how fast a 3-copy namespace fails over.
 * `npm run bench:replication -- --help` lists the options.
 *
 * One local cluster of 3 storage node processes (embedded coordinator), two hash namespaces: `rep1` (1 copy) and
 * `rep3` (3 copies). In the same run:
 *
 * 1. Throughput: the same closed-loop put load (N loops, 1 KB values, fixed duration) against each namespace,
 *    alternating, repeated; medians of ops/s, p50 and p99.
 * 2. Failover: an open-loop writer (a fixed rate of puts, whatever the answers) writes continuously to one key in
 *    every partition of `rep3` (hash tags pick the slots); a storage node that leads partitions is killed with SIGKILL. Failover time is from the kill to the first
 *    acknowledged write, issued after the kill, to a partition the killed node led. The node is then restarted on its
 *    data and the benchmark waits until every partition has its 3 in-sync copies again (re-replication) before the
 *    next kill. Victims rotate over s1..s3. At the end every key is read back and checked against the last
 *    acknowledged write.
 *
 * Writes a section of docs/benchmarks.md. Everything it starts is stopped and every temporary directory removed,
 * also on failure and on Ctrl-C.
 */
import hdr from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir, availableParallelism } from 'node:os';
import { connect, openCoordinator, type ShardflowClient } from '../src/client/index.js';
import { ClusterDir } from '../src/config/cluster-dir.js';
import { restartLocalNode } from '../src/cluster/local-cluster.js';
import { isAlive } from '../src/cluster/spawn.js';
import { leader } from '../src/coordination/index.js';
import { REPLICA_ELECTION } from '../src/migration/index.js';
import type { RoutingTable } from '../src/keyspace/index.js';
import { COMMON_ARGS, docsPath, positive } from './lib/options.js';
import { onCleanup, trackPid, untrackPid } from './lib/cleanup.js';
import { median, runLoad, type Sample } from './lib/load.js';
import { startShardflowCluster } from './lib/shardflow-cluster.js';
import type { KvTarget } from './lib/targets.js';
import { formatLatency, machineInfo, type Machine } from './lib/report.js';
import { writeDocsSection } from './lib/docs.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';
import { cpuSnapshot } from './lib/cpu.js';
import { cpuOf } from './lib/rebalance/proc.js';

const log = benchLog('replication');

const START_MARKER = '<!-- bench:replication start -->';
const END_MARKER = '<!-- bench:replication end -->';
/** The issue's targets. */
const THROUGHPUT_TARGET = 0.6;
const FAILOVER_TARGET_MS = 2000;
const STORAGE_NODES = 3;
const NODE_IDS = ['s1', 's2', 's3'];
const NS = { 1: 'rep1', 3: 'rep3' } as const;

// ---------------------------------------------------------------------------------------------------------------
// Options

interface ReplicationOptions {
  repeats: number;
  seconds: number;
  warmup: number;
  concurrency: number[];
  keyspace: number;
  valueBytes: number;
  kills: number;
  /** Writes per second of the failover writer. */
  rate: number;
  /** Seconds to wait for writes to a killed node's partitions before counting the failover as failed. */
  failoverTimeout: number;
  /** Seconds to wait for every partition to have its copies again before giving up. */
  healTimeout: number;
  slots: number;
  quick: boolean;
  docs: string | undefined;
  tmp: string;
  /** Where to copy the coordinator's and nodes' logs before the cluster is removed. */
  keepLogs: string | undefined;
}

const USAGE = `usage: npm run bench:replication -- [options]

On a local cluster of 3 storage node processes: put throughput and latency of a 1-copy namespace against a 3-copy
one (same load), then failover and re-replication times of the 3-copy namespace over repeated kill -9 of a storage
node that leads partitions, while a writer writes continuously to every partition.

  --quick                a short smoke run: --seconds 2 --warmup 0.5 --repeats 1 --kills 3 --keyspace 2000, and no
                         docs unless --docs names a file (options given explicitly still apply)
  --repeats N            throughput runs per namespace; medians are quoted (default 3)
  --seconds S            measured seconds per throughput run (default 5)
  --warmup S             unmeasured seconds before each throughput run (default 1)
  --concurrency LIST     puts in flight, comma-separated (default 64)
  --keyspace N           keys key:0 .. key:N-1 of the throughput runs, written once before (default 10000)
  --value-bytes N        bytes per value (default 1024)
  --kills N              kill -9 / restart cycles (default 20)
  --rate N               writes per second of the writer during the kills (default 2000)
  --failover-timeout S   a failover not done within S seconds counts as failed (default 30)
  --heal-timeout S       give up if the copies are not back within S seconds of a restart (default 180)
  --slots N              slots of both namespaces (default 4096, the default of a hash namespace)
  --docs FILE            markdown file whose bench:replication section is replaced (default docs/benchmarks.md)
  --no-docs              print only
  --tmp DIR              where the temporary cluster directory goes (default the OS temp dir)
  --keep-logs DIR        copy the coordinator's and nodes' logs into DIR before the cluster is removed
  --help`;

function parseOptions(argv: string[]): ReplicationOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_ARGS,
      tmp: { type: 'string' },
      'keep-logs': { type: 'string' },
      quick: { type: 'boolean' },
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      keyspace: { type: 'string' },
      'value-bytes': { type: 'string' },
      kills: { type: 'string' },
      rate: { type: 'string' },
      'failover-timeout': { type: 'string' },
      'heal-timeout': { type: 'string' },
      slots: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const valueBytes = positive('value-bytes', values['value-bytes'], 1024);
  if (valueBytes < 32) throw new Error('--value-bytes must be at least 32');
  const slots = positive('slots', values.slots, 4096);
  if (slots > 65536) throw new Error('--slots must be at most 65536');
  return {
    repeats: positive('repeats', values.repeats, quick ? 1 : 3),
    seconds: positive('seconds', values.seconds, quick ? 2 : 5, false),
    warmup: values.warmup === '0' ? 0 : positive('warmup', values.warmup, quick ? 0.5 : 1, false),
    concurrency: (values.concurrency ?? '64').split(',').map((s) => positive('concurrency', s.trim(), 0)),
    keyspace: positive('keyspace', values.keyspace, quick ? 2000 : 10_000),
    valueBytes,
    kills: positive('kills', values.kills, quick ? 3 : 20),
    rate: positive('rate', values.rate, 2000),
    failoverTimeout: positive('failover-timeout', values['failover-timeout'], 30, false),
    healTimeout: positive('heal-timeout', values['heal-timeout'], 180, false),
    slots,
    quick,
    // A quick run writes no docs unless a file is named.
    docs: quick && values.docs === undefined ? undefined : docsPath(values),
    tmp: values.tmp ?? tmpdir(),
    keepLogs: values['keep-logs'],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A string of exactly `bytes` ASCII bytes that starts with `prefix|`. */
function padded(prefix: string, bytes: number): string {
  const head = `${prefix}|`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

/** A percentile of a few values through an HDR histogram (µs resolution, as the latency histograms). */
function percentileMs(valuesMs: number[], percentile: number): number {
  if (valuesMs.length === 0) return Number.NaN;
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
  for (const v of valuesMs) h.recordValue(Math.max(1, Math.round(v * 1000)));
  // getValueAtPercentile answers the top of the value's bucket, which can lie above the largest value recorded.
  const us = percentile >= 100 ? h.maxValue : Math.min(h.maxValue, h.getValueAtPercentile(percentile));
  h.destroy();
  return us / 1000;
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 10_000) return `${Math.round(ms).toLocaleString('en-US')} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatRate(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

const fullyReplicated = (copies: number) => (t: RoutingTable) =>
  t.partitions().every((p) => {
    const followers = t.followersOf(p);
    return followers.length === copies - 1 && !followers.includes(t.ownerOf(p)!) && !t.migrationOf(p);
  });

/** Resolves with the table of `ns` once `ok` holds for it (checked on every change the client's catalog sees). */
function tableWhen(client: ShardflowClient, ns: string, ok: (t: RoutingTable) => boolean, timeoutMs: number, what: string): Promise<RoutingTable> {
  return new Promise((resolve, reject) => {
    let done = false;
    const check = (t: RoutingTable | undefined): void => {
      if (done || !t || !ok(t)) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      off();
      resolve(t);
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      clearInterval(poll);
      off();
      const t = client.catalog.find(ns);
      const short = t ? t.partitions().filter((p) => t.followersOf(p).length + 1 < t.copies).length : '?';
      reject(new Error(`${what}: not within ${timeoutMs} ms (epoch ${t?.epoch ?? '?'}, ${short} partitions short of copies)`));
    }, timeoutMs);
    const off = client.catalog.onChange((t, name) => {
      if (name === ns) check(t);
    });
    // A watch event could be missed while the coordinator is busy: also look again now and then.
    const poll = setInterval(() => void client.catalog.refresh(ns).then(check, () => undefined), 1000);
    check(client.catalog.find(ns));
    void client.catalog.refresh(ns).then(check, () => undefined);
  });
}

/** For every partition of the table, a key in it: `{f<i>}:w` (the hash tag `f<i>` picks the slot). */
function keyPerPartition(table: RoutingTable): string[] {
  const keys: (string | undefined)[] = new Array(table.partitions().length);
  let missing = keys.length;
  for (let i = 0; missing > 0; i++) {
    if (i > 10_000_000) throw new Error('could not find a key for every partition');
    const key = `{f${i}}:w`;
    const p = table.place(key).partition;
    if (keys[p] === undefined) {
      keys[p] = key;
      missing--;
    }
  }
  return keys as string[];
}

// ---------------------------------------------------------------------------------------------------------------
// The failover writer

/** What one kill watches: writes issued from the kill until the window closes. */
interface Probe {
  killAt: number;
  /** Writes issued after this are not watched. */
  endAt: number;
  led: ReadonlySet<number>;
  followed: ReadonlySet<number>;
  /** Acknowledgement times of the first write to each kind of partition. */
  firstLedAck?: number;
  firstFollowedAck?: number;
  ledMaxMs: number;
  followedMaxMs: number;
  followedWrites: number;
  /** Writes to followed partitions that took 100 ms or more. */
  followedSlow: number;
  failed: number;
  /** Watched writes still in flight. */
  pending: number;
  wake?: () => void;
}

/**
 * Writes `rate` times a second, whatever the answers (open loop, like many independent clients), to one key in each
 * partition, the partitions in a shuffled cycle. A key with a write in flight is skipped until that write has its
 * answer, so each key has one write in flight at most and its values grow with its acknowledgements.
 */
class FailoverWriter {
  /** Last acknowledged counter per partition (0: none yet). */
  private readonly acked: number[];
  private readonly inFlight: boolean[];
  /** Counters written since the partition's last acknowledgement whose outcome is unknown (the write failed). */
  private readonly unknown = new Map<number, Set<number>>();
  private readonly order: number[];
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private issued = 0;
  private counter = 0;
  private readonly pending = new Set<Promise<void>>();
  writes = 0;
  failedWrites = 0;
  /** Writes not issued because every key had a write in flight. */
  skipped = 0;
  firstError: unknown;
  probe: Probe | undefined;

  constructor(
    private readonly client: ShardflowClient,
    private readonly ns: string,
    private readonly keys: string[],
    private readonly options: { rate: number; valueBytes: number },
  ) {
    this.acked = new Array<number>(keys.length).fill(0);
    this.inFlight = new Array<boolean>(keys.length).fill(false);
    this.order = keys.map((_, p) => p);
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
    }
  }

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), 2);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Resolves once `n` more writes were acknowledged. */
  async progress(n: number, timeoutMs = 30_000): Promise<void> {
    const target = this.writes + n;
    const deadline = Date.now() + timeoutMs;
    while (this.writes < target) {
      if (Date.now() > deadline) throw new Error(`the writer made no progress: ${this.writes}/${target} (first error: ${String(this.firstError)})`);
      await sleep(10);
    }
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startedAt) * this.options.rate) / 1000) - this.issued;
    for (let i = 0; i < due; i++) {
      this.issued++;
      let p: number | undefined;
      for (let tries = 0; tries < this.order.length; tries++) {
        const q = this.order[this.cursor]!;
        this.cursor = (this.cursor + 1) % this.order.length;
        if (!this.inFlight[q]) {
          p = q;
          break;
        }
      }
      if (p === undefined) {
        this.skipped++;
        continue;
      }
      const write = this.write(p);
      this.pending.add(write);
      void write.finally(() => this.pending.delete(write));
    }
  }

  private async write(p: number): Promise<void> {
    this.inFlight[p] = true;
    const n = ++this.counter;
    const t0 = performance.now();
    const probe = this.probe && t0 >= this.probe.killAt && t0 < this.probe.endAt ? this.probe : undefined;
    if (probe) probe.pending++;
    try {
      await this.client.put(this.ns, this.keys[p]!, padded(String(n), this.options.valueBytes));
      const t1 = performance.now();
      this.acked[p] = n;
      this.unknown.delete(p);
      this.writes++;
      if (probe) {
        const ms = t1 - t0;
        if (probe.led.has(p)) {
          probe.ledMaxMs = Math.max(probe.ledMaxMs, ms);
          probe.firstLedAck ??= t1;
        } else if (probe.followed.has(p)) {
          probe.followedMaxMs = Math.max(probe.followedMaxMs, ms);
          probe.followedWrites++;
          if (ms >= 100) probe.followedSlow++;
          probe.firstFollowedAck ??= t1;
        }
        if (probe.firstLedAck !== undefined) probe.wake?.();
      }
    } catch (err) {
      this.failedWrites++;
      this.firstError ??= err;
      let s = this.unknown.get(p);
      if (!s) this.unknown.set(p, (s = new Set()));
      s.add(n);
      if (probe) probe.failed++;
    } finally {
      this.inFlight[p] = false;
      if (probe) probe.pending--;
    }
  }

  /** Reads every key back; returns the partitions whose value is older than the last acknowledged write. */
  async verify(): Promise<{ checked: number; wrong: string[] }> {
    const wrong: string[] = [];
    let checked = 0;
    for (let p = 0; p < this.keys.length; p++) {
      const want = this.acked[p]!;
      if (want === 0) continue;
      checked++;
      const v = await this.client.get<string>(this.ns, this.keys[p]!);
      const got = typeof v === 'string' ? Number(v.slice(0, v.indexOf('|'))) : undefined;
      if (got === want) continue;
      if (got !== undefined && got > want && this.unknown.get(p)?.has(got)) continue;
      wrong.push(`${this.keys[p]} (partition ${p}): read ${String(got)}, acknowledged ${want}`);
    }
    return { checked, wrong };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Results

interface ThroughputCell {
  copies: 1 | 3;
  concurrency: number;
  runs: Sample[];
}

interface KillResult {
  n: number;
  victim: string;
  led: number;
  followed: number;
  /** The node whose replica controller led when the kill happened. */
  controller: string | undefined;
  /** ms from the kill: the client's membership view lost the node, its table showed new leaders, writes resumed. */
  deathSeenMs: number | undefined;
  tableMs: number | undefined;
  failoverMs: number | undefined;
  followedMs: number | undefined;
  /** The slowest write issued in the watched window, to a partition the node led, and to one it followed. */
  ledMaxMs: number;
  followedMaxMs: number;
  /** Writes to partitions it followed issued in the window, and how many of them took 100 ms or more. */
  followedWrites: number;
  followedSlow: number;
  failedWrites: number;
  /** ms to restart the node (spawn until ready), then from ready until every partition has its copies again. */
  restartMs: number;
  healMs: number;
  /**
   * Partitions the client's routing table showed being copied to the killed node (a migration entry towards it) in
   * the watched window, most at once, and when the first showed (ms from the kill).
   */
  copyingToDead: number;
  copyingToDeadMs: number | undefined;
}

function summarizeCell(cell: ThroughputCell) {
  return {
    opsPerSec: median(cell.runs.map((r) => r.opsPerSec)),
    p50Us: median(cell.runs.map((r) => r.p50Us)),
    p99Us: median(cell.runs.map((r) => r.p99Us)),
    client: median(cell.runs.map((r) => r.clientCpuUsPerOp)),
    servers: cell.runs.every((r) => r.serverCpuUsPerOp !== undefined) ? median(cell.runs.map((r) => r.serverCpuUsPerOp!)) : undefined,
    errors: cell.runs.reduce((a, r) => a + r.errors, 0),
  };
}

function throughputTable(cells: ThroughputCell[]): string {
  const rows = [
    '| copies | puts in flight | ops/s (median) | ops/s per run | p50 | p99 | CPU µs/op: client + servers | vs 1 copy (ops/s) |',
    '|--:|--:|--:|---|--:|--:|--:|--:|',
  ];
  for (const c of cells) {
    const s = summarizeCell(c);
    const base = cells.find((x) => x.copies === 1 && x.concurrency === c.concurrency);
    const ratio = c.copies === 3 && base ? s.opsPerSec / summarizeCell(base).opsPerSec : undefined;
    rows.push(
      `| ${c.copies} | ${c.concurrency} | ${formatRate(s.opsPerSec)}${s.errors ? ` (${s.errors} errors)` : ''} | ` +
        `${c.runs.map((r) => formatRate(r.opsPerSec)).join(' / ')} | ${formatLatency(s.p50Us)} | ${formatLatency(s.p99Us)} | ` +
        `${Math.round(s.client)} + ${s.servers === undefined ? '?' : Math.round(s.servers)} | ` +
        `${ratio === undefined ? '' : `**${(ratio * 100).toFixed(0)}%**`} |`,
    );
  }
  return rows.join('\n');
}

interface FailoverSummary {
  kills: number;
  failed: number;
  failover: { p50: number; p99: number; max: number };
  followed: { p50: number; p99: number; max: number };
  death: { p50: number; max: number };
  table: { p50: number; max: number };
  heal: { p50: number; max: number };
  restart: { p50: number };
  followedMax: { p50: number; p99: number; max: number };
  failedWrites: number;
}

function summarizeKills(kills: KillResult[]): FailoverSummary {
  const defined = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined);
  const failover = defined(kills.map((k) => k.failoverMs));
  const followed = defined(kills.map((k) => k.followedMs));
  const death = defined(kills.map((k) => k.deathSeenMs));
  const table = defined(kills.map((k) => k.tableMs));
  const withFollowed = kills.filter((k) => k.followedWrites > 0);
  return {
    kills: kills.length,
    failed: kills.length - failover.length,
    failover: { p50: percentileMs(failover, 50), p99: percentileMs(failover, 99), max: percentileMs(failover, 100) },
    followed: { p50: percentileMs(followed, 50), p99: percentileMs(followed, 99), max: percentileMs(followed, 100) },
    death: { p50: percentileMs(death, 50), max: percentileMs(death, 100) },
    table: { p50: percentileMs(table, 50), max: percentileMs(table, 100) },
    heal: { p50: percentileMs(kills.map((k) => k.healMs), 50), max: percentileMs(kills.map((k) => k.healMs), 100) },
    restart: { p50: percentileMs(kills.map((k) => k.restartMs), 50) },
    followedMax: {
      p50: percentileMs(withFollowed.map((k) => k.followedMaxMs), 50),
      p99: percentileMs(withFollowed.map((k) => k.followedMaxMs), 99),
      max: percentileMs(withFollowed.map((k) => k.followedMaxMs), 100),
    },
    failedWrites: kills.reduce((a, k) => a + k.failedWrites, 0),
  };
}

function failoverTable(s: FailoverSummary): string {
  return [
    `| measured over ${s.kills} kills | median | p99 | max |`,
    '|---|--:|--:|--:|',
    `| **failover**: kill → first acknowledged write to a partition the killed node led | **${formatMs(s.failover.p50)}** | ${formatMs(s.failover.p99)} | ${formatMs(s.failover.max)} |`,
    `| kill → first acknowledged write to a partition it followed (leader alive) | ${formatMs(s.followed.p50)} | ${formatMs(s.followed.p99)} | ${formatMs(s.followed.max)} |`,
    `| slowest write to a partition it followed, issued in the watched window (kills where it followed any) | ${formatMs(s.followedMax.p50)} | ${formatMs(s.followedMax.p99)} | ${formatMs(s.followedMax.max)} |`,
    `| kill → the client's membership view drops the node (lease expiry) | ${formatMs(s.death.p50)} |  | ${formatMs(s.death.max)} |`,
    `| kill → the client's routing table shows new leaders for all its partitions | ${formatMs(s.table.p50)} |  | ${formatMs(s.table.max)} |`,
    `| restart: spawn → node ready | ${formatMs(s.restart.p50)} |  |  |`,
    `| **re-replication**: node ready → every partition has 3 in-sync copies | **${formatMs(s.heal.p50)}** |  | ${formatMs(s.heal.max)} |`,
  ].join('\n');
}

function killsTable(kills: KillResult[]): string {
  const rows = [
    '| kill | victim | partitions led / followed | controller on | membership drop | new leaders in table | **failover** | slowest write, led partitions | followed partitions: first ack | slowest write | writes ≥ 100 ms | copying to the dead node | failed writes | restart | re-replication |',
    '|--:|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const k of kills) {
    rows.push(
      `| ${k.n} | ${k.victim} | ${k.led} / ${k.followed} | ${k.controller ?? '?'}${k.controller === k.victim ? ' (killed)' : ''} | ` +
        `${formatMs(k.deathSeenMs)} | ${formatMs(k.tableMs)} | **${k.failoverMs === undefined ? 'none' : formatMs(k.failoverMs)}** | ` +
        `${formatMs(k.ledMaxMs)} | ${formatMs(k.followedMs)} | ${k.followedWrites ? formatMs(k.followedMaxMs) : '—'} | ` +
        `${k.followedWrites ? `${k.followedSlow} of ${k.followedWrites}` : '—'} | ` +
        `${k.copyingToDead ? `${k.copyingToDead} partitions from ${formatMs(k.copyingToDeadMs)}` : '—'} | ` +
        `${k.failedWrites} | ${formatMs(k.restartMs)} | ${formatMs(k.healMs)} |`,
    );
  }
  return rows.join('\n');
}

function verdicts(cells: ThroughputCell[], s: FailoverSummary): string[] {
  const lines: string[] = [];
  const top = Math.max(...cells.map((c) => c.concurrency));
  const one = cells.find((c) => c.copies === 1 && c.concurrency === top);
  const three = cells.find((c) => c.copies === 3 && c.concurrency === top);
  if (one && three && one.runs.length > 0 && three.runs.length > 0) {
    const a = summarizeCell(one);
    const b = summarizeCell(three);
    const r = b.opsPerSec / a.opsPerSec;
    lines.push(
      `Put throughput at ${top} in flight: 3 copies keep ${(r * 100).toFixed(0)}% of 1 copy's ops/s ` +
        `(${formatRate(b.opsPerSec)} vs ${formatRate(a.opsPerSec)}; p99 ${formatLatency(b.p99Us)} vs ${formatLatency(a.p99Us)}) ` +
        `(target ≥ ${THROUGHPUT_TARGET * 100}%): ${r >= THROUGHPUT_TARGET ? 'met' : '**NOT met**'}`,
    );
  }
  const met = s.failed === 0 && s.failover.p50 < FAILOVER_TARGET_MS;
  lines.push(
    `Failover: median ${formatMs(s.failover.p50)}, p99 ${formatMs(s.failover.p99)}, max ${formatMs(s.failover.max)} over ` +
      `${s.kills} kills${s.failed ? ` (${s.failed} without any failover within the timeout)` : ''} ` +
      `(target median < ${FAILOVER_TARGET_MS / 1000} s): ${met ? 'met' : '**NOT met**'}`,
  );
  lines.push(`Re-replication after the restart: median ${formatMs(s.heal.p50)}, max ${formatMs(s.heal.max)} (no target)`);
  return lines;
}

/** What the numbers say about the replication's behaviour, in sentences for the docs (only what this run showed). */
function observations(r: Report): string[] {
  const { kills, options: o } = r;
  const out: string[] = [];
  const all = kills.filter((k) => k.led === o.slots);
  if (all.length > 0) {
    out.push(
      `**Leadership piles up on one node.** In ${all.length} of ${kills.length} kills the victim led all ${o.slots} ` +
        `partitions (the first such kill was #${all[0]!.n}). Failover gives a partition to the first in-sync follower ` +
        'in its list, a node that is copied to again joins the lists at the end, and nothing hands leadership back ' +
        'afterwards: once two nodes have failed in turn, the third leads everything, does all the leader work, and ' +
        'the next kill of it stops every write of the namespace until the failover (instead of a third of them).',
    );
  }
  const done = kills.filter((k) => k.failoverMs !== undefined);
  const ctlKilled = done.filter((k) => k.controller === k.victim);
  const ctlAlive = done.filter((k) => k.controller !== undefined && k.controller !== k.victim);
  if (ctlKilled.length > 0 && ctlAlive.length > 0) {
    out.push(
      `Failover when the killed node also ran the leading replica controller: median ` +
        `${formatMs(median(ctlKilled.map((k) => k.failoverMs!)))} (${plural(ctlKilled.length, 'kill')}); when the ` +
        `controller ran elsewhere: median ${formatMs(median(ctlAlive.map((k) => k.failoverMs!)))} (${plural(ctlAlive.length, 'kill')}).`,
    );
  }
  const withFollowed = kills.filter((k) => k.followedWrites > 0);
  const slow = withFollowed.filter((k) => k.followedSlow > 0);
  if (slow.length > 0) {
    out.push(
      `Writes to partitions the killed node only followed (their leader alive) took 100 ms or more in ${slow.length} of ` +
        `${withFollowed.length} kills where there were such partitions, the slowest ` +
        `${formatMs(Math.max(...slow.map((k) => k.followedMaxMs)))}: ${slow.length === 1 ? 'kill' : 'kills'} ` +
        `${slow.map((k) => `#${k.n}`).join(', ')}.`,
    );
  } else if (withFollowed.length > 0) {
    out.push(
      `Writes to partitions the killed node only followed went on within ${formatMs(Math.max(...withFollowed.map((k) => k.followedMs ?? 0)))} ` +
        `of the kill (none of them took 100 ms or more), in the ${withFollowed.length} kills where there were such partitions.`,
    );
  }
  const toDead = kills.filter((k) => k.copyingToDead > 0);
  if (toDead.length > 0) {
    const slowToo = toDead.filter((k) => k.followedSlow > 0).length;
    const rest = kills.filter((k) => k.copyingToDead === 0 && k.followedWrites > 0);
    const slowRest = rest.filter((k) => k.followedSlow > 0).length;
    out.push(
      `In ${toDead.length} of ${plural(kills.length, 'kill')} (${toDead.map((k) => `#${k.n}`).join(', ')}) the replica ` +
        `controller began copying partitions to the node just killed (up to ` +
        `${Math.max(...toDead.map((k) => k.copyingToDead))} at once in the routing table, until the failover removed ` +
        'them): the surviving leaders take the dead copy out of their in-sync followers at once, and the controller ' +
        're-copies the now short partitions onto the ready storage nodes, which include the dead one until its ' +
        'membership lease runs out. Writes of 100 ms or more to followed partitions came in ' +
        `${slowToo} of ${plural(toDead.length, 'such kill')}` +
        (rest.length > 0 ? `, and in ${slowRest} of the ${plural(rest.length, 'other kill')} with followed partitions.` : '.'),
    );
  }
  const mb = (r.dataBytes / 2 ** 20);
  out.push(
    `A restarted node comes back with none of its copies: failover takes it out of every follower list, so on start ` +
      `it drops its data of the namespace and the controller copies all ${o.slots} partitions to it again (about ` +
      `${mb.toFixed(1)} MB of values here), however briefly it was down. Re-replication took a median ` +
      `${formatMs(r.summary.heal.p50)}, about ${(mb / (r.summary.heal.p50 / 1000)).toFixed(1)} MB/s.`,
  );
  const one = r.cells.find((c) => c.copies === 1);
  const three = r.cells.find((c) => c.copies === 3 && c.concurrency === one?.concurrency);
  if (one && three && one.runs.length > 0 && three.runs.length > 0) {
    const a = summarizeCell(one);
    const b = summarizeCell(three);
    if (b.servers !== undefined && a.servers !== undefined) {
      out.push(
        `Throughput here is bounded by CPU (${r.machine.cores} cores for the client and every server process): the ` +
          `servers spent ${Math.round(b.servers)} µs of CPU per put with 3 copies against ${Math.round(a.servers)} µs ` +
          `with 1 (${(b.servers / a.servers).toFixed(1)}×), the client ${Math.round(b.client)} against ` +
          `${Math.round(a.client)} µs, and ops/s fell about in proportion. Each follower's share ` +
          `(${Math.round((b.servers - a.servers) / 2)} µs per put, if the leader's work is unchanged) is more than a ` +
          'whole put costs a node without replication.',
      );
    }
  }
  return out;
}

interface Report {
  options: ReplicationOptions;
  machine: Machine;
  date: string;
  command: string;
  elapsedSeconds: number;
  cells: ThroughputCell[];
  kills: KillResult[];
  summary: FailoverSummary;
  verify: { checked: number; wrong: string[] };
  writes: number;
  otherCores: number[];
  /** Cores busy with other processes during the kills, one sample a second. */
  otherFailover: number[];
  data: string;
  dataBytes: number;
}

function docsSection(r: Report): string {
  const { options: o, machine: m, summary: s } = r;
  const busy = (xs: number[]) =>
    xs.length ? `median ${median(xs).toFixed(2)} cores, max ${Math.max(...xs).toFixed(2)} (of ${availableParallelism()})` : 'unknown';
  const other = `${busy(r.otherCores)}; during the kills (per second) ${busy(r.otherFailover)}`;
  return [
    START_MARKER,
    '',
    '## Replication (bench:replication)',
    '',
    `Run on ${r.date} with \`${r.command}\` (${Math.round(r.elapsedSeconds)} s in all), on ${m.cpu}, ${m.cores} cores, ` +
      `${m.memoryGiB} GiB RAM, Node ${m.node}, Linux ${m.kernel}. One local cluster of ${STORAGE_NODES} storage node ` +
      'processes and the embedded coordinator (`startLocalCluster`); the benchmark process is the client.',
    '',
    ...verdicts(r.cells, s).map((v) => `- ${v}`),
    `- Acknowledged writes lost over the ${s.kills} kills: ${r.verify.wrong.length} of the last acknowledged values of ` +
      `${r.verify.checked} keys (${formatRate(r.writes)} writes acknowledged in all; ${s.failedWrites} writes failed, ` +
      'i.e. ran out of the client\'s 10 s deadline).',
    '',
    '### Put throughput: 1 copy vs 3 copies',
    '',
    throughputTable(r.cells),
    '',
    `Each row is the median of ${o.repeats} run${o.repeats === 1 ? '' : 's'} of ${o.seconds} s measured after ${o.warmup} s ` +
      `of warm-up; the namespaces alternate run by run. Workload: \`client.put\` of a ${o.valueBytes}-byte string to keys ` +
      `\`key:0\` … \`key:${o.keyspace - 1}\` drawn uniformly (each written once before, so puts overwrite), N async loops ` +
      'each awaiting one put at a time. p50 and p99 are medians of the runs\' percentiles, from per-put HDR histograms ' +
      `(µs) of the time the client waits. Namespaces \`${NS[1]}\` (\`copies: 1\`) and \`${NS[3]}\` (\`copies: 3\`): hash, ` +
      `${o.slots} slots each, durability \`process\` (the default). With 3 copies on 3 nodes each node leads a third of the ` +
      'partitions and follows the rest, so it applies every write: the cluster does 3× the storage work and a leader ' +
      'answers only once both followers hold the write. CPU µs/op is the CPU of the benchmark process and of the server ' +
      'processes in the measured window per put (servers: /proc, 10 ms ticks).',
    '',
    '### Failover and re-replication of the 3-copy namespace',
    '',
    failoverTable(s),
    '',
    `${s.kills < 100 ? `With ${s.kills} samples the p99 is the slowest kill (nearest rank). ` : ''}Every kill ("controller on": ` +
      'the node whose replica controller led at the kill, "(killed)" if that was the victim, so that another had to be ' +
      'elected first; "copying to the dead node": the most partitions the client\'s routing table showed being copied ' +
      'to the killed node at once, and from when):',
    '',
    killsTable(r.kills),
    '',
    `- A writer in the benchmark process issues ${o.rate} \`client.put\`s a second, open loop (it does not wait for ` +
      `answers), to one key in each of the ${o.slots} partitions of \`${NS[3]}\` in a shuffled cycle (hash tags ` +
      `\`{f<i>}\` pick the slot), skipping a key whose previous write has no answer yet; ${o.valueBytes}-byte values; ` +
      `${r.data}. It keeps writing throughout the kills and restarts.`,
    '- Each cycle: wait until every partition has a leader and 2 in-sync followers on distinct nodes (`catalog.find`, ' +
      '`followersOf(p).length === 2`), pick the next of s1, s2, s3 that leads partitions, `kill -9` it, watch the ' +
      'writes issued from the kill until 1 s after the failover (each until its answer), restart the node on its data ' +
      '(`restartLocalNode`), and wait for the copies again. *Failover* is from the kill until the first write issued ' +
      'after the kill, to a partition the killed node led, is acknowledged. ' +
      '*Followed partitions* are those the killed node held an in-sync copy of while another node led them (with 3 ' +
      'copies on 3 nodes, every partition the node did not lead); their writes wait for the leader to take the dead ' +
      'copy out of the in-sync followers.',
    '- Membership leases last 1 s, so the node is missed about 1 s after the kill; the controller (which looks every ' +
      '200 ms) then gives its partitions to an in-sync follower with one compare-and-set, which the client sees through ' +
      'its watch. The restarted node gets its copies back as the controller copies every partition to it afresh ' +
      '(snapshot and change log, 512 partitions per job, 2 jobs at a time).',
    `- At the end the writer stops and every key is read back: a key must hold its last acknowledged value (or a later ` +
      'one whose write failed, outcome unknown).',
    '',
    '### What the run shows',
    '',
    ...observations(r).map((x) => `- ${x}`),
    '',
    '### Setup',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}; Node ${m.node}; lmdb ${m.lmdb}.`,
    `- CPU used by other processes on the host (including the kernel's own threads, e.g. for disk I/O) during the ` +
      `measured throughput windows: ${other}. Everything shares ` +
      `the same ${m.cores} cores: the client, ${STORAGE_NODES} storage nodes and the coordinator.`,
    '- Numbers on a shared or virtual machine move from run to run (see the per-run columns).',
    '',
    END_MARKER,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// The run

async function main(options: ReplicationOptions): Promise<void> {
  const began = performance.now();
  const value = padded('v', options.valueBytes);
  const keys = Array.from({ length: options.keyspace }, (_, i) => `key:${i}`);

  // Pids of restarted nodes: untracked once the cluster is stopped (registered first, so it runs after that stop).
  const restarted = new Set<number>();
  onCleanup('restarted node pids', async () => {
    for (const pid of restarted) if (!isAlive(pid)) untrackPid(pid);
  });

  log(`starting shardflow: ${STORAGE_NODES} storage nodes + embedded coordinator`);
  const cluster = await startShardflowCluster(options.tmp, STORAGE_NODES);
  const files = new ClusterDir(cluster.dir);
  if (options.keepLogs) {
    const into = options.keepLogs;
    onCleanup('copying the logs', async () => {
      await mkdir(into, { recursive: true });
      await copyFile(join(files.coordinatorDir, 'coordinator.log'), join(into, 'coordinator.log')).catch(() => undefined);
      for (const id of NODE_IDS) await copyFile(files.nodeLog(id), join(into, `${id}.log`)).catch(() => undefined);
      log(`logs copied to ${into}`);
    });
  }
  const client = await connect({ dir: cluster.dir, name: 'bench-replication' });
  const { coordinator } = await openCoordinator({ dir: cluster.dir });
  onCleanup('client and coordinator connection', async () => {
    await client.close().catch(() => undefined);
    await coordinator.close().catch(() => undefined);
  });

  for (const copies of [1, 3] as const) {
    await client.createNamespace(NS[copies], { scheme: 'hash', slotCount: options.slots, copies });
  }
  await tableWhen(client, NS[3], fullyReplicated(3), 60_000, `${NS[3]} fully replicated`);
  await tableWhen(client, NS[1], () => true, 60_000, `${NS[1]} visible`);

  // ---- 1. Throughput
  const targets = new Map<1 | 3, KvTarget>();
  for (const copies of [1, 3] as const) {
    const ns = NS[copies];
    targets.set(copies, {
      name: ns,
      serverPids: cluster.pids,
      put: (key, v) => client.put(ns, key, v),
      get: (key) => client.get<string>(ns, key),
      async prefill(ks, v) {
        for (let i = 0; i < ks.length; i += 1000) {
          await client.batch(ns, ks.slice(i, i + 1000).map((key) => ({ op: 'put' as const, key, value: v })));
        }
      },
      close: async () => undefined,
    });
  }
  for (const [copies, target] of targets) {
    const t0 = performance.now();
    await target.prefill(keys, value);
    log(`prefilled ${NS[copies]} (${copies} cop${copies === 1 ? 'y' : 'ies'}) with ${keys.length} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const cells: ThroughputCell[] = [];
  for (const concurrency of options.concurrency) for (const copies of [1, 3] as const) cells.push({ copies, concurrency, runs: [] });
  const total = cells.length * options.repeats;
  let done = 0;
  for (let repeat = 1; repeat <= options.repeats; repeat++) {
    const order = repeat % 2 === 1 ? cells : [...cells].reverse();
    for (const cell of order) {
      const sample = await runLoad(targets.get(cell.copies)!, {
        op: 'put',
        concurrency: cell.concurrency,
        warmupSeconds: options.warmup,
        seconds: options.seconds,
        keys,
        value,
      });
      cell.runs.push(sample);
      done++;
      log(
        `[${done}/${total}] copies=${cell.copies} c=${cell.concurrency} run ${repeat}: ${formatRate(sample.opsPerSec)} ops/s, ` +
          `p50 ${formatLatency(sample.p50Us)}, p99 ${formatLatency(sample.p99Us)}, max ${formatLatency(sample.maxUs)}, CPU/op client ` +
          `${Math.round(sample.clientCpuUsPerOp)} µs + servers ${sample.serverCpuUsPerOp === undefined ? '?' : Math.round(sample.serverCpuUsPerOp)} µs` +
          (sample.otherCores !== undefined && sample.otherCores >= 0.1 ? `, other processes busy ${sample.otherCores.toFixed(1)} cores` : '') +
          (sample.errors ? `, ${sample.errors} errors` : ''),
      );
    }
  }
  process.stdout.write('\n' + throughputTable(cells) + '\n\n');

  // ---- 2. Failover
  const ns = NS[3];
  const initial = await tableWhen(client, ns, fullyReplicated(3), 60_000, `${ns} fully replicated`);
  const writerKeys = keyPerPartition(initial);
  const writer = new FailoverWriter(client, ns, writerKeys, { rate: options.rate, valueBytes: options.valueBytes });
  const kills: KillResult[] = [];
  // CPU of other processes on the host while the kills run, sampled every second.
  const serverPids = new Set(cluster.pids);
  const otherFailover: number[] = [];
  let last = { snap: cpuSnapshot([]), servers: cpuOf([...serverPids]), at: performance.now() };
  const sampler = setInterval(() => {
    const now = { snap: cpuSnapshot([]), servers: cpuOf([...serverPids]), at: performance.now() };
    if (now.snap.hostUs !== undefined && last.snap.hostUs !== undefined) {
      let servers = 0;
      for (const [pid, us] of now.servers) if (last.servers.has(pid) && us > 0) servers += us - last.servers.get(pid)!;
      const other = now.snap.hostUs - last.snap.hostUs - (now.snap.clientUs - last.snap.clientUs) - servers;
      otherFailover.push(Math.max(0, other / ((now.at - last.at) * 1000)));
    }
    last = now;
  }, 1000);
  onCleanup('cpu sampler', async () => clearInterval(sampler));
  writer.start();
  const stopWriter = onCleanup('failover writer', () => writer.stop());
  try {
    await writer.progress(Math.min(writerKeys.length, options.rate * 2), 60_000);
    log(`writer: ${options.rate} writes/s over ${writerKeys.length} partitions of ${ns}`);
    for (let n = 1; n <= options.kills; n++) {
      const w0 = performance.now();
      const before = await tableWhen(client, ns, fullyReplicated(3), options.healTimeout * 1000, `${ns} fully replicated before kill ${n}`);
      const w1 = performance.now();
      await writer.progress(Math.min(200, options.rate));
      const w2 = performance.now();
      if (w2 - w0 > 2000) log(`before kill ${n}: ${formatMs(w1 - w0)} until fully replicated, then ${formatMs(w2 - w1)} until the writer made progress`);
      kills.push(await killOnce(n, before));
      const k = kills.at(-1)!;
      log(
        `kill ${n}/${options.kills}: ${k.victim} (led ${k.led}, controller on ${k.controller ?? '?'}): membership drop ` +
          `${formatMs(k.deathSeenMs)}, new leaders ${formatMs(k.tableMs)}, failover ${formatMs(k.failoverMs)}, followed partitions ` +
          `${formatMs(k.followedMs)} (slowest ${formatMs(k.followedMaxMs)}, ${k.followedSlow} of ${k.followedWrites} ≥ 100 ms), ` +
          `${k.failedWrites} failed writes; restart ` +
          `${formatMs(k.restartMs)}, re-replication ${formatMs(k.healMs)}`,
      );
    }
  } finally {
    clearInterval(sampler);
    stopWriter();
    await writer.stop();
  }
  await tableWhen(client, ns, fullyReplicated(3), options.healTimeout * 1000, `${ns} fully replicated at the end`);
  const verify = await writer.verify();
  log(`read back ${verify.checked} keys: ${verify.wrong.length} older than their last acknowledged write`);
  for (const w of verify.wrong.slice(0, 10)) log(`  lost: ${w}`);

  async function killOnce(n: number, before: RoutingTable): Promise<KillResult> {
    // The victim: the next of s1..s3 in turn that leads partitions of the namespace.
    let victim = '';
    for (let i = 0; i < NODE_IDS.length; i++) {
      const id = NODE_IDS[(n - 1 + i) % NODE_IDS.length]!;
      if (before.partitions().some((p) => before.ownerOf(p) === id)) {
        victim = id;
        break;
      }
    }
    const led = new Set(before.partitions().filter((p) => before.ownerOf(p) === victim));
    const followed = new Set(before.partitions().filter((p) => before.followersOf(p).includes(victim)));
    const controllerCandidate = await leader(coordinator, REPLICA_ELECTION).catch(() => undefined);
    const controller = controllerCandidate?.split('@')[0];
    const node = await files.readNode(victim);
    if (!node?.pid || !isAlive(node.pid)) throw new Error(`${victim} is not running`);

    const probe: Probe = {
      killAt: 0,
      endAt: Number.POSITIVE_INFINITY,
      led,
      followed,
      ledMaxMs: 0,
      followedMaxMs: 0,
      followedWrites: 0,
      followedSlow: 0,
      failed: 0,
      pending: 0,
    };
    let deathAt: number | undefined;
    let tableAt: number | undefined;
    const offMembers = client.members.onChange(() => {
      if (deathAt === undefined && client.members.get(victim) === undefined) deathAt = performance.now();
    });
    let copyingToDead = 0;
    let copyingAt: number | undefined;
    const offTable = client.catalog.onChange((t, name) => {
      if (name !== ns || !t || probe.killAt === 0 || performance.now() > probe.endAt) return;
      if (tableAt === undefined && !t.partitions().some((p) => t.ownerOf(p) === victim)) tableAt = performance.now();
      const copying = t.partitions().filter((p) => t.migrationOf(p)?.to === victim).length;
      if (copying > 0) copyingAt ??= performance.now();
      copyingToDead = Math.max(copyingToDead, copying);
    });
    const resumed = new Promise<void>((resolve) => (probe.wake = resolve));
    let restartMs: number;
    let healMs: number;
    try {
      probe.killAt = performance.now();
      writer.probe = probe;
      process.kill(node.pid, 'SIGKILL');
      untrackPid(node.pid);
      serverPids.delete(node.pid);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([resumed, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.failoverTimeout * 1000)))]);
      clearTimeout(timer);
      if (probe.firstLedAck === undefined) log(`kill ${n}: no write to ${victim}'s partitions acknowledged within ${options.failoverTimeout} s`);
      // The window of watched writes: until 1 s after the failover. Then every watched write gets its answer (the
      // client gives up after 10 s), so the slowest ones count.
      await sleep(1000);
      probe.endAt = performance.now();
      const deadline = Date.now() + 20_000;
      while (probe.pending > 0 && Date.now() < deadline) await sleep(10);
    } finally {
      writer.probe = undefined;
      offMembers();
      offTable();
    }
    const t0 = performance.now();
    const started = await restartLocalNode(cluster.dir, victim);
    if (started.pid) {
      trackPid(started.pid);
      restarted.add(started.pid);
      serverPids.add(started.pid);
    }
    const ready = performance.now();
    restartMs = ready - t0;
    await tableWhen(client, ns, fullyReplicated(3), options.healTimeout * 1000, `${ns} re-replicated after kill ${n}`);
    healMs = performance.now() - ready;
    const since = (t: number | undefined) => (t === undefined ? undefined : t - probe.killAt);
    return {
      n,
      victim,
      led: led.size,
      followed: followed.size,
      controller,
      deathSeenMs: since(deathAt),
      tableMs: since(tableAt),
      failoverMs: since(probe.firstLedAck),
      followedMs: since(probe.firstFollowedAck),
      ledMaxMs: probe.ledMaxMs,
      followedMaxMs: probe.followedMaxMs,
      followedWrites: probe.followedWrites,
      followedSlow: probe.followedSlow,
      failedWrites: probe.failed,
      restartMs,
      healMs,
      copyingToDead,
      copyingToDeadMs: since(copyingAt),
    };
  }

  // ---- Report
  const summary = summarizeKills(kills);
  const machine = machineInfo('n/a');
  const dataBytes = (options.keyspace + writerKeys.length) * options.valueBytes;
  const report: Report = {
    options,
    machine,
    date: today(),
    command: benchCommand('replication'),
    elapsedSeconds: (performance.now() - began) / 1000,
    cells,
    kills,
    summary,
    verify,
    writes: writer.writes,
    otherFailover,
    otherCores: cells.flatMap((c) => c.runs.map((r) => r.otherCores)).filter((x): x is number => x !== undefined),
    dataBytes,
    data: `the namespace holds about ${(dataBytes / 2 ** 20).toFixed(1)} MB of values per copy (the ${options.keyspace} keys of the throughput runs and these ${writerKeys.length})`,
  };
  process.stdout.write(
    '\n' + failoverTable(summary) + '\n\n' + killsTable(kills) + '\n\n' + verdicts(cells, summary).join('\n') + '\n' +
      `Acknowledged writes lost: ${verify.wrong.length} of ${verify.checked} keys checked\n\n` +
      observations(report).map((x) => `- ${x}`).join('\n') + '\n' +
      `\n${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}\n`,
  );
  if (options.docs) {
    await writeDocsSection(options.docs, docsSection(report), { start: START_MARKER, end: END_MARKER });
    log(`wrote ${options.docs}`);
  } else {
    log('not writing the docs (--quick or --no-docs)');
  }
}

await runBench({
  name: 'replication',
  usage: USAGE,
  parse: parseOptions,
  main,
  stopping: 'stopping the cluster and removing temporary directories',
});
