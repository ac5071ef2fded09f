/** The bench:rebalance tables (markdown, also printed), the verdicts on the issue's targets, and the docs section. */
import { median } from '../load.js';
import { formatLatency, type Machine } from '../report.js';
import { formatSize, type RebalanceOptions, type SystemName } from './options.js';
import type { RunResult } from './result.js';
import { writeDocsSection } from '../docs.js';

export const START_MARKER = '<!-- bench:rebalance start -->';
export const END_MARKER = '<!-- bench:rebalance end -->';

const MB = 2 ** 20;
const NAMES: Record<SystemName, string> = { shardflow: 'shardflow', redis: 'Redis Cluster' };

/** Targets of issue 4 point 9. */
export const TARGETS = { speedup: 5, p99Ratio: 3, lost: 0, movedRatio: 1.05 };

export const movedBytes = (r: RunResult) => r.movedKeys * r.valueBytes;
export const moveMBps = (r: RunResult) => movedBytes(r) / MB / r.moveSeconds;
export const movedRatio = (r: RunResult) => r.movedKeys / (r.keys / 4);
export const p99Ratio = (r: RunResult) => r.during.p99Us / r.baseline.p99Us;

function seconds(s: number): string {
  return s < 10 ? `${s.toFixed(2)} s` : s < 100 ? `${s.toFixed(1)} s` : `${Math.round(s)} s`;
}
const int = (n: number) => Math.round(n).toLocaleString('en-US');

export interface Summary {
  /** The runs whose scale-out completed (the medians are over these). */
  runs: RunResult[];
  /** The runs whose scale-out failed. */
  failed: RunResult[];
  scaleSeconds: number;
  joinSeconds: number;
  moveSeconds: number;
  mbps: number;
  movedRatio: number;
  movedPartitionRatio: number;
  baselineP99: number;
  duringP99: number;
  p99Ratio: number;
  lost: number;
  unreadable: number;
  stale: number;
  errors: number;
  serverCpu: number | undefined;
}

export function summarize(all: RunResult[]): Summary {
  const runs = all.filter((r) => !r.failure);
  const cpu = runs.map((r) => r.serverCpuSeconds);
  const med = (xs: number[]) => (xs.length ? median(xs) : NaN);
  return {
    runs,
    failed: all.filter((r) => r.failure),
    scaleSeconds: med(runs.map((r) => r.scaleSeconds)),
    joinSeconds: med(runs.map((r) => r.joinSeconds)),
    moveSeconds: med(runs.map((r) => r.moveSeconds)),
    mbps: med(runs.map(moveMBps)),
    movedRatio: med(runs.map(movedRatio)),
    movedPartitionRatio: med(runs.map((r) => r.movedPartitions / (r.partitions / 4))),
    baselineP99: med(runs.map((r) => r.baseline.p99Us)),
    duringP99: med(runs.map((r) => r.during.p99Us)),
    p99Ratio: med(runs.map(p99Ratio)),
    lost: all.reduce((a, r) => a + r.lostWrites, 0),
    unreadable: all.reduce((a, r) => a + r.unreadable, 0),
    stale: all.reduce((a, r) => a + r.baseline.staleReads + r.during.staleReads, 0),
    errors: all.reduce((a, r) => a + r.baseline.errors + r.during.errors, 0),
    serverCpu: runs.length && cpu.every((x) => x !== undefined) ? median(cpu as number[]) : undefined,
  };
}

function bySystem(results: RunResult[]): Map<SystemName, Summary> {
  const map = new Map<SystemName, Summary>();
  for (const system of ['shardflow', 'redis'] as const) {
    const runs = results.filter((r) => r.system === system);
    if (runs.length > 0) map.set(system, summarize(runs));
  }
  return map;
}

