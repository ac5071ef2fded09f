/**
 * `shardflow run JOB.ts`, `shardflow jobs`, `shardflow stop JOB`: processing jobs on the local cluster.
 *
 * `run` loads a job module (its default export is `defineJob(...)`), builds the pipeline from the arguments after
 * `--`, registers the job in the coordinator (processing/job-registry.ts) and runs it with the local runner in this
 * process, with a live view on stderr (records in/out per second, end-to-end latency p50/p99, backlog, checkpoint
 * age): redrawn in place on a terminal, a line every few seconds otherwise. A job file that does not load, a bad
 * trigger or mode, or arguments the job refuses are refused (exit 2) before anything starts. It exits 0 when a
 * bounded job finishes or the job is stopped (`shardflow stop`, or Ctrl-C: a first one stops after a final
 * checkpoint, a second one kills).
 *
 * The job's build function sees the cluster directory as `process.env.SHARDFLOW_DIR` (absolute), for connectors
 * that need the cluster (a namespace sink, HTTP ingest's secret).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { ConfigError, InvalidArgumentError, ShardflowError } from '../../errors/index.js';
import type { JobRegistration, LiveFigures, RunningJobRecord, RunningJobState } from '../../processing/job-registry.js';
import type { MetricsSnapshot } from '../../processing/metrics.js';

interface RunFlags {
  mode: string;
  trigger?: string;
  checkpointInterval: string;
  id?: string;
  dir: string;
  quiet?: boolean;
  reportEvery: string;
  state: string;
  onCluster?: boolean;
}

const NON_TTY_REPORT = '5s';

export function registerRunCommands(program: Command): void {
  program
    .command('run')
    .description('run a job module in this process on the local cluster, with a live view (JOB-ARGS after --)')
    .argument('<job>', 'the job file: its default export is defineJob((args) => pipeline(...))')
    .argument('[job-args...]', "the job's own arguments, after --")
    .option('--mode <mode>', 'stream (each record as it arrives) or batch (groups, processed when a trigger fires)', 'stream')
    .option('--trigger <spec>', 'batch mode: when a group is processed, whichever first, e.g. interval=5s,count=1000,bytes=1mb')
    .option('--checkpoint-interval <duration>', 'how often to checkpoint (e.g. 10s)', '10s')
    .option('--id <id>', 'the job id in `shardflow jobs` and `shardflow stop` (default: the pipeline name)')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--report-every <duration>', 'not on a terminal: a status line this often', NON_TTY_REPORT)
    .option('--quiet', 'no live view, only the final line')
    .option(
      '--on-cluster',
      'submit the job to the compute tier instead: each compute node runs a worker of the job on its share of the ' +
        'input and keys, with state in the storage tier; if a node dies the job restarts from its last checkpoint on ' +
        'the nodes left, and it rescales when nodes join or leave (see `shardflow jobs`)',
    )
    .option(
      '--state <where>',
      'memory (default), or storage: keyed state and checkpoints in the storage tier (namespace job.<id>.<pipeline>); ' +
        'running the same --id again resumes from its last checkpoint, exactly-once on state',
      'memory',
    )
    .addHelpText(
      'after',
      `
The job's own arguments go after --, e.g.
  shardflow run examples/wordcount.ts --mode batch --trigger count=10k -- --input 'books/*.txt' --out counts.ndjson
  shardflow run examples/clicks.ts -- --source generator --rate 2000 --seconds 10 --out ns:clicks
The job's build function finds the cluster directory in process.env.SHARDFLOW_DIR.`,
    )
    .action(async (file: string, jobArgs: string[], opts: RunFlags) => runCommand(file, jobArgs, opts));

  program
    .command('jobs')
    .description('list the jobs running on the cluster (from any terminal)')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--json', 'print the records as JSON')
    .action(async (opts: { dir: string; json?: boolean }) => {
      const { openCoordinator } = await import('../../client/connect.js');
      const { listJobs } = await import('../../processing/job-registry.js');
      const { coordinator } = await openCoordinator({ dir: opts.dir });
      try {
        const jobs = await listJobs(coordinator);
        if (opts.json) {
          process.stdout.write(JSON.stringify({ jobs }, null, 2) + '\n');
          return;
        }
        process.stdout.write(jobsTable(jobs));
      } finally {
        await coordinator.close();
      }
    });

  program
    .command('stop')
    .description('stop a running job: it stops reading, takes a final checkpoint and exits; waits for that')
    .argument('<job>', 'the job id (see shardflow jobs)')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--timeout <duration>', 'how long to wait for the job to stop', '60s')
    .action(async (id: string, opts: { dir: string; timeout: string }) => {
      const { parseDuration } = await import('../../processing/units.js');
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const { openCoordinator } = await import('../../client/connect.js');
      const { requestStop, checkJobId } = await import('../../processing/job-registry.js');
      checkJobId(id);
      const { coordinator } = await openCoordinator({ dir: opts.dir });
      try {
        const last = await requestStop(coordinator, id, {
          timeoutMs,
          onStopping: (r) => process.stderr.write(`stopping ${id} (pid ${r.pid}): final checkpoint...\n`),
        });
        const m = last.live;
        const figures = m ? `, ${m.recordsIn} records in, ${m.recordsOut} out` : '';
        const ckpt = last.checkpointEpoch !== undefined ? ` after a final checkpoint (epoch ${last.checkpointEpoch})` : '';
        if (last.state === 'stopped') process.stdout.write(`stopped ${id}${ckpt}${figures}\n`);
        else if (last.state === 'finished') process.stdout.write(`${id} had finished already${figures}\n`);
        else if (last.state === 'failed') {
          process.stdout.write(`${id} failed${last.error ? `: ${last.error}` : ''}\n`);
          process.exitCode = 1;
        } else {
          process.stdout.write(`${id} (pid ${last.pid}) ended without a final record: its process died?\n`);
          process.exitCode = 1;
        }
      } finally {
        await coordinator.close();
      }
    });
}

async function runCommand(file: string, jobArgs: string[], opts: RunFlags): Promise<void> {
  const { loadJob, parseJobArgs } = await import('../../processing/job.js');
  const { Pipeline } = await import('../../processing/pipeline.js');
  const { parseTrigger } = await import('../../processing/triggers.js');
  const { parseDuration } = await import('../../processing/units.js');

  // Everything that can be refused is checked before anything starts.
  if (opts.state !== 'memory' && opts.state !== 'storage')
    throw new InvalidArgumentError(`--state must be memory or storage, not ${JSON.stringify(opts.state)}`);
  if (opts.mode !== 'stream' && opts.mode !== 'batch')
    throw new InvalidArgumentError(`--mode must be stream or batch, not ${JSON.stringify(opts.mode)}`);
  const mode = opts.mode;
  if (opts.trigger !== undefined) parseTrigger(opts.trigger);
  const checkpointMs = parseDuration(opts.checkpointInterval, '--checkpoint-interval');
  const reportMs = parseDuration(opts.reportEvery, '--report-every');
  if (opts.trigger !== undefined && mode === 'stream')
    process.stderr.write('note: --trigger applies to --mode batch; in stream mode each record flows through as it arrives\n');
  const path = resolve(file);
  const job = await loadJob(path);
  process.env.SHARDFLOW_DIR = resolve(opts.dir);
  let pipeline: unknown;
  try {
    pipeline = await job.build(parseJobArgs(jobArgs));
  } catch (err) {
    if (err instanceof ShardflowError) throw err;
    throw new ConfigError(`job ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!(pipeline instanceof Pipeline))
    throw new ConfigError(`job ${file} must build a pipeline: pipeline(name).from(source)...to(sink)`);
  const plan = pipeline.plan;

  const { checkJobId, JobRegistration: Registry, liveFigures } = await import('../../processing/job-registry.js');
  const id = checkJobId(opts.id ?? plan.name);
  const { openCoordinator } = await import('../../client/connect.js');
  if (opts.onCluster) {
    const { submitJob } = await import('../../processing/job-host.js');
    const { coordinator: c } = await openCoordinator({ dir: opts.dir });
    try {
      await submitJob(c, {
        id,
        file: path,
        args: jobArgs,
        mode,
        ...(opts.trigger !== undefined ? { trigger: opts.trigger } : {}),
        checkpointInterval: opts.checkpointInterval,
      });
    } finally {
      await c.close();
    }
    process.stdout.write(`submitted ${id}: a compute node runs it; see \`shardflow jobs\`, stop it with \`shardflow stop ${id}\`\n`);
    return;
  }
  const { startJob } = await import('../../processing/runner.js');
  const { coordinator } = await openCoordinator({ dir: opts.dir });
  let registration: JobRegistration | undefined;
  let stateClient: { close(): Promise<void> } | undefined;
  let stateBackend: import('../../processing/state.js').StateBackend | undefined;
  try {
    registration = await Registry.register(coordinator, { id, file: path, mode, trigger: opts.trigger ?? null });
    if (opts.state === 'storage') {
      const { connect } = await import('../../client/index.js');
      const { StorageStateBackend } = await import('../../processing/storage-state.js');
      const client = await connect({ dir: opts.dir, name: `job:${id}` });
      stateClient = client;
      stateBackend = new StorageStateBackend(client, { prefix: `job.${id}.` });
    }
    const handle = startJob(plan, {
      ...(stateBackend ? { state: stateBackend } : {}),
      mode,
      ...(opts.trigger !== undefined ? { trigger: opts.trigger } : {}),
      checkpointInterval: checkpointMs > 0 ? checkpointMs : false,
    });
    const reg = registration;
    let state: RunningJobState = 'running';
    void reg.update({ state });
    handle.on('checkpoint', (c: { epoch: number }) => void reg.update({ checkpointEpoch: c.epoch }));

    const view = new LiveView(id, mode, opts.quiet === true, reportMs, plan.sink.name === 'stdout');
    let prev: MetricsSnapshot | undefined;
    const tick = () => {
      const snap = handle.metrics.snapshot();
      const live = liveFigures(snap, prev);
      prev = snap;
      view.render(state, live);
      void reg.update({ live, metrics: snap }).catch(() => undefined);
    };
    const timer = setInterval(tick, 1000);

    const stop = (why: string) => {
      if (state !== 'running') return;
      state = 'stopping';
      view.note(`${why}: stopping after a final checkpoint...`);
      void reg.update({ state }).catch(() => undefined);
      void handle.stop().catch(() => undefined);
    };
    reg.onStopRequest((req) => stop(`stop requested by ${req.by}`));
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) stop(signal);
      else {
        view.note(`${signal} again: killing (no final checkpoint)`);
        void handle.kill().catch(() => undefined);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    try {
      const result = await handle.done;
      const live = liveFigures(result.metrics, undefined);
      const final: RunningJobState = result.state === 'killed' ? 'failed' : result.state;
      view.done(result.state, live, result.checkpoint?.epoch);
      await reg.close({
        state: final,
        live,
        metrics: result.metrics,
        ...(result.checkpoint ? { checkpointEpoch: result.checkpoint.epoch } : {}),
        ...(result.state === 'killed' ? { error: 'killed' } : {}),
      });
      if (result.state === 'killed') process.exitCode = 1;
    } catch (err) {
      view.done('failed', liveFigures(handle.metrics.snapshot(), undefined), undefined);
      await reg.close({ state: 'failed', error: (err as Error).message });
      throw err;
    } finally {
      clearInterval(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    await registration?.close().catch(() => undefined);
    await stateClient?.close().catch(() => undefined);
    await coordinator.close().catch(() => undefined);
  }
}

/** The live view on stderr: redrawn in place on a terminal, a line every `reportMs` otherwise. */
class LiveView {
  private readonly redraw: boolean;
  private drawn = 0;
  private lastLine = 0;

