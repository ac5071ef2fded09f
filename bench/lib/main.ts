/**
 * What every benchmark script does around its measurements: parse its arguments (usage and exit 2 when they are
 * wrong, usage on --help), run, report a failure with its stack (exit 1), and — for benchmarks that start processes —
 * stop them and remove their temporary directories whatever way the run ends.
 */
import { cleanup, installSignalHandlers } from './cleanup.js';

export interface BenchScript<O> {
  /** `kv` for `npm run bench:kv`. */
  name: string;
  usage: string;
  parse(argv: string[]): O | 'help';
  main(options: O): Promise<void>;
  /** For benchmarks that start processes: what to say while stopping them (the cleanup runs, signals are handled). */
  stopping?: string;
}

/** Runs a benchmark script to its end; exits the process (not on --help). */
export async function runBench<O>(script: BenchScript<O>): Promise<void> {
  const parsed = (() => {
    try {
      return script.parse(process.argv.slice(2));
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${script.usage}\n`);
      process.exit(2);
    }
  })();
  if (parsed === 'help') {
    process.stdout.write(script.usage + '\n');
    return;
  }
  if (script.stopping !== undefined) installSignalHandlers();
  let failed = false;
  try {
    await script.main(parsed);
  } catch (err) {
    failed = true;
    process.stderr.write(`bench:${script.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  } finally {
    if (script.stopping !== undefined) {
      benchLog(script.name)(script.stopping);
      await cleanup();
    }
  }
  process.exit(failed ? 1 : 0);
}

/** The command line that reproduces this run, for the report: `npm run bench:kv -- --seconds 10`. */
export function benchCommand(name: string): string {
  const extra = process.argv.slice(2);
  return `npm run bench:${name}` + (extra.length ? ` -- ${extra.join(' ')}` : '');
}

/** Today as YYYY-MM-DD (UTC), as the reports date their runs. */
export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

/** A log on stderr, each line stamped with the benchmark and the time: `[bench:kv 12:34:56] message`. */
export function benchLog(name: string): (message: string) => void {
  return (message) => process.stderr.write(`[bench:${name} ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
