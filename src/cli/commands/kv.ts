/** `shardflow kv ...`: read and write keys, scan, bulk import and export NDJSON, create namespaces. */
import type { Command } from 'commander';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { SingleBar, Presets } from 'cli-progress';
import { DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import type { ShardflowClient, BatchOp } from '../../client/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { parseCount, parseValue } from '../options.js';

interface Common {
  dir: string;
  ns: string;
}

async function withClient<T>(opts: Common, work: (client: ShardflowClient) => Promise<T>): Promise<T> {
  const { connect } = await import('../../client/index.js');
  const client = await connect({ dir: opts.dir, name: 'cli' });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

function common(cmd: Command): Command {
  return cmd
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--ns <namespace>', 'namespace', 'default');
}

const IMPORT_BATCH = 500;

/** Parses one NDJSON line of an import file; the error names the line. */
export function parseImportLine(line: string, lineNo: number): { key: string; value: unknown } {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    throw new InvalidArgumentError(`line ${lineNo}: not valid JSON`);
  }
  const r = record as { key?: unknown; value?: unknown };
  if (typeof record !== 'object' || record === null || typeof r.key !== 'string' || r.key === '' || !('value' in r)) {
    throw new InvalidArgumentError(`line ${lineNo}: expected {"key": "...", "value": ...}`);
  }
  return { key: r.key, value: r.value };
}

async function* ndjsonLines(path: string): AsyncGenerator<{ line: string; lineNo: number }> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of rl) {
    lineNo++;
    if (line.trim() !== '') yield { line, lineNo };
  }
}