  constructor(
    private readonly id: string,
    private readonly mode: string,
    private readonly quiet: boolean,
    private readonly reportMs: number,
    sinkIsStdout: boolean,
  ) {
    // Redrawing in place would overwrite the job's own lines when it writes to the same terminal.
    this.redraw = process.stderr.isTTY === true && !(sinkIsStdout && process.stdout.isTTY === true);
  }

  render(state: RunningJobState, m: LiveFigures): void {
    if (this.quiet) return;
    if (this.redraw) {
      const lines = [
        `${this.id}  ${this.mode}  ${state}  ${seconds(m.elapsedMs)}`,
        `  in  ${rate(m.inPerSec)}/s  (${m.recordsIn} total)    out  ${rate(m.outPerSec)}/s  (${m.recordsOut} total)`,
        `  latency ${latency(m, '  ')}    backlog ${m.backlog}${m.waiting ? ' (backpressure)' : ''}    checkpoint ${age(m)}`,
        `  dead letters ${m.deadLetters}  late ${m.late}`,
      ];
      this.clear();
      process.stderr.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
      this.drawn = lines.length;
      return;
    }
    if (m.elapsedMs - this.lastLine < this.reportMs) return;
    this.lastLine = m.elapsedMs;
    process.stderr.write(`${this.id}: ${state} ${seconds(m.elapsedMs)}, ${line(m)}\n`);
  }