/** The medians, one row per system. */
export function summaryTable(results: RunResult[]): string {
  const rows = [
    '| system | data moved | scale-out time | of which moving data | MB/s while moving | moved / optimal | foreground p99 before | p99 during | during / before | lost writes | stale reads | failed ops | server CPU |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const [system, s] of bySystem(results)) {
    if (s.runs.length === 0) {
      rows.push(`| ${NAMES[system]} | every run failed (${s.failed.length}); see below | | | | | | | | ${s.lost} | ${s.stale} | ${s.errors} | |`);
      continue;
    }
    const moved = median(s.runs.map(movedBytes));
    rows.push(
      `| ${NAMES[system]}${s.failed.length ? ` (${s.failed.length} of ${s.failed.length + s.runs.length} runs failed)` : ''} | ${formatSize(moved)} | ${seconds(s.scaleSeconds)} | ${seconds(s.moveSeconds)} | ${s.mbps.toFixed(1)} | ` +
        `${s.movedRatio.toFixed(3)}× | ${formatLatency(s.baselineP99)} | ${formatLatency(s.duringP99)} | ${s.p99Ratio.toFixed(2)}× | ` +
        `${s.lost}${s.unreadable ? ` (+${s.unreadable} unreadable)` : ''} | ${s.stale} | ${s.errors} | ` +
        `${s.serverCpu === undefined ? '?' : `${s.serverCpu.toFixed(1)} core-s`} |`,
    );
  }
  return rows.join('\n');
}

/** Every run, in the order they ran. */
export function runsTable(results: RunResult[]): string {
  const rows = [
    '| system | run | keys moved (slots) | scale-out = join + move | MB/s while moving | p50 before / during | p99 before / during | max during | foreground ops/s before / during | writes acked | lost | stale reads | failed ops | server CPU | other load | client stall before / during |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    rows.push(
      `| ${NAMES[r.system]} | ${r.repeat} | ${int(r.movedKeys)} (${int(r.movedPartitions)} of ${int(r.partitions)}) | ` +
        (r.failure
          ? `**failed** after ${seconds(r.scaleSeconds)} | | `
          : `${seconds(r.scaleSeconds)} = ${seconds(r.joinSeconds)} + ${seconds(r.moveSeconds)} | ${moveMBps(r).toFixed(1)} | `) +
        `${formatLatency(r.baseline.p50Us)} / ${formatLatency(r.during.p50Us)} | ` +
        `${formatLatency(r.baseline.p99Us)} / ${formatLatency(r.during.p99Us)} | ${formatLatency(r.during.maxUs)} | ` +
        `${int(r.baseline.opsPerSec)} / ${int(r.during.opsPerSec)} | ${int(r.ackedWrites)} | ${r.lostWrites} | ` +
        `${r.baseline.staleReads + r.during.staleReads} | ${r.baseline.errors + r.during.errors} | ` +
        `${r.serverCpuSeconds === undefined ? '?' : `${r.serverCpuSeconds.toFixed(1)} core-s`} | ` +
        `${r.otherCores === undefined ? '?' : `${r.otherCores.toFixed(2)} cores`} | ` +
        `${Math.round(r.baseline.loopDelayMaxMs)} / ${Math.round(r.during.loopDelayMaxMs)} ms |`,
    );
  }
  return rows.join('\n');
}

const verdict = (met: boolean) => (met ? 'met' : '**NOT met**');

