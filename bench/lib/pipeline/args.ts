/** Command-line options of `npm run bench:pipeline` (after `--`: `npm run bench:pipeline -- --repeats 1`). */
import { parseArgs } from 'node:util';
import { parseDuration } from '../../../src/processing/index.js';
import { COMMON_ARGS, docsPath, positive } from '../options.js';

export interface PipelineBenchOptions {
  repeats: number;
  /** Measured seconds of each unpaced (throughput) run. */
  throughputSeconds: number;
  /** Measured seconds of each paced (latency) run. */
  latencySeconds: number;
  /** Unmeasured seconds at the start of every run. */
  warmup: number;
  keys: number;
  windowMs: number;
  depths: number[];
  /** Batch-mode trigger specs, each measured as its own row. */
  triggers: string[];
  /** Include the RxJS reference. */
  rx: boolean;
  /** Paced load as a fraction of the row's maximum. */
  loadFraction: number;
  docs: string | undefined;
  svg: string | undefined;
}

export const USAGE = `usage: npm run bench:pipeline -- [options]

  --repeats N           runs per row; medians are quoted (default 3)
  --seconds S           measured seconds of each unpaced throughput run (default 2.5)
  --latency-seconds S   measured seconds of each paced latency run (default 4)
  --warmup S            unmeasured seconds at the start of every run (default 1)
  --keys N              keys of the first stage (default 1000)
  --window D            tumbling event-time window (default 250ms: four firings a second, so a paced run has enough of them for a p99)
  --depths LIST         chained keyed stages, comma-separated (default 1,3)
  --triggers LIST       batch triggers, separated by ';' (default interval=10ms;interval=100ms;interval=1s;count=100;count=1000)
  --no-rx               skip the RxJS reference
  --docs FILE           markdown file whose bench:pipeline section is replaced (default docs/benchmarks.md)
  --svg FILE            latency chart (default docs/pipeline-latency.svg, next to --docs)
  --no-docs             print only (no docs section, no chart)
  --help`;

export function parseOptions(argv: string[]): PipelineBenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_ARGS,
      seconds: { type: 'string' },
      'latency-seconds': { type: 'string' },
      keys: { type: 'string' },
      window: { type: 'string' },
      depths: { type: 'string' },
      triggers: { type: 'string' },
      'no-rx': { type: 'boolean' },
      svg: { type: 'string' },
    },
  });
  if (values.help) return 'help';
  const docs = docsPath(values);
  return {
    repeats: positive('repeats', values.repeats, 3),
    throughputSeconds: positive('seconds', values.seconds, 2.5, false),
    latencySeconds: positive('latency-seconds', values['latency-seconds'], 4, false),
    warmup: positive('warmup', values.warmup, 1, false),
    keys: positive('keys', values.keys, 1000),
    windowMs: parseDuration(values.window ?? '250ms', '--window'),
    depths: (values.depths ?? '1,3').split(',').map((s) => positive('depths', s.trim(), 1)),
    triggers: (values.triggers ?? 'interval=10ms;interval=100ms;interval=1s;count=100;count=1000')
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean),
    rx: !values['no-rx'],
    loadFraction: 0.5,
    docs,
    svg: docs === undefined ? undefined : (values.svg ?? docs.replace(/[^/]*$/, 'pipeline-latency.svg')),
  };
}