  note(text: string): void {
    this.clear();
    process.stderr.write(`${this.id}: ${text}\n`);
  }

  done(state: string, m: LiveFigures, epoch: number | undefined): void {
    this.clear();
    const ckpt = epoch !== undefined ? `, last checkpoint epoch ${epoch}` : '';
    process.stderr.write(
      `${this.id}: ${state} after ${seconds(m.elapsedMs)}: ${m.recordsIn} records in, ${m.recordsOut} out, ${m.deadLetters} dead letters, ${m.late} late, latency ${latency(m, ' ')}${ckpt}\n`,
    );
  }

  private clear(): void {
    if (this.drawn > 0) process.stderr.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }
}

function line(m: LiveFigures): string {
  return `in ${rate(m.inPerSec)}/s (${m.recordsIn}), out ${rate(m.outPerSec)}/s (${m.recordsOut}), latency ${latency(m, ' ')}, backlog ${m.backlog}${m.waiting ? ' (backpressure)' : ''}, checkpoint ${age(m)}`;
}

function latency(m: LiveFigures, sep: string): string {
  return m.latencySamples > 0 ? `p50 ${ms(m.p50Ms)}${sep}p99 ${ms(m.p99Ms)}` : `p50 -${sep}p99 -`;
}

function rate(n: number): string {
  return n >= 100 ? Math.round(n).toString() : n.toFixed(1);
}