/** One line per target of the issue (the shardflow numbers; Redis's alongside). */
export function verdicts(results: RunResult[]): string[] {
  const s = bySystem(results);
  const sf = s.get('shardflow');
  const rd = s.get('redis');
  const lines: string[] = [];
  for (const [system, x] of s) {
    if (x.failed.length === 0) continue;
    lines.push(
      `${NAMES[system]}: ${x.failed.length} of ${x.failed.length + x.runs.length} scale-outs **failed** ` +
        `(${x.failed.map((r) => `run ${r.repeat}: ${r.failure!.split('\n')[0]!.slice(0, 200)}`).join('; ')}); ` +
        'the medians are over the others' + (system === 'shardflow' ? '; a failed scale-out misses every target' : ''),
    );
  }
  if (sf && rd && sf.runs.length > 0 && rd.runs.length > 0) {
    const speedup = rd.scaleSeconds / sf.scaleSeconds;
    const moveSpeedup = rd.moveSeconds / sf.moveSeconds;
    lines.push(
      `Speed: shardflow's scale-out took ${seconds(sf.scaleSeconds)} against Redis Cluster's ${seconds(rd.scaleSeconds)}: ` +
        `${speedup >= 1 ? `${speedup.toFixed(2)}× faster` : `${(1 / speedup).toFixed(2)}× slower`} ` +
        `(moving data alone: ${seconds(sf.moveSeconds)} vs ${seconds(rd.moveSeconds)}, ${moveSpeedup.toFixed(2)}×) ` +
        `(target ≥ ${TARGETS.speedup}× faster): ${verdict(speedup >= TARGETS.speedup)}`,
    );
  }
  if (sf && sf.runs.length > 0) {
    const worst = Math.max(...sf.runs.map(p99Ratio));
    lines.push(
      `Foreground p99 during the scale-out: ${formatLatency(sf.duringP99)} against ${formatLatency(sf.baselineP99)} before, ` +
        `${sf.p99Ratio.toFixed(2)}× (worst run ${worst.toFixed(2)}×)` +
        (rd ? `; Redis Cluster ${rd.p99Ratio.toFixed(2)}× (${formatLatency(rd.duringP99)} against ${formatLatency(rd.baselineP99)})` : '') +
        ` (target ≤ ${TARGETS.p99Ratio}×): ${verdict(sf.p99Ratio <= TARGETS.p99Ratio)}`,
    );
    const worstMoved = Math.max(...sf.runs.map(movedRatio));
    lines.push(
      `Data moved: ${sf.movedRatio.toFixed(3)}× the optimum (a quarter of the keys; worst run ${worstMoved.toFixed(3)}×; ` +
        `slots ${sf.movedPartitionRatio.toFixed(3)}×)` +
        (rd ? `; Redis Cluster ${rd.movedRatio.toFixed(3)}× (slots ${rd.movedPartitionRatio.toFixed(3)}×)` : '') +
        ` (target ≤ ${TARGETS.movedRatio}×): ${verdict(worstMoved <= TARGETS.movedRatio)}`,
    );
  }
  if (sf) {
    const acked = (x: Summary) => int([...x.runs, ...x.failed].reduce((a, r) => a + r.ackedWrites, 0));
    lines.push(
      `Lost writes: ${sf.lost} of ${acked(sf)} acknowledged` +
        (sf.unreadable ? `, ${sf.unreadable} keys unreadable` : '') +
        (rd ? `; Redis Cluster ${rd.lost} of ${acked(rd)}${rd.unreadable ? `, ${rd.unreadable} keys unreadable` : ''}` : '') +
        ` (target 0): ${verdict(sf.lost === 0 && sf.unreadable === 0)}`,
    );
  }
  return lines;
}

export interface ReportMeta {
  options: RebalanceOptions;
  machine: Machine;
  date: string;
  command: string;
  elapsedSeconds: number;
  keys: number;
}

