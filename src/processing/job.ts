/**
 * Job modules: a file whose default export is `defineJob((args) => pipeline(...))`. A runner (the local one now,
 * `shardflow run JOB.ts` later) loads it with {@link loadJob}, builds the pipeline from the job's arguments, and runs
 * it in the mode it is told. {@link runIfMain} lets the same file run directly:
 * `node --import tsx examples/wordcount.ts --input 'books/*.txt' --out counts.ndjson [--mode batch --trigger count=1000]`.
 *
 * @example
 * ```ts
 * // jobs/squares.ts — run it: node --import tsx jobs/squares.ts --count 5 --mode batch
 * import { defineJob, pipeline, generator, stdout, runIfMain } from 'shardflow';
 * const job = defineJob((args) => pipeline('squares').from(generator({ count: Number(args.count ?? 10), make: (i) => i * i })).to(stdout()));
 * export default job;
 * await runIfMain(import.meta.url, job); // prints 0 1 4 9 16, one a line
 * ```
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { ConfigError } from '../errors/index.js';
import { Pipeline } from './pipeline.js';
import { runJob, type JobResult, type Mode, type JobRunOptions } from './runner.js';

/**
 * A job's arguments: `--name value` pairs (`--flag` alone is `true`, a repeated name a list) and the positionals in
 * `_`.
 *
 * @example
 * ```ts
 * import { parseJobArgs, type JobArgs } from 'shardflow';
 * const args: JobArgs = parseJobArgs(['extra', '--in', 'a', '--in', 'b', '--dry-run']);
 * args; // { in: ['a', 'b'], 'dry-run': true, _: ['extra'] }
 * ```
 */
export interface JobArgs {
  [name: string]: string | boolean | string[] | undefined;
  _: string[];
}

/**
 * What {@link defineJob} returns and a job file exports by default.
 *
 * @example
 * ```ts
 * import { defineJob, pipeline, fromArray, collect, type JobModule } from 'shardflow';
 * const job: JobModule = defineJob(() => pipeline('j').from(fromArray([1, 2])).to(collect<number>().sink));
 * const p = await job.build({ _: [] }); // a Pipeline
 * await p.run();
 * ```
 */
export interface JobModule {
  readonly kind: 'shardflow-job';
  build(args: JobArgs): Pipeline | Promise<Pipeline>;
}

/**
 * Declares a job: `build` turns the job's arguments into a pipeline.
 *
 * @example
 * ```ts
 * import { defineJob, pipeline, generator, stdout } from 'shardflow';
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
 * import { parseJobArgs } from 'shardflow';
 * parseJobArgs(['--out=o.ndjson']);                // { out: 'o.ndjson', _: [] }
 * parseJobArgs(['--input', 'a/*.txt', '--verbose']); // { input: 'a/*.txt', verbose: true, _: [] }
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
 * import { loadJob, parseJobArgs } from 'shardflow';
 * const job = await loadJob('jobs/squares.ts'); // the job file of the module example
 * const p = await job.build(parseJobArgs(['--count', '3']));
 * await p.run(); // prints 0 1 4
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
 * import { defineJob, runJobModule, pipeline, generator, collect } from 'shardflow';
 * const out = collect<number>();
 * const job = defineJob((args) => pipeline('n').from(generator({ count: Number(args.count), make: (i) => i })).to(out.sink));
 * const result = await runJobModule(job, ['--count', '100', '--mode', 'batch', '--trigger', 'count=10']);
 * result.metrics.sink.records; // 100
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
 * import { defineJob, runIfMain, pipeline, generator, stdout } from 'shardflow';
 * const job = defineJob(() => pipeline('n').from(generator({ count: 3, make: (i) => i })).to(stdout()));
 * export default job;
 * await runIfMain(import.meta.url, job); // runs when this file is the entry script, not when it is imported
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
