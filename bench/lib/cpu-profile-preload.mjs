// Preloaded into shardflow's node processes (NODE_OPTIONS=--import ...) when the benchmark runs with --cpu-prof-dir:
// Node 20 refuses --cpu-prof in NODE_OPTIONS, so this starts the V8 profiler through the inspector instead and
// writes a .cpuprofile (open it in Chrome DevTools or speedscope) into $SHARDFLOW_BENCH_CPU_PROF_DIR when the
// process exits.
import { Session } from 'node:inspector';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SHARDFLOW_BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // Posting to an in-process session is synchronous, so this completes inside the exit handler.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      const role = process.argv.slice(2).filter((a) => !a.startsWith('/')).join('-').replace(/[^A-Za-z0-9_.-]+/g, '_');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${role || 'node'}.${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
