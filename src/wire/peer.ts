/**
 * A lazily (re)connecting handle to one server address: the first call connects, a closed connection is replaced
 * on the next call. Concurrent callers share one connection attempt.
 */
import { ConnectionError, InvalidArgumentError } from '../errors/index.js';
import { connect, type ConnectOptions } from './connect.js';
import type { CallOptions, Connection } from './connection.js';

/** `host:port` split; an InvalidArgumentError names what is wrong. */
export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new InvalidArgumentError(`invalid address ${address}: expected host:port`);
  }
  return [address.slice(0, i), port];
}

export class Peer {
  private connection: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private closed = false;
  private readonly onConnectListeners: ((c: Connection) => void)[] = [];

  constructor(private readonly options: ConnectOptions) {}

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** Runs `listener` on every new connection (to re-subscribe pushes after a reconnect). */
  onConnect(listener: (c: Connection) => void): void {
    this.onConnectListeners.push(listener);
    if (this.connection && !this.connection.isClosed) listener(this.connection);
  }

  /** The live connection if there is one now (no waiting, no connecting). */
  current(): Connection | undefined {
    return this.connection && !this.connection.isClosed ? this.connection : undefined;
  }

  /** The live connection, opening one if needed. */
  async get(): Promise<Connection> {
    if (this.closed) throw new ConnectionError(`peer ${this.address} is closed`);
    if (this.connection && !this.connection.isClosed) return this.connection;
    if (!this.connecting) {
      this.connecting = connect(this.options).then(
        (c) => {
          this.connecting = undefined;
          if (this.closed) {
            c.close();
            throw new ConnectionError(`peer ${this.address} is closed`);
          }
          this.connection = c;
          for (const l of this.onConnectListeners) l(c);
          return c;
        },
        (err) => {
          this.connecting = undefined;
          throw err;
        },
      );
    }
    return this.connecting;
  }

  async call<T = unknown>(method: string, params?: unknown, options?: CallOptions): Promise<T> {
    const c = this.connection && !this.connection.isClosed ? this.connection : await this.get();
    return c.call<T>(method, params, options);
  }

  close(): void {
    this.closed = true;
    this.connection?.close();
  }
}
