/**
 * Pipeline benchmark: the same keyed windowed count in stream mode and in batch mode at several triggers, at 1 and 3
 * chained keyed stages, on the local runner, with the same logic written in RxJS as the reference.
 * `npm run bench:pipeline -- --help` lists the options.
 *
 * For each row and depth: the maximum sustained records/s (unpaced), then end-to-end event latency p50/p99 at half that
 * load. Medians of the repeats go into the bench:pipeline section of docs/benchmarks.md with a latency chart
 * (docs/pipeline-latency.svg). Everything runs in this process; nothing to clean up.
 */
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseOptions, USAGE, type PipelineBenchOptions } from './lib/pipeline/args.js';
import { runShardflow, type RunSample, type WorkloadSpec } from './lib/pipeline/workload.js';
import { runRx } from './lib/pipeline/rx.js';
import { docsSection, formatMs, resultsTable, rowLabel, summarize, verdicts, writeDocs, STREAM_P99_TARGET_MS, type PipelineCell, type Row } from './lib/pipeline/report.js';
import { latencyChart } from './lib/pipeline/svg.js';
import { machineInfo } from './lib/report.js';
import { benchCommand, benchLog, runBench, today } from './lib/main.js';

const log = benchLog('pipeline');

function run(row: Row, spec: WorkloadSpec, rate: number | undefined, warmup: number, seconds: number): Promise<RunSample> {
  if (row.engine === 'rxjs') return runRx(spec, rate, warmup, seconds);
  return runShardflow(spec, row.mode === 'stream' ? { mode: 'stream' } : { mode: 'batch', trigger: row.trigger! }, rate, warmup, seconds);
}

function fmtCores(x: number | undefined): string {
  return x === undefined ? '?' : x.toFixed(2);
}

function rxjsVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../node_modules/rxjs/package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function ratioRange(rs: number[]): string {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  return rs.length === 0 ? '—' : `${pct(Math.min(...rs))}–${pct(Math.max(...rs))}`;
}

/** Plain sentences on what the medians say, computed from them. */
function findings(cells: PipelineCell[], o: PipelineBenchOptions): string[] {
  const out: string[] = [];
  const get = (pred: (c: PipelineCell) => boolean) => cells.find((c) => pred(c) && c.runs.length > 0);
  const [d1, d3] = [Math.min(...o.depths), Math.max(...o.depths)];
  if (d1 !== d3) {
    const parts: string[] = [];
    for (const c of cells.filter((x) => x.depth === d1 && x.runs.length)) {
      const deep = get((x) => x.depth === d3 && rowLabel(x.row) === rowLabel(c.row));
      if (!deep) continue;
      parts.push(`${rowLabel(c.row)} ${formatMs(summarize(c).p50Ms)} → ${formatMs(summarize(deep).p50Ms)}`);
    }
    out.push(
      `Depth, p50 at ${d1} → ${d3} keyed stages: ${parts.join('; ')}. In batch mode every step collects its own input ` +
        '(the first stage, and each keyed stage after the first, wait for their trigger before they get a group), so a result of stage 1 ' +
        'waits again for stage 2\'s trigger, and so on: with an interval trigger, each further keyed stage adds up to one more interval ' +
        '(on average half of one, since a result can arrive at any point of the next stage\'s interval) — the seed\'s point that batch ' +
        'waits add up across the steps of a pipeline. Stream mode adds only the processing time of the extra stages.',
    );
  }
  const stream = get((c) => c.row.engine === 'shardflow' && c.row.mode === 'stream' && c.depth === d1);
  const batches = cells.filter((c) => c.row.engine === 'shardflow' && c.row.mode === 'batch' && c.depth === d1 && c.runs.length);
  if (stream && batches.length) {
    const s = summarize(stream);
    const ratios = batches.map((b) => summarize(b).max / s.max);
    out.push(
      `Mode, ${d1} stage${d1 === 1 ? '' : 's'}: stream p50 ${formatMs(s.p50Ms)}; batch p50 ` +
        batches.map((b) => `${b.row.trigger} ${formatMs(summarize(b).p50Ms)}`).join(', ') +
        '. A batch result waits for its trigger (an interval trigger: up to the interval, since the record that moves the watermark ' +
        'waits in the group; a count trigger: the time to collect that many records at the paced rate) and then for the records ahead of it ' +
        'in the group to be processed. ' +
        `Maximum records/s of batch rows are ${ratioRange(ratios)} of stream's at this depth` +
        (ratios.every((r) => r > 0.8 && r < 1.25)
          ? ': grouping saves little per record in this runner, since each stage still handles the elements one at a time. '
          : ' — read that against the per-run column: on this shared host the spread between runs of one row is as large as the ' +
            'differences between rows. ') +
        'Reading and processing overlap in both modes (each step is its own loop); a group is held back only until its trigger.',
    );
  }
  if (stream) {
    const s = summarize(stream);
    const runs = stream.runs.map((r) => r.paced.latency.p99Ms);
    out.push(
      `Stream latency: every ${o.windowMs} ms the watermark closes one window for each of ~${o.keys} keys at once, and the last of those ` +
        `results waits behind the others: p50 (${formatMs(s.p50Ms)} at ${d1} stage${d1 === 1 ? '' : 's'}) is about the time to fire them and move ` +
        `them through the queues to the sink, whatever the load, and leaves little room under the target p99 < ${STREAM_P99_TARGET_MS} ms ` +
        `(met in ${runs.filter((x) => x < STREAM_P99_TARGET_MS).length} of ${runs.length} runs; p99 per run ${runs.map(formatMs).join(', ')}). ` +
        `Fewer keys per window, or firing spread over time, would shorten it. The spread of p99 across runs follows pauses (GC, other ` +
        'processes on this shared 2-core host): a run\'s p99 is its slowest firing or two.',
    );
  }
  const rx = get((c) => c.row.engine === 'rxjs' && c.depth === d1);
  if (stream && rx) {
    const a = summarize(stream);
    const b = summarize(rx);
    out.push(
      `Where we lose to RxJS: it sustains ${(b.max / a.max).toFixed(1)}× the records/s of shardflow's stream mode at ${d1} stage${d1 === 1 ? '' : 's'} ` +
        `(${Math.round(b.max).toLocaleString('en-US')} vs ${Math.round(a.max).toLocaleString('en-US')}), and its p99 is ${formatMs(b.p99Ms)} vs ${formatMs(a.p99Ms)}. ` +
        'RxJS calls each operator synchronously per record; the runner pays for per-stage async loops and bounded queues, per-record element ' +
        'objects, key slots, and state reads and writes through the state backend (`get`/`put` per record) that make checkpoints and rescaling possible.',
    );
  }
  out.push(
    'An unpaced generator never waits, so the runner\'s loops run on microtasks alone and starve the timers (ticks, the batch interval, ' +
      '`stop()`): the job could not be stopped. The runner now yields to the event loop every 10 ms; the benchmark also wraps the ' +
      'source so each read first yields (`setImmediate`), for shardflow and RxJS alike.',
  );
  return out;
}

