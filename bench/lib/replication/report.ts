/** bench:replication: summaries of the runs and kills, and the docs/benchmarks.md section. */
import type { RoutingTable } from '../../../src/keyspace/index.js';
import hdr from 'hdr-histogram-js';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { type ShardflowClient } from '../../../src/client/index.js';
import { restartLocalNode } from '../../../src/cluster/local-cluster.js';
import { leader } from '../../../src/coordination/index.js';
import { median, type Sample } from '../load.js';
import type { StorageStats } from '../../../src/storage/storage-node.js';
import { formatLatency, type Machine } from '../report.js';
import {
  START_MARKER,
  END_MARKER,
  THROUGHPUT_TARGET,
  FAILOVER_TARGET_MS,
  STORAGE_NODES,
  NS,
  type ReplicationOptions,
} from './options.js';

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A string of exactly `bytes` ASCII bytes that starts with `prefix|`. */
export function padded(prefix: string, bytes: number): string {
  const head = `${prefix}|`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

/** A percentile of a few values through an HDR histogram (µs resolution, as the latency histograms). */
export function percentileMs(valuesMs: number[], percentile: number): number {
  if (valuesMs.length === 0) return Number.NaN;
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
  for (const v of valuesMs) h.recordValue(Math.max(1, Math.round(v * 1000)));
  // getValueAtPercentile answers the top of the value's bucket, which can lie above the largest value recorded.
  const us = percentile >= 100 ? h.maxValue : Math.min(h.maxValue, h.getValueAtPercentile(percentile));
  h.destroy();
  return us / 1000;
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 10_000) return `${Math.round(ms).toLocaleString('en-US')} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function formatRate(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

export const fullyReplicated = (copies: number) => (t: RoutingTable) =>
  t.partitions().every((p) => {
    const followers = t.followersOf(p);
    return followers.length === copies - 1 && !followers.includes(t.ownerOf(p)!) && !t.migrationOf(p);
  });

/** Resolves with the table of `ns` once `ok` holds for it (checked on every change the client's catalog sees). */
export function tableWhen(client: ShardflowClient, ns: string, ok: (t: RoutingTable) => boolean, timeoutMs: number, what: string): Promise<RoutingTable> {
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
export function keyPerPartition(table: RoutingTable): string[] {
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
// Results

export interface ThroughputCell {
  copies: 1 | 3;
  concurrency: number;
  runs: Sample[];
}

export interface KillResult {
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
  /** What the copies into the restarted node wrote (its `node.stats`): entries copied or fetched, kept, deleted. */
  imported: StorageStats['imported'];
  /**
   * Partitions the client's routing table showed being copied to the killed node (a migration entry towards it) in
   * the watched window, most at once, and when the first showed (ms from the kill).
   */
  copyingToDead: number;
  copyingToDeadMs: number | undefined;
}

export function summarizeCell(cell: ThroughputCell) {
  return {
    opsPerSec: median(cell.runs.map((r) => r.opsPerSec)),
    p50Us: median(cell.runs.map((r) => r.p50Us)),
    p99Us: median(cell.runs.map((r) => r.p99Us)),
    client: median(cell.runs.map((r) => r.clientCpuUsPerOp)),
    servers: cell.runs.every((r) => r.serverCpuUsPerOp !== undefined) ? median(cell.runs.map((r) => r.serverCpuUsPerOp!)) : undefined,
    errors: cell.runs.reduce((a, r) => a + r.errors, 0),
  };
}

export function throughputTable(cells: ThroughputCell[]): string {
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

export interface FailoverSummary {
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

export function summarizeKills(kills: KillResult[]): FailoverSummary {
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

export function failoverTable(s: FailoverSummary): string {
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

export function killsTable(kills: KillResult[]): string {
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

export function verdicts(cells: ThroughputCell[], s: FailoverSummary): string[] {
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
export function observations(r: Report): string[] {
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
  const kept = median(kills.map((k) => k.imported?.keptKeys ?? 0));
  const copied = median(kills.map((k) => k.imported?.copiedKeys ?? 0));
  out.push(
    `A restarted node comes back out of every follower list (failover took it out), but with its data: the partitions ` +
      `are short of copies, so it keeps them, and the controller copies all ${o.slots} partitions to it again. A ` +
      'partition bigger than a copy page (256 KiB) is compared — digests of the leader\'s snapshot against what the ' +
      'node kept, fetching only what changed — and a smaller one is copied whole, one call where a compare takes two ' +
      `(median per restart: ${Math.round(kept).toLocaleString('en-US')} entries kept, ` +
      `${Math.round(copied).toLocaleString('en-US')} copied or fetched, of about ${mb.toFixed(1)} MB of values in ` +
      `${o.slots} partitions). Re-replication took a median ${formatMs(r.summary.heal.p50)}: with this little data, ` +
      'mostly the round trips of the partition copies (begin, snapshot, change log, hold, cutover), 512 to a job, 2 ' +
      'jobs at a time.',
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

export interface Report {
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

export function docsSection(r: Report): string {
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
      'its watch. The restarted node gets its copies back as the controller copies every partition to it again ' +
      '(snapshot and change log, 512 partitions per job, 2 jobs at a time); it kept its data, so a copy of a partition ' +
      'bigger than a copy page (256 KiB) compares digests and fetches only the entries written while it was away, and ' +
      'a smaller one comes whole in one call.',
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

