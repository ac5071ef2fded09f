/**
 * One authenticated connection: request/response with ids, many requests in flight, and server pushes.
 *
 * After the handshake every frame is an array:
 *   [0, id, method, params]   request
 *   [1, id, result]           success
 *   [2, id, wireError]        failure (rebuilt as the same error class on the caller's side)
 *   [3, topic, payload]       push (no answer; used for watches and notifications)
 *
 * Frames queued in one pass of the event loop leave in one write, so pipelined small requests share TCP segments.
 */
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import {
  ConnectionError,
  InternalError,
  InvalidArgumentError,
  ProtocolError,
  ShardflowError,
  TimeoutError,
  TooLargeError,
  UnknownMethodError,
  fromWireError,
  isWireError,
  toWireError,
} from '../errors/index.js';
import { encodeBody, FrameDecoder } from './frame.js';
import type { Logger } from '../util/logger.js';

const REQUEST = 0;
const RESULT = 1;
const FAILURE = 2;
const PUSH = 3;

/** Handles one incoming request; throw a ShardflowError to answer with a typed failure. */
export type RequestHandler = (method: string, params: unknown, connection: Connection) => unknown | Promise<unknown>;

export interface CallOptions {
  /** Deadline for the answer; default the connection's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /** Refuse (with TooLargeError, nothing sent) a request whose encoded frame is larger than this. */
  maxBytes?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  deadline: number;
  method: string;
}

/**
 * A connection after authentication. Created by `connect()` (client side) or by an `RpcServer` (server side).
 * Emits `close` (with the reason, if any) exactly once.
 */
export class Connection extends EventEmitter {
  /** Name the peer gave in its handshake (client side: the server's address). */
  readonly peerName: string;
  defaultTimeoutMs = 10_000;
  /** Largest request this side serves; a larger one (still within the frame limit) gets a TooLargeError answer. */
  maxRequestBytes = Number.POSITIVE_INFINITY;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private closeReason: Error | undefined;
  private outbox: Buffer[] = [];
  private outboxBytes = 0;
  private flushScheduled = false;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly pushListeners = new Map<string, Set<(payload: unknown) => void>>();