export function docsSection(results: RunResult[], meta: ReportMeta): string {
  const { options: o, machine: m } = meta;
  const s = bySystem(results);
  const sf = s.get('shardflow');
  const rd = s.get('redis');
  const others = results.map((r) => r.otherCores).filter((x): x is number => x !== undefined);
  const fence = sf?.runs.map((r) => r.fenceMs).filter((x) => x !== undefined) ?? [];
  const lines = [
    START_MARKER,
    '',
    '## Rebalance: 3 → 4 storage nodes under load, shardflow vs Redis Cluster',
    '',
    `Run on ${meta.date} with \`${meta.command}\` (${Math.round(meta.elapsedSeconds)} s in all): ` +
      `${formatSize(o.sizeBytes)} of ${formatSize(o.valueBytes)} values (${int(meta.keys)} keys) loaded into 3 nodes, ` +
      'then a 4th node added and the data rebalanced onto it while a foreground load reads and writes.',
    '',
    summaryTable(results),
    '',
    ...verdicts(results).map((v) => `- ${v}`),
    '',
    `Each row is the median of ${o.repeats} run${o.repeats === 1 ? '' : 's'} per system (every run below), each on a ` +
      'freshly started and loaded cluster. Sizes are binary (1 GB = 2^30 bytes, MB/s = 2^20 bytes per second) and ' +
      'count values only: keys moved × value size.',
    '',
    runsTable(results),
    '',
    '### What is measured',
    '',
    '- **Scale-out time**: from starting the 4th node\'s process until the rebalance has finished, in two parts. ' +
      (o.driver === 'cli'
        ? '*Join*: shardflow, `shardflow scale storage=4 --json` run as its own process (as redis-cli is for Redis), with its defaults'
        : '*Join*: shardflow, `scaleLocalStorage(dir, 4)` — what `shardflow scale storage=4` runs — in the benchmark process, with its defaults') +
      (o.moveConcurrency === 4 ? '' : ` except \`concurrency: ${o.moveConcurrency}\``) +
      (o.maxP99Ratio === 3 ? '' : ` and \`--max-p99-ratio ${o.maxP99Ratio}\``) +
      ' — starts (the command\'s own start-up counts), takes the rebalance lock, spawns `s4` and waits until it is ready ' +
      'in membership, plans, sizes the partitions and checks every node involved answers; the join is all of that, ' +
      'the scale-out time less the moves\' time it reports. Redis, a 4th `redis-server` (same settings) is started, ' +
      '`redis-cli --cluster add-node` introduces it, and the benchmark waits until every master knows it and reports ' +
      '`cluster_state:ok` and `redis-cli --cluster check` reports agreement (before that `rebalance` refuses to run, ' +
      'or the new master answers `MIGRATE` with `CLUSTERDOWN`). *Move*: shardflow, the moves, ' +
      `${o.moveConcurrency} at a time; Redis, \`redis-cli --cluster rebalance --cluster-use-empty-masters ` +
      `--cluster-pipeline ${o.redisPipeline}\`` +
      (o.redisPipeline === 10 ? " (10 keys per `MIGRATE`, redis-cli's default)" : '') +
      ', its own process.',
    '- **MB/s while moving**: value bytes in the slots that changed owner, divided by the move step\'s time.',
    '- **Moved / optimal**: keys in the slots that changed owner, divided by a quarter of all keys (the least any ' +
      'rebalance onto an equal 4th node must move). shardflow counts each key\'s slot as its client routes it ' +
      '(4096 slots); Redis, `CLUSTER COUNTKEYSINSLOT` for every slot whose owner changed (16384 slots). Neither ' +
      'moves a slot between the old nodes; the slot counts are in the runs table.',
    `- **Foreground load**: ${o.concurrency} loops in the benchmark process, ${o.rate > 0 ? `paced to ${int(o.rate)} operations/s in total` : 'each issuing its next operation as soon as one returns'}, ` +
      `${Math.round(o.writeRatio * 100)}% writes (a new value for one of the loop's own keys) and ` +
      `${Math.round((1 - o.writeRatio) * 100)}% reads (of any key), keys uniform at random; shardflow through ` +
      '`connect()`\'s client, Redis through an ioredis `Cluster` without `enableAutoPipelining`, so that it follows ' +
      '`MOVED` and `ASK` redirections itself (with it, ioredis hands the caller `MOVED` errors when the commands of one ' +
      'automatic pipeline are redirected to different nodes). Latency is from issuing an operation to its answer, in an HDR histogram per phase: ' +
      `*before* is ${o.baseline} s measured after ${o.warmup} s of warm-up, *during* is the whole scale-out.`,
    '- **Lost writes**: every value carries the sequence number of the write that stored it, and every loop writes ' +
      'only its own keys, one write at a time, so the last acknowledged write of each key is known. After the ' +
      'scale-out every key is read back; a key holding an older write (or none) is a lost write. **Stale reads**: a ' +
      'foreground read that returned an older write than the one acknowledged for its key when the read was issued. ' +
      '**Failed ops**: foreground operations that returned an error (they are not retried by the benchmark).',
    '- **Server CPU**: CPU time of the server processes while the scale-out ran (shardflow: the 4 storage nodes and ' +
      "the coordinator; Redis: the 4 masters; neither counts the rebalance driver). *Other load*: the host's busy " +
      'time in that window not spent by the benchmark process or the servers, in cores (it includes the driver when it ' +
      'runs as its own process — redis-cli' + (o.driver === 'cli' ? ', `shardflow scale`' : '') + ' — and the kernel\'s own threads). *Client stall*: the longest event-loop delay of the ' +
      'benchmark process (which runs the foreground client) in each phase; every operation in flight then waits as ' +
      'long, whatever the servers do.',
    '',
    ...timelineLines(results),
    '### Setup',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores available, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}.`,
    `- Node ${m.node}; Redis ${m.redis}; ioredis ${m.ioredis}; lmdb ${m.lmdb}.`,
    others.length > 0
      ? `- CPU used by other processes on the host during the scale-outs: median ${median(others).toFixed(2)} cores, max ${Math.max(...others).toFixed(2)} (of ${m.cores}).`
      : '- CPU used by other processes: unknown (no /proc).',
    '- shardflow: `startLocalCluster` with 3 storage node processes and the embedded coordinator, hash namespace ' +
      '`default` (4096 slots), durability `process` (the default); the data loaded with `client.batch` (about 1 MB ' +
      'per batch). Redis Cluster: 3 `redis-server` masters on loopback, no replicas, `--appendonly yes ' +
      "--appendfsync everysec --save ''` (as in bench:kv), the data loaded with pipelined `SET`s; the 4th master " +
      'has the same settings.',
    '- Everything shares the same cores: the benchmark process (the foreground client' +
      (o.driver === 'cli' ? '' : ' and, for shardflow, the rebalance driver') +
      '), the server processes, and the drivers' + (o.driver === 'cli' ? ' (`shardflow scale`, redis-cli)' : ' (for Redis, redis-cli)') + '. Systems alternate run by run (and which goes first ' +
      'alternates) so drift on the host affects both alike. One system\'s cluster is stopped and removed before the ' +
      'other\'s starts.',
    '',
    '### Reading the numbers',
    '',
    '- Both systems move a slot\'s keys with the slot owner serving throughout, and neither loses an acknowledged ' +
      'write here. They differ in how: Redis moves keys in batches of `--cluster-pipeline` with synchronous ' +
      '`MIGRATE` calls, one slot after another, each batch blocking the source master while it serializes and ' +
      'sends; shardflow copies a partition from a read snapshot straight from source to target, ' +
      `${o.moveConcurrency} moves at a time, then holds the moving partitions' requests for a moment ` +
      (fence.length > 0
        ? `(per move: median of the runs' medians ${median(fence.map((f) => f!.p50))} ms, longest ${Math.max(...fence.map((f) => f!.max))} ms) `
        : '') +
      'while it takes the last changes and switches the owner with one compare-and-set.',
    '- On this 2-core host the servers, the driver and the foreground client compete for the same cores, so the ' +
      'move speed is largely a matter of CPU per byte moved (the server CPU column), and p99 during a move largely ' +
      'a matter of how much CPU the move leaves to the foreground.',
    ...(() => {
      if (o.rate <= 0) return [];
      const paced = [...s].map(([system, x]) => ({ system, ops: median([...x.runs, ...x.failed].map((r) => r.during.opsPerSec)) }));
      const behind = paced.filter((p) => p.ops < 0.9 * o.rate);
      if (behind.length === 0) return [];
      return [
        `- Each of the ${o.concurrency} foreground loops waits for its answer before it paces the next operation, so a ` +
          'system that stalls is also sent fewer operations: during the scale-out the foreground reached a median ' +
          paced.map((p) => `${int(p.ops)} operations/s with ${NAMES[p.system]}`).join(' and ') +
          ` of the ${int(o.rate)} it paces. Fewer operations are measured exactly when latency is worst, so for ` +
          `${behind.map((p) => NAMES[p.system]).join(' and ')} the p99 during the scale-out understates what an ` +
          'open-loop client (one that keeps sending) would see.',
      ];
    })(),
    '- Numbers on a shared or virtual machine move from run to run (see the runs table and the other-load column).',
    '',
    END_MARKER,
  ];
  void rd;
  return lines.join('\n');
}