function ms(n: number): string {
  return n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`;
}

function seconds(n: number): string {
  return `${(n / 1000).toFixed(1)}s`;
}

function age(m: LiveFigures): string {
  return m.checkpointAgeMs === null ? 'none yet' : `${seconds(m.checkpointAgeMs)} ago (epoch ${m.checkpointEpoch})`;
}

/** `shardflow jobs` as a table. */
export function jobsTable(jobs: RunningJobRecord[]): string {
  if (jobs.length === 0) return 'no jobs running\n';
  const rows = [['JOB', 'STATE', 'MODE', 'PID', 'UPTIME', 'IN/S', 'OUT/S', 'IN', 'OUT', 'P99', 'CHECKPOINT', 'FILE']];
  for (const j of jobs) {
    const m = j.live;
    rows.push([
      j.id,
      j.state,
      j.mode + (j.trigger ? ` (${j.trigger})` : ''),
      String(j.pid),
      seconds(Date.now() - Date.parse(j.startedAt)),
      m ? rate(m.inPerSec) : '-',
      m ? rate(m.outPerSec) : '-',
      m ? String(m.recordsIn) : '-',
      m ? String(m.recordsOut) : '-',
      m && m.latencySamples > 0 ? ms(m.p99Ms) : '-',
      m && m.checkpointAgeMs !== null ? `${seconds(m.checkpointAgeMs)} ago` : '-',
      j.file,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}
