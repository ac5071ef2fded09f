/**
 * One real server process for tests (redis-server, nats-server, etcd): a temporary data folder, the process with its
 * output kept (the tail, for the error message if it does not start), resolved once it is ready, gone again — process
 * and folder — after `stop()`. servers.ts and etcd.ts build on it.
 *
 * Ready is either a line of the server's own output (a RegExp), or a probe polled every 50 ms until it answers true
 * (e.g. an HTTP health check). A server that exits, cannot be spawned, or is not ready within `timeoutMs` is
 * stopped and refused with an error that carries the tail of its output.
 *
 * @example
 * ```ts
 * const port = await freePort();
 * const server = await spawnServer({ name: 'redis', command: (dir) => ['redis-server', ['--port', String(port), '--dir', dir]], ready: /Ready to accept/ });
 * await server.stop();
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface SpawnedServer {
  /** The temporary data folder (removed by `stop()`). */
  dir: string;
  /** Kills the server (SIGTERM, SIGKILL after 3 s) and removes its data folder. */
  stop(): Promise<void>;
}

export interface SpawnServerOptions {
  /** Names the temporary folder (`sf-<name>-...`). */
  name: string;
  /** The binary and its arguments, given the data folder. */
  command: (dir: string) => [binary: string, args: string[]];
  /** A line of its output that says it is ready, or a probe that answers true once it is. */
  ready: RegExp | (() => Promise<boolean>);
  timeoutMs?: number;
  /** Added to the error when it does not start, e.g. `(is it installed? see .ci/run)`. */
  hint?: string;
}

export async function spawnServer(options: SpawnServerOptions): Promise<SpawnedServer> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const dir = await mkdtemp(join(tmpdir(), `sf-${options.name}-`));
  const [name, args] = options.command(dir);
  const bin = findBinary(name);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let readyLine: (() => void) | undefined;
  // Keeps the tail for the error message, and drains the output so a chatty server never blocks on a full pipe.
  const onData = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
    if (options.ready instanceof RegExp && options.ready.test(output)) readyLine?.();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  // Settles on 'error' too: a binary that cannot be spawned never exits.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const stop = async () => {
    await kill(child, exited);
    await rm(dir, { recursive: true, force: true });
  };

  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      timer = setTimeout(() => done(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      child.once('error', (err) => done(err));
      child.once('exit', (code) => done(new Error(`${bin} exited with code ${code}`)));
      const ready = options.ready;
      if (ready instanceof RegExp) {
        readyLine = () => done();
        if (ready.test(output)) done();
      } else {
        void (async () => {
          while (!settled) {
            if (await ready().catch(() => false)) return done();
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
      }
    });
  } catch (err) {
    await stop();
    const hint = options.hint ? ` ${options.hint}` : '';
    throw new Error(`${bin} did not start${hint}: ${(err as Error).message}\n${output}`, { cause: err });
  } finally {
    settled = true;
    clearTimeout(timer);
  }
  return { dir, stop };
}

/** Debian puts nats-server in /usr/sbin, which a non-login PATH may lack. */
function findBinary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin'];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return name;
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
