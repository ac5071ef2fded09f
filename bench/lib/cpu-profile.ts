/**
 * Profiling the processes a benchmark starts: they inherit this process's environment, so while `work` runs, every
 * Node process started preloads cpu-profile-preload.mjs and writes a V8 .cpuprofile into the directory asked for
 * (Node 20 refuses --cpu-prof in NODE_OPTIONS, so the preloaded module runs the profiler instead).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The module a profiled Node process preloads (`--import`). */
export const CPU_PROFILE_PRELOAD = fileURLToPath(new URL('./cpu-profile-preload.mjs', import.meta.url));

/** Runs `work` with the processes it starts profiled into `cpuProfDir`; without a directory, just runs it. */
export async function withProfiledChildren<T>(cpuProfDir: string | undefined, work: () => Promise<T>): Promise<T> {
  if (!cpuProfDir) return work();
  const saved = process.env.NODE_OPTIONS;
  process.env.SHARDFLOW_BENCH_CPU_PROF_DIR = resolve(cpuProfDir);
  process.env.NODE_OPTIONS = `${saved ?? ''} --import "${CPU_PROFILE_PRELOAD}"`.trim();
  try {
    return await work();
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
    delete process.env.SHARDFLOW_BENCH_CPU_PROF_DIR;
  }
}
