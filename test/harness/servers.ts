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
import { freePort } from './ports.js';
import { spawnServer } from './spawn-server.js';

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
  const port = await freePort();
  const { stop } = await spawnServer({
    name: scheme,
    command: (dir) => command(port, dir),
    ready,
    timeoutMs,
    hint: '(is it installed? see .ci/run)',
  });
  return { port, url: `${scheme}://127.0.0.1:${port}`, stop };
}