async function main(o: PipelineBenchOptions): Promise<void> {
  const began = performance.now();
  const rows: Row[] = [
    { engine: 'shardflow', mode: 'stream' },
    ...o.triggers.map((trigger): Row => ({ engine: 'shardflow', mode: 'batch', trigger })),
    ...(o.rx ? [{ engine: 'rxjs', mode: 'stream' } as Row] : []),
  ];
  const cells: PipelineCell[] = o.depths.flatMap((depth) => rows.map((row) => ({ row, depth, runs: [] })));
  // One unmeasured run of each engine first, so the JIT has warmed up before the first measured row.
  log('warming up');
  await runShardflow({ keys: o.keys, depth: Math.max(...o.depths), windowMs: o.windowMs }, { mode: 'stream' }, undefined, 0.2, 1);
  if (o.rx) await runRx({ keys: o.keys, depth: Math.max(...o.depths), windowMs: o.windowMs }, undefined, 0.2, 0.5);
  const total = cells.length * o.repeats;
  let done = 0;
  for (let repeat = 1; repeat <= o.repeats; repeat++) {
    for (const cell of cells) {
      const spec: WorkloadSpec = { keys: o.keys, depth: cell.depth, windowMs: o.windowMs };
      const max = await run(cell.row, spec, undefined, o.warmup, o.throughputSeconds);
      const rate = Math.max(1, Math.round(max.recordsPerSec * o.loadFraction));
      const paced = await run(cell.row, spec, rate, o.warmup, o.latencySeconds);
      cell.runs.push({ max, paced, rate });
      done++;
      log(
        `[${done}/${total}] ${rowLabel(cell.row).padEnd(22)} depth ${cell.depth} run ${repeat}: max ${Math.round(max.recordsPerSec).toLocaleString('en-US')} rec/s; ` +
          `paced ${Math.round(paced.recordsPerSec).toLocaleString('en-US')} rec/s: p50 ${formatMs(paced.latency.p50Ms)}, p99 ${formatMs(paced.latency.p99Ms)}, ` +
          `max ${formatMs(paced.latency.maxMs)} (${paced.latency.count} results); other processes busy ${fmtCores(max.otherCores)} / ${fmtCores(paced.otherCores)} cores`,
      );
    }
  }
  const m = machineInfo('n/a');
  const facts = findings(cells, o);
  process.stdout.write('\n' + resultsTable(cells) + '\n\n' + verdicts(cells).join('\n') + '\n\n' + facts.map((f) => `- ${f}`).join('\n') + '\n');
  process.stdout.write(`\n${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; RxJS ${rxjsVersion()}\n`);
  if (o.docs) {
    if (o.svg) {
      const depths = o.depths;
      const chartRows = rows.map((row) => ({
        label: rowLabel(row),
        byDepth: new Map(
          cells
            .filter((c) => c.row === row && c.runs.length)
            .map((c) => {
              const s = summarize(c);
              return [c.depth, { p50Ms: s.p50Ms, p99Ms: s.p99Ms }] as const;
            }),
        ),
      }));
      const svg = latencyChart(chartRows, depths, `Keyed windowed count: end-to-end latency by mode and pipeline depth (local runner, ${today()})`, STREAM_P99_TARGET_MS);
      await mkdir(dirname(o.svg), { recursive: true });
      await writeFile(o.svg, svg);
      log(`wrote ${o.svg}`);
    }
    const section = docsSection(cells, {
      options: o,
      machine: m,
      rxjs: rxjsVersion(),
      date: today(),
      command: benchCommand('pipeline'),
      elapsedSeconds: (performance.now() - began) / 1000,
      svgPath: o.svg,
      docsPath: o.docs,
      findings: facts,
    });
    await writeDocs(o.docs, section);
    log(`wrote ${o.docs}`);
  }
}

await runBench({ name: 'pipeline', usage: USAGE, parse: parseOptions, main });
