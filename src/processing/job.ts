/**
 * Job modules: a file whose default export is `defineJob((args) => pipeline(...))`. A runner (the local one now,
 * `shardflow run JOB.ts` later) loads it with {@link loadJob}, builds the pipeline from the job's arguments, and runs
 * it in the mode it is told. {@link runIfMain} lets the same file run directly:
 * `node --import tsx examples/wordcount.ts --input 'books/*.txt' --out counts.ndjson [--mode batch --trigger count=1000]`.
 *
 * @example
 * ```ts
 * // jobs/copy.ts
 * import { defineJob, pipeline, ndjson, ndjsonFile, runIfMain } from 'shardflow';
 * const job = defineJob((args) => pipeline('copy').from(ndjson(String(args.input))).to(ndjsonFile(String(args.out))));
 * export default job;
 * await runIfMain(import.meta.url, job);
 * ```
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { ConfigError } from '../errors/index.js';
import { Pipeline } from './pipeline.js';
import { runJob, type JobResult, type Mode, type JobRunOptions } from './runner.js';

/** A job's arguments: `--name value` pairs (`--flag` alone is `true`) and the positionals in `_`. */
export interface JobArgs {
  [name: string]: string | boolean | string[] | undefined;
  _: string[];
}

export interface JobModule {
  readonly kind: 'shardflow-job';
  build(args: JobArgs): Pipeline | Promise<Pipeline>;
}

/**
 * Declares a job: `build` turns the job's arguments into a pipeline.
 *
 * @example
 * ```ts
 * export default defineJob((args) => pipeline('n').from(generator({ count: Number(args.count ?? 10), make: (i) => i })).to(stdout()));
 * ```
 */
export function defineJob(build: (args: JobArgs) => Pipeline | Promise<Pipeline>): JobModule {
  if (typeof build !== 'function') throw new ConfigError('defineJob needs a function from arguments to a pipeline');
  return { kind: 'shardflow-job', build };
}

/**
 * Parses job arguments: `['--input', 'a/*.txt', '--verbose', 'x']` → `{ input: 'a/*.txt', verbose: true, _: ['x'] }`.
 *
 * @example
 * ```ts
 * parseJobArgs(['--out=o.ndjson']); // { out: 'o.ndjson', _: [] }
 * ```
 */
export function parseJobArgs(argv: string[]): JobArgs {
  // node:util parseArgs needs every option declared to take a value; a job's options are its own, so parse here.
  const out: JobArgs = { _: [] };
  const set = (name: string, value: string | boolean) => {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else out[name] = [...(Array.isArray(prev) ? prev : [String(prev)]), String(value)];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out._.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a.length === 2) {
      out._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) set(a.slice(2), argv[++i]!);
    else set(a.slice(2), true);
  }
  return out;
}

/**
 * Loads a job file and checks it: its default export must come from {@link defineJob}. A file that fails to import
 * or exports something else is refused with a {@link ConfigError} saying why.
 *
 * @example
 * ```ts
 * const job = await loadJob('examples/wordcount.ts');
 * const p = await job.build(parseJobArgs(['--input', 'books/*.txt', '--out', 'o.ndjson']));
 * ```
 */
export async function loadJob(path: string): Promise<JobModule> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError(`cannot load job ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  const job = mod.default as Partial<JobModule> | undefined;
  if (!job || job.kind !== 'shardflow-job' || typeof job.build !== 'function')
    throw new ConfigError(`job ${path} must export default defineJob((args) => pipeline(...))`, { details: { path } });
  return job as JobModule;
}

/**
 * Builds a job from `argv` and runs it in this process. `--mode stream|batch`, `--trigger SPEC` and
 * `--checkpoint-interval D` are the runner's; the rest are the job's.
 *
 * @example
 * ```ts
 * await runJobModule(job, ['--input', 'x/*.txt', '--out', 'o.ndjson', '--mode', 'batch']);
 * ```
 */
export async function runJobModule(job: JobModule, argv: string[], options: JobRunOptions = {}): Promise<JobResult> {
  const args = parseJobArgs(argv);
  const run: JobRunOptions = { ...options };
  if (args.mode !== undefined) run.mode = String(args.mode) as Mode;
  if (args.trigger !== undefined) run.trigger = String(args.trigger);
  if (args['checkpoint-interval'] !== undefined) run.checkpointInterval = String(args['checkpoint-interval']);
  delete args.mode;
  delete args.trigger;
  delete args['checkpoint-interval'];
  const p = await job.build(args);
  if (!(p instanceof Pipeline)) throw new ConfigError('a job must build a pipeline: pipeline(name).from(source)...to(sink)');
  return runJob(p.plan, run);
}

/**
 * Runs `job` with the process's arguments when `moduleUrl` is the entry script (`import.meta.url`); does nothing
 * when the module is imported. Exits non-zero with the error's message on failure.
 *
 * @example
 * ```ts
 * await runIfMain(import.meta.url, job);
 * ```
 */
export async function runIfMain(moduleUrl: string, job: JobModule): Promise<void> {
  const entry = process.argv[1];
  if (!entry || pathToFileURL(resolve(entry)).href !== moduleUrl) return;
  try {
    const result = await runJobModule(job, process.argv.slice(2));
    const m = result.metrics;
    process.stderr.write(
      `${result.job}: ${result.state}, ${m.source.records} records in, ${m.sink.records} out, ${m.deadLetters} dead letters, p99 ${m.latency.p99Ms.toFixed(1)} ms\n`,
    );
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