  constructor(
    private readonly socket: Socket,
    private readonly decoder: FrameDecoder,
    peerName: string,
    private readonly log: Logger,
    private handler: RequestHandler | undefined,
  ) {
    super();
    this.peerName = peerName;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.destroy(new ConnectionError(`socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.destroy(new ConnectionError('connection closed')));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Number of calls awaiting an answer. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request and resolves with the answer, or rejects with the rebuilt error class. */
  call<T = unknown>(method: string, params?: unknown, options: CallOptions = {}): Promise<T> {
    if (this.closed) {
      return Promise.reject(this.closeReason ?? new ConnectionError('connection closed'));
    }
    const id = this.nextId++;
    if (this.nextId > 0x7fffffff) this.nextId = 1;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    let body: Buffer;
    try {
      body = encodeBody([REQUEST, id, method, params ?? null]);
    } catch (cause) {
      return Promise.reject(new InvalidArgumentError(`${method}: parameters cannot be encoded`, { cause }));
    }
    if (options.maxBytes !== undefined && body.length > options.maxBytes) {
      return Promise.reject(
        new TooLargeError(`${method}: request of ${body.length} bytes exceeds the limit of ${options.maxBytes}`, {
          details: { bytes: body.length, limit: options.maxBytes },
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        deadline: Date.now() + timeoutMs,
        method,
      });
      this.ensureSweeper();
      this.enqueue(body);
    });
  }

  /** Sends a one-way message on `topic` (server to client). */
  push(topic: string, payload: unknown): void {
    if (!this.closed) this.write([PUSH, topic, payload]);
  }

  /** Listens for pushes on `topic`; returns a function that stops listening. */
  onPush(topic: string, listener: (payload: unknown) => void): () => void {
    let set = this.pushListeners.get(topic);
    if (!set) this.pushListeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Closes the connection; pending calls fail with a retryable {@link ConnectionError}. */
  close(reason?: string): void {
    this.destroy(new ConnectionError(reason ?? 'connection closed by this side'));
  }

  private write(message: unknown): void {
    this.enqueue(encodeBody(message));
  }

  /**
   * Queues a frame body; everything queued in one pass of the event loop leaves as one buffer in one write, so a
   * burst of pipelined requests (or of answers) costs one syscall, not one each.
   */
  private enqueue(body: Buffer): void {
    this.outbox.push(body);
    this.outboxBytes += 4 + body.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed || this.outbox.length === 0) return;
    const out = Buffer.allocUnsafe(this.outboxBytes);
    let at = 0;
    for (const body of this.outbox) {
      out.writeUInt32BE(body.length, at);
      body.copy(out, at + 4);
      at += 4 + body.length;
    }
    this.outbox = [];
    this.outboxBytes = 0;
    this.socket.write(out);
  };

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, (message, bytes) => this.onMessage(message, bytes));
    } catch (err) {
      const reason = err instanceof ShardflowError ? err : new ProtocolError(String(err), { cause: err });
      this.log.warn('closing connection: bad frame', { peer: this.peerName, code: reason.code, reason: reason.message });
      this.destroy(reason);
    }
  }

  private onMessage(message: unknown, bytes: number): void {
    if (!Array.isArray(message) || typeof message[0] !== 'number') {
      throw new ProtocolError('frame is not a message array');
    }
    switch (message[0]) {
      case REQUEST: {
        const [, id, method, params] = message;
        if (typeof id !== 'number' || typeof method !== 'string' || method.length > 100) {
          throw new ProtocolError('malformed request frame');
        }
        if (bytes > this.maxRequestBytes) {
          // Within the frame limit but over this server's request limit: refuse the one request, keep the connection.
          const err = new TooLargeError(`${method}: request of ${bytes} bytes exceeds the limit of ${this.maxRequestBytes}`, {
            details: { bytes, limit: this.maxRequestBytes },
          });
          this.write([FAILURE, id, toWireError(err)]);
          return;
        }
        this.dispatch(id, method, params);
        return;
      }
      case RESULT:
      case FAILURE: {
        const [kind, id, body] = message;
        const call = typeof id === 'number' ? this.pending.get(id) : undefined;
        if (!call) return; // Answer after a timeout: drop it.
        this.pending.delete(id);
        if (kind === RESULT) call.resolve(body);
        else call.reject(isWireError(body) ? fromWireError(body) : new ProtocolError('malformed error frame'));
        return;
      }
      case PUSH: {
        const [, topic, payload] = message;
        if (typeof topic !== 'string') throw new ProtocolError('malformed push frame');
        for (const listener of this.pushListeners.get(topic) ?? []) listener(payload);
        return;
      }
      default:
        throw new ProtocolError(`unknown frame kind ${String(message[0])}`);
    }
  }

  private dispatch(id: number, method: string, params: unknown): void {
    const handler = this.handler;
    if (!handler) {
      this.write([FAILURE, id, toWireError(new UnknownMethodError(`no handler for ${method}`))]);
      return;
    }
    let result: unknown;
    try {
      result = handler(method, params, this);
    } catch (err) {
      this.answerError(id, method, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value) => this.answer(id, value),
        (err) => this.answerError(id, method, err),
      );
    } else {
      this.answer(id, result);
    }
  }

  private answer(id: number, value: unknown): void {
    if (this.closed) return;
    try {
      this.write([RESULT, id, value === undefined ? null : value]);
    } catch (err) {
      this.answerError(id, 'answer', new InternalError('the answer could not be encoded', { cause: err }));
    }
  }

  private answerError(id: number, method: string, err: unknown): void {
    if (!(err instanceof ShardflowError)) {
      this.log.error('handler failed', { method, error: err instanceof Error ? err.stack : String(err) });
    }
    if (!this.closed) this.write([FAILURE, id, toWireError(err)]);
  }

  private ensureSweeper(): void {
    if (this.sweeper) return;
    // One timer per connection rather than one per call: pipelined calls would otherwise cost a timer each.
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [id, call] of this.pending) {
        if (call.deadline <= now) {
          this.pending.delete(id);
          call.reject(new TimeoutError(`${call.method} to ${this.peerName} timed out`, { details: { method: call.method } }));
        }
      }
      if (this.pending.size === 0) this.stopSweeper();
    }, 50);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private destroy(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.stopSweeper();
    this.socket.destroy();
    const failure = reason instanceof ConnectionError ? reason : new ConnectionError(reason.message, { cause: reason });
    for (const call of this.pending.values()) call.reject(failure);
    this.pending.clear();
    this.emit('close', reason);
  }
}
