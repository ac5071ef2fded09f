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
import { DEFAULT_SERVICE_TIMEOUT_MS, type ServiceDefinition } from './services.js';

/** Per service numbers, as `node.stats` reports them. */
export interface ServiceStats {
  name: string;
  inFlight: number;
  calls: number;
  failures: number;
  /** Calls completed per second, over the last few seconds. */
  callsPerSec: number;
}

const RATE_WINDOW_S = 5;

/** Calls completed per second over a short sliding window of one-second buckets. */
class RateMeter {
  private readonly buckets = new Array<number>(RATE_WINDOW_S + 1).fill(0);
  private second = Math.floor(Date.now() / 1000);

  mark(now = Date.now()): void {
    this.advance(now);
    this.buckets[this.second % this.buckets.length]! += 1;
  }

  /** Average over the last full seconds (the current, partial one is left out). */
  rate(now = Date.now()): number {
    this.advance(now);
    let sum = 0;
    for (let i = 1; i <= RATE_WINDOW_S; i++) sum += this.buckets[(this.second - i + this.buckets.length * 2) % this.buckets.length]!;
    return sum / RATE_WINDOW_S;
  }

  private advance(now: number): void {
    const s = Math.floor(now / 1000);
    for (let t = this.second + 1; t <= s && t <= this.second + this.buckets.length; t++) this.buckets[t % this.buckets.length] = 0;
    this.second = Math.max(this.second, s);
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
  private readonly controllers = new Set<AbortController>();
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
  async call(raw: unknown): Promise<unknown> {
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
    const c = this.counters.get(service as string)!;
    const controller = new AbortController();
    this.controllers.add(controller);
    c.inFlight++;
    this.total++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = Date.now() + limit;
      const running = Promise.resolve().then(() =>
        def.handler(payload, { service: service as string, node: this.nodeId, signal: controller.signal, deadline }),
      );
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort(new TimeoutError(`${String(service)} ran past its deadline of ${limit} ms`));
          reject(controller.signal.reason);
        }, limit);
      });
      return await Promise.race([running, expired]);
    } catch (err) {
      c.failures++;
      if (err instanceof ShardflowError) throw err;
      const name = err instanceof Error ? err.name : typeof err;
      const message = err instanceof Error ? err.message : String(err);
      throw new ServiceError(`${String(service)} failed: ${message}`, { cause: err, details: { service, errorName: name } });
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
      c.inFlight--;
      c.calls++;
      c.rate.mark();
      this.total--;
      if (this.total === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when no call is running. */
  whenIdle(): Promise<void> {
    if (this.total === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Aborts every running call's signal (the node is stopping for good). */
  abortAll(reason: Error): void {
    for (const c of this.controllers) c.abort(reason);
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
