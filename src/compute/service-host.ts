/**
 * Runs service calls on a compute node: finds the handler, holds it to a deadline, turns what it throws into a typed
 * error, and counts calls for `shardflow status`. A handler that throws or never returns costs its own call only.
 */
import {
  InvalidArgumentError,
  ServiceError,
  ShardflowError,
  TimeoutError,
  UnknownServiceError,
} from '../errors/index.js';
import { DEFAULT_SERVICE_TIMEOUT_MS, type ServiceContext, type ServiceDefinition } from './services.js';
import { RateMeter } from '../util/rate-meter.js';

/** Per service numbers, as `node.stats` reports them. */
export interface ServiceStats {
  name: string;
  inFlight: number;
  calls: number;
  failures: number;
  /** Calls completed per second, over the last few seconds. */
  callsPerSec: number;
}


/** A call in progress: its deadline, and an AbortSignal made only if the handler asks for it. */
class RunningCall implements ServiceContext {
  fail: ((err: Error) => void) | undefined;
  private controller: AbortController | undefined;

  constructor(
    readonly service: string,
    readonly node: string,
    readonly deadline: number,
  ) {}

  /** The call is its own handler context: one object per call, the signal made only when asked for. */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  /** The deadline passed: the caller gets a TimeoutError now; the handler's signal is aborted. */
  expire(err: Error): void {
    this.abort(err);
    this.fail?.(err);
  }

  abort(reason: Error): void {
    this.controller?.abort(reason);
  }
}

interface Counters {
  inFlight: number;
  calls: number;
  failures: number;
  rate: RateMeter;
}

export class ServiceHost {
  private readonly counters = new Map<string, Counters>();
  private readonly running = new Set<RunningCall>();
  private sweeper: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private total = 0;

  constructor(
    private readonly nodeId: string,
    private readonly services: ReadonlyMap<string, ServiceDefinition>,
  ) {
    for (const name of services.keys()) this.counters.set(name, { inFlight: 0, calls: 0, failures: 0, rate: new RateMeter() });
  }

  /** Names of the services hosted here, sorted. */
  names(): string[] {
    return [...this.services.keys()].sort();
  }

  /** Calls running now, over all services. */
  get inFlight(): number {
    return this.total;
  }

  /** Runs `svc.call { service, payload, timeoutMs? }`. */
  call(raw: unknown): Promise<unknown> {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new InvalidArgumentError('svc.call parameters must be an object { service, payload }');
    }
    const { service, payload, timeoutMs } = raw as Record<string, unknown>;
    const def = typeof service === 'string' ? this.services.get(service) : undefined;
    if (!def) {
      throw new UnknownServiceError(`node ${this.nodeId} has no service ${JSON.stringify(service)}`, {
        details: { service, node: this.nodeId },
      });
    }
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0)) {
      throw new InvalidArgumentError('timeoutMs must be a positive number');
    }
    const limit = Math.min(def.timeoutMs ?? DEFAULT_SERVICE_TIMEOUT_MS, (timeoutMs as number | undefined) ?? Infinity);
    const name = service as string;
    const c = this.counters.get(name)!;
    const running = new RunningCall(name, this.nodeId, Date.now() + limit);
    c.inFlight++;
    this.total++;
    this.running.add(running);
    this.ensureSweeper();
    return new Promise<unknown>((resolve, reject) => {
      running.fail = reject;
      let result: unknown;
      try {
        result = def.handler(payload, running);
      } catch (err) {
        reject(err);
        return;
      }
      if (result instanceof Promise) result.then(resolve, reject);
      else resolve(result);
    }).then(
      (value) => {
        this.finish(running, c, false);
        return value;
      },
      (err: unknown) => {
        this.finish(running, c, true);
        if (err instanceof ShardflowError) throw err;
        const errorName = err instanceof Error ? err.name : typeof err;
        const message = err instanceof Error ? err.message : String(err);
        throw new ServiceError(`${name} failed: ${message}`, { cause: err, details: { service: name, errorName } });
      },
    );
  }

  private finish(running: RunningCall, c: Counters, failed: boolean): void {
    if (!this.running.delete(running)) return;
    c.inFlight--;
    c.calls++;
    if (failed) c.failures++;
    c.rate.mark();
    this.total--;
    if (this.total === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** One timer for all deadlines: a timer per call costs more than most handlers. */
  private ensureSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const r of this.running) {
        if (r.deadline <= now) r.expire(new TimeoutError(`${r.service} ran past its deadline`, { details: { service: r.service } }));
      }
      if (this.running.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, 20);
    this.sweeper.unref();
  }

  /** Resolves when no call is running. */
  whenIdle(): Promise<void> {
    if (this.total === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Aborts every running call's signal (the node is stopping for good). */
  abortAll(reason: Error): void {
    for (const r of this.running) r.abort(reason);
  }

  stats(): { inFlight: number; callsPerSec: number; services: ServiceStats[] } {
    const services = this.names().map((name) => {
      const c = this.counters.get(name)!;
      return { name, inFlight: c.inFlight, calls: c.calls, failures: c.failures, callsPerSec: c.rate.rate() };
    });
    return {
      inFlight: this.total,
      callsPerSec: services.reduce((sum, s) => sum + s.callsPerSec, 0),
      services,
    };
  }
}
