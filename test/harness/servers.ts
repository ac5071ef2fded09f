/**
 * Real Redis and NATS (JetStream) servers for connector tests, from Debian's packages (`redis-server`,
 * `nats-server`; `.ci/run` installs them): a free port, a temporary data folder, resolved once the server says it is
 * ready (its own log line, not a timer), gone again after `stop()`.
 *
 * @example
 * ```ts
 * let redis: RunningServer;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(() => redis.stop());
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './ports.js';

export interface RunningServer {
  port: number;
  /** e.g. `redis://127.0.0.1:40123` or `nats://127.0.0.1:40123`. */
  url: string;
  /** Kills the server and removes its data folder. */
  stop(): Promise<void>;
}

/** A redis-server without persistence on a free port. */
export async function startRedis(): Promise<RunningServer> {
  return startServer('redis', (port, dir) => [
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
  ], /Ready to accept connections/);
}

/** A nats-server with JetStream (file store in a temporary folder) on a free port. */
export async function startNats(): Promise<RunningServer> {
  return startServer('nats', (port, dir) => [
    'nats-server',
    ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir],
  ], /Server is ready/);
}

async function startServer(
  scheme: string,
  command: (port: number, dir: string) => [string, string[]],
  ready: RegExp,
  timeoutMs = 15_000,
): Promise<RunningServer> {
  const dir = await mkdtemp(join(tmpdir(), `sf-${scheme}-`));
  const port = await freePort();
  const [name, args] = command(port, dir);
  const bin = findBinary(name);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const stop = async () => {
    await kill(child, exited);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      const onData = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-4000);
        if (ready.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${bin} exited with code ${code}`));
      });
    });
  } catch (err) {
    await stop();
    throw new Error(`${bin} did not start (is it installed? see .ci/run): ${(err as Error).message}\n${output}`, { cause: err });
  }
  // Keep draining its output so a chatty server never blocks on a full pipe.
  child.stdout!.resume();
  child.stderr!.resume();
  return { port, url: `${scheme}://127.0.0.1:${port}`, stop };
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
