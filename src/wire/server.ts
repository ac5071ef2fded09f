/**
 * A TCP server speaking the shardflow protocol: handshake first, then requests dispatched to one handler.
 * A peer that sends a bad, oversized or unauthenticated frame loses its own connection only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { ConnectionError, ProtocolError, ShardflowError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { Connection, type RequestHandler } from './connection.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, MAX_HANDSHAKE_FRAME_BYTES } from './frame.js';
import { PROTOCOL_VERSION, clientMac, isAuth, macEquals, newNonce, serverMac } from './handshake.js';

export interface RpcServerOptions {
  /** The cluster secret every peer must prove it knows. */
  secret: Uint8Array;
  /** Handles every authenticated request. */
  handler: RequestHandler;
  /** Largest frame accepted after authentication; a larger one closes the connection. */
  maxFrameBytes?: number;
  /** Largest request served; a larger one within the frame limit is answered with TooLargeError. */
  maxRequestBytes?: number;
  /** Time a peer has to finish the handshake. */
  handshakeTimeoutMs?: number;
  logger?: Logger;
}

/**
 * @example
 * ```ts
 * const server = new RpcServer({ secret, handler: (method, params) => ({ echo: params }) });
 * const { port } = await server.listen(0, '127.0.0.1');
 * ```
 */
export class RpcServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly log: Logger;

  constructor(private readonly options: RpcServerOptions) {
    this.log = options.logger ?? createLogger('wire');
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        if (addr === null || typeof addr === 'string') return reject(new Error('unexpected server address'));
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /** Authenticated connections now open. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    for (const c of this.connections) c.close('server closing');
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
    const nonce = newNonce();
    const reject = (reason: string, err?: unknown) => {
      this.log.warn('rejecting connection', { remote, reason, ...(err ? { error: String(err) } : {}) });
      if (!socket.destroyed) socket.end(encodeFrame({ t: 'reject', reason }));
      setTimeout(() => socket.destroy(), 100).unref();
    };
    const timer = setTimeout(() => reject('handshake timed out'), this.options.handshakeTimeoutMs ?? 5000);
    timer.unref();
    // A peer that hangs up before the handshake (a TCP health probe) is gone, not timed out.
    socket.once('close', () => clearTimeout(timer));
    socket.on('error', () => socket.destroy());

    const onData = (chunk: Buffer) => {
      let auth: unknown;
      try {
        decoder.push(chunk, (message) => {
          if (auth !== undefined) throw new ProtocolError('frame sent before the handshake finished');
          auth = message;
        });
      } catch (err) {
        clearTimeout(timer);
        socket.off('data', onData);
        return reject(err instanceof ShardflowError ? err.message : 'bad handshake frame', err);
      }
      if (auth === undefined) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (!isAuth(auth)) return reject('expected an auth message');
      if (auth.proto !== PROTOCOL_VERSION) {
        return reject(`protocol version ${auth.proto} is not supported (this node speaks ${PROTOCOL_VERSION})`);
      }
      if (!macEquals(auth.mac, clientMac(this.options.secret, nonce, auth.nonce))) {
        return reject('authentication failed: wrong cluster secret');
      }
      decoder.maxFrameBytes = this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
      const connection = new Connection(socket, decoder, auth.name || remote, this.log, this.options.handler);
      if (this.options.maxRequestBytes !== undefined) connection.maxRequestBytes = this.options.maxRequestBytes;
      this.connections.add(connection);
      connection.once('close', (reason: Error) => {
        this.connections.delete(connection);
        if (!(reason instanceof ConnectionError)) this.log.debug('connection closed', { peer: connection.peerName });
      });
      socket.write(encodeFrame({ t: 'welcome', mac: serverMac(this.options.secret, auth.nonce, nonce) }));
    };
    socket.on('data', onData);
    socket.write(encodeFrame({ t: 'hello', proto: PROTOCOL_VERSION, nonce }));
  }
}
