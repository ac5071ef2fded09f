/**
 * `shardflow demo`: the README's first command. Starts a local cluster, loads sample data, reads every key back,
 * prints the cluster status, and stops the cluster (unless --keep). Later issues extend the same demo.
 */
import type { Command } from 'commander';
import { rm } from 'node:fs/promises';
import { SingleBar, Presets } from 'cli-progress';
import { InternalError } from '../../errors/index.js';
import { parseCount } from '../options.js';
import { fileURLToPath } from 'node:url';

/** The example services the demo's compute nodes host. */
const DEMO_SERVICES = fileURLToPath(new URL('../../../examples/services.ts', import.meta.url));
/** The example stream job the demo runs while storage scales out. */
const DEMO_CLICKS_JOB = fileURLToPath(new URL('../../../examples/clicks.ts', import.meta.url));
const DEMO_CLICKS = 40_000;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('start a local cluster, load sample data, read it back, print the status')
    .option('--dir <dir>', 'cluster directory for the demo', '.shardflow-demo')
    .option('--keys <n>', 'sample keys to load', parseCount('--keys', 1, 10_000_000), 20_000)
    .option('--keep', 'leave the cluster running afterwards')
    .action(async (opts: { dir: string; keys: number; keep?: boolean }) => {
      const { startLocalCluster, stopLocalCluster } = await import('../../cluster/local-cluster.js');
      const { clusterStatus, formatStatus } = await import('../../cluster/status.js');
      const { connect } = await import('../../client/index.js');
      const { scaleLocalStorage } = await import('../../cluster/rebalance-local.js');
      const say = (line: string) => process.stdout.write(line + '\n');
      await stopLocalCluster(opts.dir).catch(() => undefined); // a demo left running with --keep
      await rm(opts.dir, { recursive: true, force: true });
      say(`1. starting a local cluster in ${opts.dir}: 3 storage nodes, 2 compute nodes, embedded coordinator`);
      const t0 = Date.now();
      await startLocalCluster({ dir: opts.dir, storage: 3, compute: 2, services: DEMO_SERVICES });
      say(`   ready in ${Date.now() - t0} ms`);
      const client = await connect({ dir: opts.dir, name: 'demo' });
      try {
        say(`2. loading ${opts.keys} sample keys into namespace "default" (hash slots) and "events" (key ranges)`);
        await client.createNamespace('events', { scheme: 'range', splitBytes: 64 * 1024 });
        const bar = process.stdout.isTTY ? new SingleBar({}, Presets.shades_classic) : undefined;
        bar?.start(opts.keys * 2, 0);
        const t1 = Date.now();
        const chunk = 500;
        let done = 0;
        for (let i = 0; i < opts.keys; i += chunk) {
          const n = Math.min(chunk, opts.keys - i);
          const users = Array.from({ length: n }, (_, j) => ({ op: 'put' as const, key: `user:${i + j}`, value: { id: i + j, name: `user ${i + j}` } }));
          const events = Array.from({ length: n }, (_, j) => ({ op: 'put' as const, key: `event:${String(i + j).padStart(8, '0')}`, value: { user: i + j, at: t1 + i + j } }));
          await Promise.all([client.batch('default', users), client.batch('events', events)]);
          done += 2 * n;
          bar?.update(done);
        }
        bar?.stop();
        const loadMs = Date.now() - t1;
        say(`   wrote ${done} keys in ${loadMs} ms (${Math.round((done / loadMs) * 1000)} keys/s)`);

        say('3. reading every key back');
        const t2 = Date.now();
        let bad = 0;
        const reads = [];
        for (let i = 0; i < opts.keys; i++) {
          reads.push(client.get<{ id: number }>('default', `user:${i}`).then((v) => { if (v?.id !== i) bad++; }));
          if (reads.length >= 1000) await Promise.all(reads.splice(0));
        }
        await Promise.all(reads);
        let scanned = 0;
        let previous = '';
        for await (const e of client.scan('events', {})) {
          if (e.key <= previous) bad++;
          previous = e.key;
          scanned++;
        }
        if (bad > 0 || scanned !== opts.keys) throw new InternalError(`read back failed: ${bad} wrong values, ${scanned}/${opts.keys} events scanned`);
        say(`   ${opts.keys} gets and an ordered scan of ${scanned} events, all correct, in ${Date.now() - t2} ms`);
        const ranges = client.catalog.table('events').partitions().length;
        say(`   "events" has split itself into ${ranges} key ranges as it grew`);

        say('4. calling services on the stateless compute nodes (examples/services.ts)');
        const t3 = Date.now();
        const calls = 2000;
        const served = await Promise.all(Array.from({ length: calls }, () => client.call<string>('whoami')));
        const per = new Map<string, number>();
        for (const id of served) per.set(id, (per.get(id) ?? 0) + 1);
        say(`   ${calls} calls round-robin in ${Date.now() - t3} ms: ${[...per].map(([id, n]) => `${id} served ${n}`).join(', ')}`);
        const words = await client.call<Record<string, number>>('wordcount', 'the quick fox and the lazy dog and the cat');
        say(`   wordcount on any instance: the=${words.the}, and=${words.and}, fox=${words.fox}`);

        say('5. scaling storage out to 4 nodes while a writer keeps writing and a stream job on the compute tier counts');
        say('   clicks into the storage tier (examples/clicks.ts, stream mode, one worker per compute node); partitions move online');
        // The job is submitted as `shardflow run --on-cluster` does; its results land in namespace "clicks", made now on
        // the 3 nodes so that its partitions move too while the job writes them.
        await client.createNamespace('clicks', { scheme: 'hash' });
        const { submitJob } = await import('../../processing/job-host.js');
        const { jobKey, jobSpecKey } = await import('../../coordination/index.js');
        const workers = new Set<string>();
        let jobEnded!: () => void;
        let jobFailed!: (err: Error) => void;
        const jobDone = new Promise<void>((resolve, reject) => {
          jobEnded = resolve;
          jobFailed = reject;
        });
        jobDone.catch(() => undefined); // awaited below, after the scale-out; a failure meanwhile must not go unhandled
        const jobTimer = setTimeout(() => jobFailed(new InternalError('the clicks job did not end within 3 minutes')), 180_000);
        const jobWatch = await client.coordinator.watch(jobKey('demo-clicks'), (e) => {
          if (e.type !== 'put' || !e.value) return;
          const record = JSON.parse(e.value) as { workers?: string[]; state?: string; error?: string };
          for (const w of record.workers ?? []) workers.add(w);
          if (record.state === 'failed') jobFailed(new InternalError(`the clicks job failed: ${record.error ?? 'no reason given'}`));
        });
        const specWatch = await client.coordinator.watch(jobSpecKey('demo-clicks'), (e) => e.type === 'delete' && jobEnded());
        await submitJob(client.coordinator, {
          id: 'demo-clicks',
          file: DEMO_CLICKS_JOB,
          args: ['--source', 'generator', '--splits', '2', '--rate', '4000', '--count', String(DEMO_CLICKS), '--out', 'ns:clicks'],
          checkpointInterval: '1s',
        });
        const acked = new Map<string, number>();
        let writing = true;
        const writers = Array.from({ length: 8 }, async (_, w) => {
          for (let round = 1; writing; round++) {
            const key = `live:${w}:${round % 500}`;
            await client.put('default', key, round);
            acked.set(key, round);
          }
        });
        const t4 = Date.now();
        await scaleLocalStorage(opts.dir, 4, { concurrency: 8 });
        writing = false;
        await Promise.all(writers);
        let lost = 0;
        for (const [key, value] of acked) if ((await client.get('default', key)) !== value) lost++;
        if (lost > 0) throw new InternalError(`${lost} acknowledged writes are missing after the scale-out`);
        say(`   scaled out in ${Date.now() - t4} ms; ${acked.size} keys written meanwhile, every acknowledged write is there`);
        await jobDone.finally(() => clearTimeout(jobTimer));
        await jobWatch.close();
        await specWatch.close();
        let counted = 0;
        let windows = 0;
        for await (const e of client.scan('clicks', {})) {
          counted += (e.value as { clicks: number }).clicks;
          windows++;
        }
        if (counted !== DEMO_CLICKS) throw new InternalError(`the clicks job counted ${counted} clicks, not ${DEMO_CLICKS}`);
        say(
          `   the stream job (workers on ${[...workers].sort().join(', ')}) counted all ${DEMO_CLICKS} clicks into ${windows} user windows ` +
            'while partitions moved (shardflow kv scan --ns clicks)',
        );
      } finally {
        await client.close();
      }
      say('6. cluster status');
      say(formatStatus(await clusterStatus(opts.dir)));
      if (opts.keep) {
        say(`\nthe cluster keeps running: try  npx shardflow status --dir ${opts.dir}  and stop it with  npx shardflow down --dir ${opts.dir}`);
        return;
      }
      await stopLocalCluster(opts.dir);
      say('7. cluster stopped (data kept in ' + opts.dir + '; run with --keep to leave it running)');
    });
}