/** Where shardflow's scale-out spent its time (medians over the runs), from the coordinator watch and probe. */
export function timelineLines(results: RunResult[]): string[] {
  const runs = results.filter((r) => r.system === 'shardflow' && !r.failure && r.timeline && r.timeline.moves > 0);
  if (runs.length === 0) return [];
  const t = runs.map((r) => r.timeline!);
  const med = (f: (x: (typeof t)[number]) => number | undefined) => {
    const xs = t.map(f).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const sec = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(2)} s`);
  const ms = (x: number | undefined) => (x === undefined ? '?' : `${Math.round(x)} ms`);
  const partitionsPerMove = median(runs.map((r) => r.movedPartitions / Math.max(1, r.timeline!.moves)));
  return [
    "### Where shardflow's scale-out spends its time",
    '',
    'Seen from outside, through a watch on the coordinator (each move records its steps there) and a probe timing one ' +
      'coordinator write every 200 ms; medians over the runs:',
    '',
    `- After the start: rebalance lock taken at ${sec(med((x) => x.lockMs))}, \`s4\` ready in membership at ` +
      `${sec(med((x) => x.newNodeReadyMs))}, first move recorded at ${sec(med((x) => x.firstMoveMs))}, last move done ` +
      `at ${sec(med((x) => x.lastMoveEndMs))}.`,
    `- ${Math.round(median(t.map((x) => x.moves)))} moves of about ${Math.round(partitionsPerMove)} partitions each, ` +
      `${median(t.map((x) => x.inFlight)).toFixed(1)} in flight on average. One move took ${ms(med((x) => x.totalMs))}: ` +
      `${ms(med((x) => x.recordMs))} to record it in the routing record (CAS), ${ms(med((x) => x.beginMs))} for the ` +
      `source to begin the export and the job record to say so, ${ms(med((x) => x.copyMs))} to copy, fence, catch up and ` +
      `switch the owner (CAS), ${ms(med((x) => x.finishMs))} to end it and delete its job record.`,
    `- Every step that changes the coordinator waits for it: one coordinator write took ` +
      `${ms(med((x) => x.probeBefore.p50))} (median) before the scale-out and ${ms(med((x) => x.probeDuring.p50))} during ` +
      `it (the embedded coordinator saves its whole state, fsynced, before it acknowledges a change); ` +
      `${Math.round(median(t.map((x) => x.changesPerSec)))} changes/s during the scale-out.`,
    `- A storage node that is busy inside a synchronous call (an LMDB commit runs on its event loop) answers nothing ` +
      `meanwhile: a \`node.ping\` sent to every node every 100 ms during the scale-out came back in ` +
      Object.keys(t[0]?.nodePing ?? {})
        .map((id) => {
          const p99 = med((x) => x.nodePing[id]?.p99);
          const max = med((x) => x.nodePing[id]?.max);
          return `${id} ${ms(p99)} (p99; longest ${ms(max)})`;
        })
        .join(', ') +
      ' — the sources are s1–s3, the target s4.',
    '',
  ];
}

/** Replaces the bench:rebalance section of the docs file (appending it if absent). */
export async function writeDocs(path: string, section: string): Promise<void> {
  await writeDocsSection(path, section, { start: START_MARKER, end: END_MARKER });
}
