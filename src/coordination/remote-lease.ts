/**
 * A lease held through the embedded coordinator: it keeps itself alive and says when it is gone.
 *
 * A keep-alive goes out every ttl/3, so two can fail in a row without harm. The lease counts as lost, and `onLost`
 * runs once, when the server answers that it does not know the lease (it expired, was revoked behind our back, or
 * the server restarted), or when no keep-alive got through for a whole TTL counted from the *sending* of the last
 * one that did: the server's clock started no earlier than that, so by then the keys are gone (or about to be) and
 * a leader must stop acting as one. Erring early is the safe side.
 */
import { CoordinatorError, TimeoutError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import type { Lease } from './coordinator.js';

/** Calls the lease needs from its coordinator client. */
export interface LeaseTransport {
  call<T>(method: string, params: unknown, timeoutMs?: number): Promise<T>;
  /** Drops the current connection so the next call opens a fresh one. */
  resetConnection(reason: string): void;
  readonly log: Logger;
}

export class RemoteLease implements Lease {
  private state: 'alive' | 'lost' | 'revoked' | 'stopped' = 'alive';
  private lostReason: Error | undefined;
  private readonly listeners: ((reason: Error) => void)[] = [];
  private readonly ticker: NodeJS.Timeout;
  private deadline: NodeJS.Timeout;
  private inFlight = false;
  /** When the newest acknowledged keep-alive (or the grant) was sent. */
  private lastAckSentAt: number;
  /** The same moment on the monotonic clock (see {@link Lease.heldUntil}). */
  private lastAckSentMono: number;

  constructor(
    private readonly transport: LeaseTransport,
    readonly id: string,
    readonly ttlMs: number,
    grantSentAt: number,
    private readonly onEnd: () => void,
  ) {
    this.lastAckSentAt = grantSentAt;
    this.lastAckSentMono = performance.now() - Math.max(0, Date.now() - grantSentAt);
    this.ticker = setInterval(() => this.keepAlive(), Math.max(10, Math.floor(ttlMs / 3)));
    this.ticker.unref();
    this.deadline = this.armDeadline();
  }

  get heldUntil(): number {
    return this.state === 'alive' ? this.lastAckSentMono + this.ttlMs : 0;
  }

  async revoke(): Promise<void> {
    if (this.state !== 'alive') return;
    this.end('revoked');
    await this.transport.call('coord.lease.revoke', { id: this.id });
  }

  onLost(listener: (reason: Error) => void): void {
    if (this.lostReason) {
      const reason = this.lostReason;
      queueMicrotask(() => listener(reason));
    } else if (this.state === 'alive') {
      this.listeners.push(listener);
    }
  }

  /** Stops keep-alives without revoking and without `onLost` (the client is closing). */
  stop(): void {
    if (this.state === 'alive') this.end('stopped');
  }

  private keepAlive(): void {
    if (this.state !== 'alive' || this.inFlight) return;
    this.inFlight = true;
    const sentAt = Date.now();
    const sentMono = performance.now();
    this.transport
      .call<{ found: boolean }>('coord.lease.keepalive', { id: this.id }, Math.max(100, Math.floor(this.ttlMs / 3)))
      .then(
        ({ found }) => {
          if (this.state !== 'alive') return;
          if (!found) return this.lose(new CoordinatorError(`lease ${this.id} expired (the coordinator no longer has it)`));
          this.lastAckSentAt = Math.max(this.lastAckSentAt, sentAt);
          this.lastAckSentMono = Math.max(this.lastAckSentMono, sentMono);
          clearTimeout(this.deadline);
          this.deadline = this.armDeadline();
        },
        (err: unknown) => {
          this.transport.log.debug('lease keep-alive failed', { id: this.id, error: String(err) });
          // A connection that times out is likely dead without having said so: open a fresh one.
          if (err instanceof CoordinatorError && err.cause instanceof TimeoutError) {
            this.transport.resetConnection('lease keep-alive timed out');
          }
        },
      )
      .finally(() => {
        this.inFlight = false;
      });
  }

  private armDeadline(): NodeJS.Timeout {
    const timer = setTimeout(
      () =>
        this.lose(
          new CoordinatorError(`lease ${this.id} expired: no keep-alive reached the coordinator for ${this.ttlMs} ms`),
        ),
      Math.max(0, this.lastAckSentAt + this.ttlMs - Date.now()),
    );
    timer.unref();
    return timer;
  }

  private lose(reason: Error): void {
    if (this.state !== 'alive') return;
    this.end('lost');
    this.lostReason = reason;
    for (const l of this.listeners.splice(0)) {
      try {
        l(reason);
      } catch (err) {
        this.transport.log.error('lease onLost listener failed', { id: this.id, error: err });
      }
    }
  }

  private end(state: 'lost' | 'revoked' | 'stopped'): void {
    this.state = state;
    clearInterval(this.ticker);
    clearTimeout(this.deadline);
    this.onEnd();
  }
}
