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
import { performance } from 'node:perf_hooks';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, openCoordinator, type ShardflowClient } from '../src/client/index.js';
import { ClusterDir } from '../src/config/cluster-dir.js';
import { connect as wireConnect, splitAddress } from '../src/wire/index.js';
import type { StorageStats } from '../src/storage/storage-node.js';
import { restartLocalNode } from '../src/cluster/local-cluster.js';
import { isAlive } from '../src/cluster/spawn.js';
import { leader } from '../src/coordination/index.js';
import { REPLICA_ELECTION } from '../src/migration/index.js';
import { onCleanup, trackPid, untrackPid } from './lib/cleanup.js';
import { runLoad } from './lib/load.js';
import { startShardflowCluster } from './lib/shardflow-cluster.js';
import { formatLatency, machineInfo } from './lib/report.js';
import { writeDocsSection } from './lib/docs.js';
import type { RoutingTable } from '../src/keyspace/index.js';
import type { KvTarget } from './lib/targets.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';
import { cpuSnapshot } from './lib/cpu.js';
import { cpuOf } from './lib/rebalance/proc.js';

import {
  START_MARKER,
  END_MARKER,
  STORAGE_NODES,
  NODE_IDS,
  NS,
  parseOptions,
  USAGE,
  type ReplicationOptions,
} from './lib/replication/options.js';
import {
  sleep,
  padded,
  formatMs,
  formatRate,
  fullyReplicated,
  tableWhen,
  keyPerPartition,
  type ThroughputCell,
  type KillResult,
  throughputTable,
  summarizeKills,
  failoverTable,
  killsTable,
  verdicts,
  observations,
  type Report,
  docsSection,
} from './lib/replication/report.js';

const log = benchLog('replication');

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
          `${formatMs(k.restartMs)}, re-replication ${formatMs(k.healMs)} (kept ${k.imported?.keptKeys ?? '?'}, copied ${k.imported?.copiedKeys ?? '?'})`,
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
    const imported = await importedBy(victim);
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
      imported,
      copyingToDead,
      copyingToDeadMs: since(copyingAt),
    };
  }

  /** The `imported` counters of a storage node (copies into it since it started). */
  async function importedBy(id: string): Promise<StorageStats['imported']> {
    const member = client.members.get(id);
    if (!member) return undefined;
    const [host, port] = splitAddress(member.address);
    const conn = await wireConnect({ host, port, secret: await new ClusterDir(cluster.dir).readSecret() });
    try {
      return ((await conn.call('node.stats', null)) as StorageStats).imported;
    } finally {
      conn.close();
    }
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
