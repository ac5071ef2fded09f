/**
 * `shardflow run`, `jobs` and `stop` as a user runs them: the real binary, a real local cluster directory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { openCoordinator } from '../../src/client/connect.js';
import type { Coordinator } from '../../src/coordination/index.js';
import { listJobs, type RunningJobRecord } from '../../src/processing/job-registry.js';
import type { JobStatus } from '../../src/cluster/status-jobs.js';
import { EPOCH, resultKey, type ClickCount } from '../../examples/clicks.js';
import { startTestCluster, type TestCluster } from '../harness/cluster.js';
import { awaitJob, awaitJobGone, expectedClicks } from '../harness/jobs.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_PATH, ...args], { timeout: timeoutMs, cwd: REPO }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const REPO = join(import.meta.dirname, '../..');
let root: string;
let cluster: TestCluster;
let coordinator: Coordinator;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sf-run-'));
  cluster = await startTestCluster({ storage: 1 });
  ({ coordinator } = await openCoordinator({ dir: cluster.dir }));
});
afterAll(async () => {
  await coordinator?.close();
  await cluster?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('shardflow run: refusals', () => {
  it('refuses a job file that does not load, a bad trigger, a bad mode or bad job arguments, with exit code 2, before starting', async () => {
    await writeFile(join(root, 'broken.mjs'), 'throw new Error("boom at load");\n');
    await writeFile(join(root, 'not-a-job.mjs'), 'export default 42;\n');
    // No cluster in this directory: a command that got as far as connecting would fail with CLUSTER_NOT_RUNNING (1).
    const none = join(root, 'no-cluster');
    const wc = ['examples/wordcount.ts', '--dir', none];
    const cases: [string[], RegExp][] = [
      [['run', join(root, 'broken.mjs'), '--dir', none], /CONFIG_ERROR.*cannot load job .*broken\.mjs: boom at load/],
      [['run', join(root, 'not-a-job.mjs'), '--dir', none], /must export default defineJob/],
      [[...wc, '--mode', 'batch', '--trigger', 'size=1mb', '--', '--input', 'x', '--out', 'y'], /unknown trigger "size"/],
      [[...wc, '--mode', 'fast'], /--mode must be stream or batch/],
      [wc, /wordcount needs --input GLOB and --out FILE/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args[0] === 'run' ? args : ['run', ...args])));
    results.forEach((r, i) => {
      expect(r.code, `${cases[i]![0].join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stderr).not.toMatch(/CLUSTER_NOT_RUNNING|at .*\.ts:\d+/); // refused before connecting; no stack
    });
  });
});

describe('shardflow run: jobs on a local cluster', () => {
  it('runs wordcount end to end in batch mode and exits 0 when the input ends', async () => {
    const input = join(root, 'books');
    await import('node:fs/promises').then((fs) => fs.mkdir(input, { recursive: true }));
    await writeFile(join(input, 'a.txt'), 'The cat, the HAT — and the café!\n');
    await writeFile(join(input, 'b.txt'), 'Καλημέρα κόσμε, ΚΑΛΗΜΈΡΑ\n42 is 42\nthe end\n');
    const out = join(root, 'counts.ndjson');
    const r = await run(['run', 'examples/wordcount.ts', '--mode', 'batch', '--trigger', 'count=2', '--dir', cluster.dir, '--', '--input', join(input, '*.txt'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wordcount: finished after .*: 4 records in, 10 out, 0 dead letters/);
    const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { word: string; count: number });
    expect(lines).toContainEqual({ word: 'the', count: 4 });
    expect(lines).toContainEqual({ word: 'καλημέρα', count: 2 });
    expect(lines).toContainEqual({ word: '42', count: 2 });
    expect(lines.map((l) => l.word)).toEqual([...lines.map((l) => l.word)].sort());
    expect(lines.reduce((a, l) => a + l.count, 0)).toBe(15);
    expect(await listJobs(coordinator)).toEqual([]); // a finished job leaves no record
  });

  it('runs clicks from the generator into a namespace, readable with the client', async () => {
    const rate = 2000;
    const seconds = 2;
    const users = 20;
    const r = await run([
      'run', 'examples/clicks.ts', '--dir', cluster.dir, '--',
      '--source', 'generator', '--rate', String(rate), '--seconds', String(seconds), '--users', String(users), '--seed', '7', '--out', 'ns:clicks-test',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/clicks: finished after .*: 4000 records in/);

    // The reference: the same generated clicks, counted per user and 10-second window the plain way.
    const expected = expectedClicks(7, rate * seconds, rate, users);
    const client = await cluster.client();
    const got = new Map<string, number>();
    for await (const e of client.scan('clicks-test')) {
      const v = e.value as ClickCount;
      expect(e.key).toBe(resultKey(v));
      expect(Date.parse(v.end) - Date.parse(v.start)).toBe(10_000);
      got.set(e.key, v.clicks);
    }
    expect(got).toEqual(expected);
    expect(got.size).toBeGreaterThan(0);
    expect([...got.keys()].every((k) => k.endsWith(`@${new Date(EPOCH).toISOString()}`))).toBe(true);
  });

  it('lists a running job (table and JSON) and stops it after a final checkpoint', async () => {
    const out = join(root, 'live.ndjson');
    const child = spawn(
      process.execPath,
      [BIN_PATH, 'run', 'examples/clicks.ts', '--id', 'clicks-live', '--checkpoint-interval', '500ms', '--dir', cluster.dir, '--', '--rate', '1000', '--out', out],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Wait until it runs and has checkpointed once.
      const job = await awaitJob(coordinator, 'clicks-live', (j) => j.state === 'running' && (j.checkpointEpoch ?? 0) > 0 && (j.live?.recordsIn ?? 0) > 0);
      expect(job.state, stderr).toBe('running');
      expect(job).toMatchObject({ id: 'clicks-live', mode: 'stream', trigger: null, pid: child.pid, file: join(REPO, 'examples/clicks.ts') });

      const [table, json, dup, status, statusJson] = await Promise.all([
        run(['jobs', '--dir', cluster.dir]),
        run(['jobs', '--json', '--dir', cluster.dir]),
        run(['run', 'examples/clicks.ts', '--id', 'clicks-live', '--dir', cluster.dir, '--', '--rate', '10']),
        run(['status', '--dir', cluster.dir]),
        run(['status', '--json', '--dir', cluster.dir]),
      ]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^JOB\s+STATE\s+MODE\s+PID/);
      expect(table.stdout).toMatch(new RegExp(`clicks-live\\s+running\\s+stream\\s+${child.pid}`));
      const listed = (JSON.parse(json.stdout) as { jobs: RunningJobRecord[] }).jobs;
      expect(listed.map((j) => j.id)).toEqual(['clicks-live']);
      expect(listed[0]!.live!.recordsIn).toBeGreaterThan(0);
      expect(listed[0]!.metrics!.job).toBe('clicks');
      expect(dup.code).toBe(1);
      expect(dup.stderr).toMatch(/BUSY.*job clicks-live is running already/);

      // `shardflow status` lists it too, with the process that runs it (not a node: `run` runs it in its own).
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(
        new RegExp(`\\njobs:\\n  clicks-live  running  stream  pid ${child.pid} on \\S+  in [\\d.]+/s \\(\\d+\\)  out [\\d.]+/s \\(\\d+\\)  checkpoint epoch \\d+, [\\d.]+s ago`),
      );
      expect(statusJson.code, statusJson.stderr).toBe(0);
      const statusJobs = (JSON.parse(statusJson.stdout) as { jobs: JobStatus[] }).jobs;
      expect(statusJobs.map((j) => j.id)).toEqual(['clicks-live']);
      expect(statusJobs[0]).toMatchObject({ state: 'running', mode: 'stream', trigger: null, node: null, pid: child.pid });
      expect(statusJobs[0]!.recordsIn).toBeGreaterThan(0);
      expect(statusJobs[0]!.inPerSec).toBeGreaterThanOrEqual(0);
      expect(statusJobs[0]!.checkpointEpoch).toBeGreaterThanOrEqual(job.checkpointEpoch!);
      expect(statusJobs[0]!.checkpointAgeMs).toBeGreaterThanOrEqual(0);

      const stop = await run(['stop', 'clicks-live', '--dir', cluster.dir]);
      expect(stop.code, stop.stderr).toBe(0);
      expect(stop.stdout).toMatch(/^stopped clicks-live after a final checkpoint \(epoch \d+\), \d+ records in/);
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/clicks-live: stopped after .*last checkpoint epoch \d+/);
      const finalEpoch = Number(/epoch (\d+)\)/.exec(stop.stdout)![1]);
      expect(Number(/last checkpoint epoch (\d+)/.exec(stderr)![1])).toBe(finalEpoch);
      expect(finalEpoch).toBeGreaterThan(job.checkpointEpoch!);
      expect(await listJobs(coordinator)).toEqual([]);

      const again = await run(['stop', 'clicks-live', '--dir', cluster.dir]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/no job "clicks-live" is running \(no jobs are running\)/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
  it('--state storage: a job killed with -9 mid-run and run again resumes from its checkpoint, results exact', async () => {
    const rate = 4000;
    const total = 24_000;
    const users = 30;
    const args = ['run', 'examples/clicks.ts', '--id', 'clicks-resume', '--state', 'storage', '--checkpoint-interval', '300ms', '--quiet', '--dir', cluster.dir, '--',
      '--source', 'generator', '--rate', String(rate), '--count', String(total), '--users', String(users), '--seed', '11', '--out', 'ns:clicks-resume'];
    const child = spawn(process.execPath, [BIN_PATH, ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<unknown>((resolve) => child.once('exit', resolve));
    try {
      // Killed once it has checkpointed a few times and read a good part of its input, but not all.
      const job = await awaitJob(coordinator, 'clicks-resume', (j) => (j.checkpointEpoch ?? 0) >= 3 && (j.live?.recordsIn ?? 0) > total / 4);
      expect(job.live!.recordsIn, stderr).toBeLessThan(total);
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    // Its record goes with its lease; then the same id may run again, and resumes.
    await awaitJobGone(coordinator, 'clicks-resume');
    const again = await run(args);
    expect(again.code, again.stderr).toBe(0);
    const readAgain = Number(/finished after .*: (\d+) records in/.exec(again.stderr)?.[1]);
    expect(readAgain).toBeLessThan(total); // it did not start over...

    const client = await cluster.client();
    const got = new Map<string, number>();
    for await (const e of client.scan('clicks-resume')) got.set(e.key, (e.value as ClickCount).clicks);
    expect(got).toEqual(expectedClicks(11, total, rate, users)); // ...and no click was lost or counted twice
  });
});