export function registerKvCommands(program: Command): void {
  const kv = program.command('kv').description('read and write keys of a namespace');

  common(kv.command('get').description('print the value at KEY (exit 1 if absent)').argument('<key>'))
    .option('--with-version', 'print {value, version}')
    .action(async (key: string, opts: Common & { withVersion?: boolean }) =>
      withClient(opts, async (client) => {
        const e = await client.getEntry(opts.ns, key);
        if (!e) {
          process.stderr.write(`(not found)\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(JSON.stringify(opts.withVersion ? { value: e.value, version: e.version } : e.value) + '\n');
      }),
    );

  common(kv.command('put').description('store VALUE (JSON, or else a string) at KEY').argument('<key>').argument('<value>'))
    .option('--string', 'store VALUE as a string even if it parses as JSON')
    .option('--if-version <v>', 'write only if the key is at this version (0: only if absent)', parseCount('--if-version', 0, Number.MAX_SAFE_INTEGER))
    .action(async (key: string, value: string, opts: Common & { string?: boolean; ifVersion?: number }) =>
      withClient(opts, async (client) => {
        const version = await client.put(opts.ns, key, parseValue(value, opts.string === true), { ifVersion: opts.ifVersion });
        process.stdout.write(`OK version ${version}\n`);
      }),
    );

  common(kv.command('del').description('delete KEY').argument('<key>')).action(async (key: string, opts: Common) =>
    withClient(opts, async (client) => {
      process.stdout.write((await client.delete(opts.ns, key)) ? 'deleted\n' : '(not found)\n');
    }),
  );

  common(kv.command('scan').description('print entries as NDJSON, in key order (range) or slot order (hash)'))
    .option('--start <key>', 'first key')
    .option('--end <key>', 'stop before this key')
    .option('--limit <n>', 'most entries', parseCount('--limit', 1, Number.MAX_SAFE_INTEGER), 100)
    .action(async (opts: Common & { start?: string; end?: string; limit: number }) =>
      withClient(opts, async (client) => {
        for await (const e of client.scan(opts.ns, { start: opts.start, end: opts.end, limit: opts.limit })) {
          process.stdout.write(JSON.stringify({ key: e.key, value: e.value }) + '\n');
        }
      }),
    );

  common(kv.command('import').description('bulk load NDJSON lines {"key": "...", "value": ...}').argument('<file>'))
    .option('--quiet', 'no progress display')
    .action(async (file: string, opts: Common & { quiet?: boolean }) => {
      // Check the whole file first: a bad line anywhere means nothing is written.
      let total = 0;
      for await (const { line, lineNo } of ndjsonLines(file)) {
        parseImportLine(line, lineNo);
        total++;
      }
      await withClient(opts, async (client) => {
        await client.createNamespace(opts.ns).catch(() => undefined);
        const bar = opts.quiet || !process.stderr.isTTY ? undefined : new SingleBar({ etaBuffer: 50 }, Presets.shades_classic);
        bar?.start(total, 0);
        let done = 0;
        let ops: BatchOp[] = [];
        const inFlight = new Set<Promise<void>>();
        const flush = async () => {
          const batch = ops;
          ops = [];
          const p = client.batch(opts.ns, batch).then(() => {
            done += batch.length;
            bar?.update(done);
          });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p)).catch(() => undefined);
          if (inFlight.size >= 8) await Promise.race(inFlight);
        };
        for await (const { line, lineNo } of ndjsonLines(file)) {
          const { key, value } = parseImportLine(line, lineNo);
          ops.push({ op: 'put', key, value });
          if (ops.length >= IMPORT_BATCH) await flush();
        }
        if (ops.length > 0) await flush();
        await Promise.all(inFlight);
        bar?.stop();
        process.stdout.write(`imported ${done} entries into ${opts.ns}\n`);
      });
    });

  common(kv.command('export').description('write every entry as NDJSON to FILE (or stdout), from one point-in-time snapshot per node').argument('[file]')).action(
    async (file: string | undefined, opts: Common) =>
      withClient(opts, async (client) => {
        const out = file ? createWriteStream(file) : process.stdout;
        let n = 0;
        for await (const e of client.scan(opts.ns, { consistent: true })) {
          if (!out.write(JSON.stringify({ key: e.key, value: e.value }) + '\n')) await once(out, 'drain');
          n++;
        }
        if (file) {
          await new Promise<void>((resolve) => out.end(() => resolve()));
          process.stderr.write(`exported ${n} entries to ${file} (${(await stat(file)).size} bytes)\n`);
        }
      }),
  );

  kv.command('create-ns')
    .description('create a namespace with a partitioning scheme')
    .argument('<name>')
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .option('--scheme <scheme>', 'hash (slots) or range (ordered key ranges)', 'hash')
    .option('--split-bytes <n>', 'range: split a range past this size', parseCount('--split-bytes', 1024, Number.MAX_SAFE_INTEGER))
    .option('--copies <n>', 'copies of each partition (slot or range) on distinct storage nodes; writes need a majority (default: 3 with 3+ storage nodes, else 1)', parseCount('--copies', 1, 7))
    .option('--no-auto-merge', 'range: merge small neighbouring ranges on different nodes only when `rebalance` runs')
    .action(async (name: string, opts: { dir: string; scheme: string; splitBytes?: number; copies?: number; autoMerge: boolean }) => {
      if (opts.scheme !== 'hash' && opts.scheme !== 'range') {
        throw new InvalidArgumentError(`--scheme must be hash or range, not ${JSON.stringify(opts.scheme)}`);
      }
      if (!opts.autoMerge && opts.scheme !== 'range') throw new InvalidArgumentError('--no-auto-merge is for range namespaces (--scheme range)');
      await withClient({ dir: opts.dir, ns: name }, async (client) => {
        const t = await client.createNamespace(name, {
          scheme: opts.scheme as 'hash' | 'range',
          splitBytes: opts.splitBytes,
          copies: opts.copies,
          ...(opts.autoMerge ? {} : { autoMerge: false }),
        });
        const copies = t.copies > 1 ? `, ${t.copies} copies` : '';
        process.stdout.write(`namespace ${t.name}: ${t.scheme}, ${t.partitions().length} partitions${copies}\n`);
      });
    });
}
