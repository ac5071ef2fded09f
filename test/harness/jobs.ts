/**
 * Awaiting processing jobs through the coordinator (watches, not polling), and the reference result of
 * examples/clicks.ts computed the plain way.
 */
import type { Coordinator } from '../../src/coordination/index.js';
import { jobKey, jobSpecKey } from '../../src/coordination/index.js';
import type { RunningJobRecord } from '../../src/processing/job-registry.js';
import { rngFor } from '../../src/index.js';
import { makeClick, type ClickCount } from '../../examples/clicks.js';
import type { ShardflowClient } from '../../src/client/index.js';
import { cli, type CliResult } from './cli.js';

/**
 * Resolves with the value of `key` once `accept` takes it (`undefined`: the key is absent), checking the current value
 * and then every change.
 */
async function awaitKey<T>(coordinator: Coordinator, key: string, accept: (value: string | undefined) => T | undefined, timeoutMs: number): Promise<T> {
  let done: (v: T) => void = () => undefined;
  let fail: (e: Error) => void = () => undefined;
  const result = new Promise<T>((resolve, reject) => ((done = resolve), (fail = reject)));
  const watch = await coordinator.watch(key, (e) => {
    if (e.key !== key) return;
    const v = accept(e.type === 'put' ? e.value : undefined);
    if (v !== undefined) done(v);
  });
  const timer = setTimeout(() => fail(new Error(`${key}: not as awaited within ${timeoutMs} ms`)), timeoutMs);
  try {
    const now = accept((await coordinator.get(key))?.value);
    if (now !== undefined) done(now);
    return await result;
  } finally {
    clearTimeout(timer);
    await watch.close();
  }
}

/** The job's running record once `match` holds for it. */
export function awaitJob(coordinator: Coordinator, id: string, match: (job: RunningJobRecord) => boolean, timeoutMs = 20_000): Promise<RunningJobRecord> {
  return awaitKey(coordinator, jobKey(id), (v) => {
    const job = v === undefined ? undefined : (JSON.parse(v) as RunningJobRecord);
    return job && match(job) ? job : undefined;
  }, timeoutMs);
}

/** Resolves once the job's running record is gone (its process ended or its lease expired). */
export async function awaitJobGone(coordinator: Coordinator, id: string, timeoutMs = 20_000): Promise<void> {
  await awaitKey(coordinator, jobKey(id), (v) => (v === undefined ? true : undefined), timeoutMs);
}

/** Resolves once a submitted job's spec is gone (the job ended). */
export async function awaitSpecGone(coordinator: Coordinator, id: string, timeoutMs = 60_000): Promise<void> {
  await awaitKey(coordinator, jobSpecKey(id), (v) => (v === undefined ? true : undefined), timeoutMs);
}

/** Clicks per `user@window-start` that examples/clicks.ts must count for these generator arguments. */
export function expectedClicks(seed: number, total: number, rate: number, users: number): Map<string, number> {
  const expected = new Map<string, number>();
  for (let i = 0; i < total; i++) {
    const c = makeClick(i, rngFor(seed, i), rate, users);
    const key = `${c.user}@${new Date(Math.floor(c.at / 10_000) * 10_000).toISOString()}`;
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  return expected;
}

/** What a clicks job on the compute tier is asked for (examples/clicks.ts with its generator). */
export interface ClicksJob {
  id: string;
  rate: number;
  total: number;
  users: number;
  seed: number;
  splits?: number;
  /** The job module (default examples/clicks.ts); it takes clicks.ts's generator arguments. */
  file?: string;
  /** `--mode batch` with this `--trigger`. */
  batch?: string;
}

/** Submits examples/clicks.ts (or `job.file`) to the compute tier (`run --on-cluster`), its results into namespace `job.id`. */
export function submitClicks(dir: string, job: ClicksJob): Promise<CliResult> {
  const mode = job.batch === undefined ? [] : ['--mode', 'batch', '--trigger', job.batch];
  return cli([
    'run', job.file ?? 'examples/clicks.ts', '--on-cluster', '--id', job.id, ...mode, '--checkpoint-interval', '300ms', '--dir', dir, '--',
    '--source', 'generator', '--splits', String(job.splits ?? 1), '--rate', String(job.rate), '--count', String(job.total),
    '--users', String(job.users), '--seed', String(job.seed), '--out', `ns:${job.id}`,
  ]);
}

/** The clicks counted into namespace `ns`, by key, to compare with {@link expectedClicks}. */
export async function countedClicks(client: ShardflowClient, ns: string): Promise<Map<string, number>> {
  const got = new Map<string, number>();
  for await (const e of client.scan(ns)) got.set(e.key, (e.value as ClickCount).clicks);
  return got;
}
