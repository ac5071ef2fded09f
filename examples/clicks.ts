/**
 * Clicks per user per 10-second event-time window.
 *
 * ```sh
 * # generated clicks (deterministic: same --seed, same clicks), 2000 a second for 10 s, into the namespace `clicks`
 * npx shardflow run examples/clicks.ts -- --source generator --rate 2000 --seconds 10 --out ns:clicks
 * npx shardflow kv scan --ns clicks --limit 5          # {"key":"u17@2026-01-01T00:00:00.000Z","value":{..."clicks":19}}
 * # clicks POSTed as NDJSON ({"user":"u1","page":"/a","at":1767225600000}; "at" optional: ingest time), unbounded
 * npx shardflow run examples/clicks.ts -- --source http --port 8480 --out clicks.ndjson
 * curl -H "Authorization: Bearer $(cat .shardflow/secret)" --data-binary @clicks.ndjson http://127.0.0.1:8480/ingest
 * npx shardflow stop clicks
 * ```
 *
 * Job arguments:
 * - `--source generator|http` (default generator).
 * - generator: `--rate N` clicks per second (default 1000), `--seconds S` or `--count N` to bound it (unbounded
 *   without), `--seed N` (default 1), `--users N` (default 100), `--splits N` (default 1: parts read in parallel,
 *   by the workers of a job on the compute tier; the same clicks whatever N). Event time starts at {@link EPOCH} and advances
 *   `1000 / rate` ms per click, with up to {@link JITTER_MS} of disorder; so windows close as the generator runs.
 * - http: `--port N` (default any free port; the URL is printed), `--log-dir DIR` (default DIR/ingest/clicks).
 * - `--out stdout|FILE.ndjson|ns:NAMESPACE` (default stdout). A namespace gets one key per user and window,
 *   `USER@WINDOW-START` (ISO), readable with `shardflow kv get/scan --ns NAMESPACE`; rewriting is idempotent.
 * - `--dir DIR`: the cluster (default: the one `shardflow run --dir` runs on, else `.shardflow`).
 *
 * Results are `{"user":"u7","start":"2026-01-01T00:00:10.000Z","end":"2026-01-01T00:00:20.000Z","clicks":21}`.
 */
import { join } from 'node:path';
import {
  ConfigError,
  count,
  defineJob,
  generator,
  ndjsonFile,
  pipeline,
  runIfMain,
  stdout,
  tumbling,
  type JobArgs,
  type Rng,
  type Sink,
  type Source,
} from '../src/index.js';
import { httpIngest, namespaceSink } from '../src/processing/connectors/index.js';

/** A click as the sources give it: `at` is its event time (ms). */
export interface Click {
  user: string;
  page: string;
  at: number;
}

/** One result: clicks of a user in a window `[start, end)`. */
export interface ClickCount {
  user: string;
  start: string;
  end: string;
  clicks: number;
}

/** Event time of the first generated click: 2026-01-01T00:00:00Z. */
export const EPOCH = Date.UTC(2026, 0, 1);
/** Generated clicks are up to this much later than their place in the sequence (so out of order). */
export const JITTER_MS = 500;
/** The window. */
export const WINDOW = '10s';
const PAGES = ['/', '/search', '/cart', '/checkout', '/help'] as const;

/** Generated click `i` (what the generator source makes, given its rng for `i`). */
export function makeClick(i: number, rng: Rng, rate: number, users: number): Click {
  const user = `u${rng.int(users)}`;
  const page = rng.pick(PAGES);
  return { user, page, at: EPOCH + Math.floor((i * 1000) / rate) + rng.int(JITTER_MS) };
}

/** The namespace key of a result. */
export function resultKey(r: ClickCount): string {
  return `${r.user}@${r.start}`;
}

function str(args: JobArgs, name: string, fallback: string): string {
  const v = args[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new ConfigError(`clicks: --${name} needs one value`);
  return v;
}

function num(args: JobArgs, name: string, fallback: number | undefined, min: number): number | undefined {
  const v = args[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n < min) throw new ConfigError(`clicks: --${name} must be a number >= ${min}, not ${JSON.stringify(v)}`);
  return n;
}

function source(args: JobArgs, dir: string): Source<unknown> {
  const kind = str(args, 'source', 'generator');
  if (kind === 'generator') {
    const rate = num(args, 'rate', 1000, 1)!;
    const seconds = num(args, 'seconds', undefined, 0);
    const total = num(args, 'count', seconds === undefined ? undefined : Math.round(rate * seconds), 0);
    const seed = num(args, 'seed', 1, 0)!;
    const users = Math.floor(num(args, 'users', 100, 1)!);
    const splits = Math.floor(num(args, 'splits', 1, 1)!);
    return generator<Click>({
      name: 'clicks-generator',
      seed,
      rate: rate / splits,
      splits,
      ...(total === undefined ? {} : { count: total }),
      make: (i, rng) => makeClick(i, rng, rate, users),
      eventTime: (_i, c) => c.at,
    });
  }
  if (kind === 'http') {
    const port = num(args, 'port', 0, 0)!;
    return httpIngest<Partial<Click>>({
      logDir: str(args, 'log-dir', join(dir, 'ingest', 'clicks')),
      clusterDir: dir,
      port,
      eventTime: (c) => (typeof c?.at === 'number' ? c.at : undefined),
    });
  }
  throw new ConfigError(`clicks: --source must be generator or http, not ${JSON.stringify(kind)}`);
}

function sink(args: JobArgs, dir: string): Sink<ClickCount> {
  const out = str(args, 'out', 'stdout');
  if (out === 'stdout' || out === '-') return stdout<ClickCount>();
  if (out.startsWith('ns:')) {
    const namespace = out.slice(3);
    if (namespace === '') throw new ConfigError('clicks: --out ns:NAME needs a namespace name');
    return namespaceSink<ClickCount>({ namespace, key: resultKey, dir });
  }
  return ndjsonFile<ClickCount>(out);
}

const job = defineJob(async (args) => {
  const dir = str(args, 'dir', process.env.SHARDFLOW_DIR ?? '.shardflow');
  const src = source(args, dir);
  const output = sink(args, dir);
  if (src.name.startsWith('http-ingest')) {
    const url = await (src as ReturnType<typeof httpIngest>).listen();
    process.stderr.write(`clicks: POST NDJSON clicks to ${url} (Authorization: Bearer $(cat ${join(dir, 'secret')}))\n`);
  }
  return pipeline('clicks')
    .from(src)
    .validate((c) => typeof (c as Partial<Click> | null)?.user === 'string', 'a click needs a string "user"')
    .timestamps((c, sourceTime) => (typeof (c as Partial<Click>).at === 'number' ? (c as Click).at : sourceTime), { outOfOrderness: '1s' })
    .keyBy((c) => (c as Click).user)
    .window(tumbling(WINDOW))
    .aggregate(count())
    .map((r): ClickCount => ({
      user: r.key,
      start: new Date(r.window.start).toISOString(),
      end: new Date(r.window.end).toISOString(),
      clicks: r.value,
    }))
    .to(output);
});

export default job;

await runIfMain(import.meta.url, job);
