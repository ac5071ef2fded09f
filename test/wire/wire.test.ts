import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, encodeFrame, generateSecretFile, readSecretFile, RpcServer, type Connection } from '../../src/wire/index.js';
import {
  AuthenticationError,
  ConfigError,
  ConnectionError,
  MovedError,
  TimeoutError,
  UnknownMethodError,
  InternalError,
  InvalidArgumentError,
} from '../../src/errors/index.js';

const secret = randomBytes(32);
let server: RpcServer;
let port: number;
const opened: Connection[] = [];

beforeEach(async () => {
  server = new RpcServer({
    secret,
    maxFrameBytes: 64 * 1024,
    handler: async (method, params, conn) => {
      switch (method) {
        case 'echo':
          return params;
        case 'moved':
          throw new MovedError('slot 7 moved', { details: { partition: 7, epoch: 3, owner: 'n2' } });
        case 'crash':
          throw new Error('boom');
        case 'slow':
          return new Promise((r) => setTimeout(() => r('late'), 500));
        case 'subscribe':
          setImmediate(() => conn.push('news', { n: 1 }));
          return 'ok';
        default:
          throw new UnknownMethodError(method);
      }
    },
  });
  ({ port } = await server.listen(0));
});

afterEach(async () => {
  for (const c of opened.splice(0)) c.close();
  await server.close();
});

async function open(s: Uint8Array = secret): Promise<Connection> {
  const c = await connect({ host: '127.0.0.1', port, secret: s, name: 'test' });
  opened.push(c);
  return c;
}

/** Opens a raw socket and collects what the server sends until it closes. */
async function raw(): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = netConnect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.on('data', () => {});
  const closed = once(socket, 'close').then(() => undefined);
  return { socket, closed };
}

describe('wire protocol', () => {
  it('answers requests and keeps many in flight on one connection', async () => {
    const c = await open();
    const answers = await Promise.all(Array.from({ length: 2000 }, (_, i) => c.call('echo', { i })));
    expect(answers.map((a) => (a as { i: number }).i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(Buffer.from((await c.call('echo', Buffer.from([1, 2, 3]))) as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
  });

  it('rebuilds typed errors as the same class with code, details and retryability', async () => {
    const c = await open();
    const err = await c.call('moved').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MovedError);
    expect((err as MovedError).code).toBe('MOVED');
    expect((err as MovedError).retryable).toBe(true);
    expect((err as MovedError).details).toEqual({ partition: 7, epoch: 3, owner: 'n2' });
    await expect(c.call('nope')).rejects.toBeInstanceOf(UnknownMethodError);
    const crash = await c.call('crash').catch((e: unknown) => e);
    expect(crash).toBeInstanceOf(InternalError);
    expect((crash as Error).message).toContain('boom');
  });

  it('times out a call with a retryable TimeoutError', async () => {
    const c = await open();
    const err = await c.call('slow', null, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).retryable).toBe(true);
  });

  it('delivers pushes', async () => {
    const c = await open();
    const got = new Promise((resolve) => c.onPush('news', resolve));
    await c.call('subscribe');
    expect(await got).toEqual({ n: 1 });
  });

  it('refuses a client with the wrong secret, and the server keeps serving others', async () => {
    const good = await open();
    await expect(open(randomBytes(32))).rejects.toBeInstanceOf(AuthenticationError);
    expect(await good.call('echo', 1)).toBe(1);
  });

  it('closes a connection that sends a request before authenticating', async () => {
    const { socket, closed } = await raw();
    socket.write(encodeFrame([0, 1, 'echo', 'hi']));
    await closed;
    expect(server.connectionCount).toBe(0);
  });

  it('closes only the offending connection on an oversized frame', async () => {
    const good = await open();
    const bad = await open();
    const badClosed = once(bad, 'close');
    const err = await bad.call('echo', Buffer.alloc(100 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    await badClosed;
    expect(await good.call('echo', 'still here')).toBe('still here');
  });

  it('closes only the offending connection on a malformed frame', async () => {
    const good = await open();
    const { socket, closed } = await raw();
    socket.write(Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1])); // 0xc1 is never valid msgpack
    await closed;
    expect(await good.call('echo', 'ok')).toBe('ok');
  });

  it('closes a connection that claims a huge frame during the handshake without allocating it', async () => {
    const { socket, closed } = await raw();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffffffff);
    socket.write(header);
    await closed;
  });

  it('gives up on a server that accepts but never says hello with a retryable ConnectionError', async () => {
    // A process that took the port but does not speak the protocol, or a node too busy to answer.
    const accepted: Socket[] = [];
    const silent = createServer((socket) => accepted.push(socket.on('error', () => undefined)));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const silentPort = (silent.address() as AddressInfo).port;
      const started = Date.now();
      const err = await connect({ host: '127.0.0.1', port: silentPort, secret, connectTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as ConnectionError).retryable).toBe(true);
      expect((err as ConnectionError).cause).toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    } finally {
      for (const s of accepted) s.destroy();
      silent.close();
    }
  });

  it('rejects a call on a closed connection with a retryable ConnectionError', async () => {
    const c = await open();
    c.close();
    const err = await c.call('echo', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).retryable).toBe(true);
  });
});

describe('cluster secret file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is created with mode 0600 and read back', async () => {
    const path = join(dir, 'secret');
    const s = await generateSecretFile(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readSecretFile(path)).toEqual(s);
  });

  it('is refused when others can read it, or when it is not a secret', async () => {
    const path = join(dir, 'secret');
    await generateSecretFile(path);
    await chmod(path, 0o644);
    await expect(readSecretFile(path)).rejects.toBeInstanceOf(ConfigError);
    const junk = join(dir, 'junk');
    await writeFile(junk, 'not hex', { mode: 0o600 });
    await expect(readSecretFile(junk)).rejects.toBeInstanceOf(ConfigError);
    await expect(readSecretFile(join(dir, 'missing'))).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('wire protocol: parameters that cannot be encoded', () => {
  it('rejects the call at once with InvalidArgumentError and leaves nothing pending', async () => {
    const c = await open();
    const err = await c.call('echo', { n: 2n ** 70n }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(c.inFlight).toBe(0);
    expect(await c.call('echo', 'still fine')).toBe('still fine');
  });
});
