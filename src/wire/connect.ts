/** Opens an authenticated connection to a shardflow server. */
import { connect as netConnect } from 'node:net';
import { AuthenticationError, ConnectionError, ProtocolError, ShardflowError, TimeoutError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { Connection, type RequestHandler } from './connection.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, MAX_HANDSHAKE_FRAME_BYTES } from './frame.js';
import { PROTOCOL_VERSION, clientMac, isHello, isReject, isWelcome, macEquals, newNonce, serverMac } from './handshake.js';

export interface ConnectOptions {
  host: string;
  port: number;
  secret: Uint8Array;
  /** Name this side gives in the handshake (shown in the server's logs). */
  name?: string;
  /** Deadline for TCP connect plus handshake. */
  connectTimeoutMs?: number;
  /** Default per-call deadline. */
  callTimeoutMs?: number;
  maxFrameBytes?: number;
  /** Serves requests the server sends this way (rarely needed). */
  handler?: RequestHandler;
  logger?: Logger;
}

/**
 * Connects and authenticates; rejects with {@link AuthenticationError} on a wrong secret or protocol version,
 * {@link ConnectionError} when nothing answers or the connection is not up and authenticated within
 * `connectTimeoutMs` (a stalled handshake is a connection that could not be opened: nothing was sent, so callers
 * may retry any request).
 *
 * @example
 * ```ts
 * const conn = await connect({ host: '127.0.0.1', port, secret });
 * const answer = await conn.call('ping');
 * ```
 */
export function connect(options: ConnectOptions): Promise<Connection> {
  const log = options.logger ?? createLogger('wire');
  const peer = `${options.host}:${options.port}`;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: options.host, port: options.port, noDelay: true });
    const decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
    const nonce = newNonce();
    let serverNonce: Uint8Array | undefined;
    let settled = false;
    const fail = (err: ShardflowError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    const timer = setTimeout(
      () =>
        fail(
          new ConnectionError(`cannot connect to ${peer}: no answer within ${timeoutMs} ms`, {
            cause: new TimeoutError(`connecting to ${peer} timed out`),
          }),
        ),
      timeoutMs,
    );
    socket.on('error', (err) => fail(new ConnectionError(`cannot connect to ${peer}: ${err.message}`, { cause: err })));
    socket.on('close', () => fail(new ConnectionError(`${peer} closed the connection during the handshake`)));

    const onData = (chunk: Buffer) => {
      try {
        decoder.push(chunk, (message) => {
          if (settled) return;
          if (isReject(message)) {
            return fail(new AuthenticationError(`${peer} refused the connection: ${message.reason}`));
          }
          if (serverNonce === undefined) {
            if (!isHello(message)) throw new ProtocolError('expected hello');
            if (message.proto !== PROTOCOL_VERSION) {
              return fail(
                new AuthenticationError(`${peer} speaks protocol ${message.proto}, this client ${PROTOCOL_VERSION}`),
              );
            }
            serverNonce = message.nonce;
            socket.write(
              encodeFrame({
                t: 'auth',
                proto: PROTOCOL_VERSION,
                nonce,
                mac: clientMac(options.secret, serverNonce, nonce),
                name: options.name ?? 'client',
              }),
            );
            return;
          }
          if (!isWelcome(message)) throw new ProtocolError('expected welcome');
          if (!macEquals(message.mac, serverMac(options.secret, nonce, serverNonce))) {
            return fail(new AuthenticationError(`${peer} does not know the cluster secret`));
          }
          settled = true;
          clearTimeout(timer);
          socket.removeAllListeners('data');
          socket.removeAllListeners('error');
          socket.removeAllListeners('close');
          decoder.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
          const connection = new Connection(socket, decoder, peer, log, options.handler);
          if (options.callTimeoutMs !== undefined) connection.defaultTimeoutMs = options.callTimeoutMs;
          resolve(connection);
        });
      } catch (err) {
        fail(err instanceof ShardflowError ? err : new ProtocolError(String(err), { cause: err }));
      }
    };
    socket.on('data', onData);
  });
}
