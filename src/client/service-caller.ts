/**
 * Calling services on the stateless compute tier: pick one live instance per call (round-robin, random,
 * least-outstanding, power-of-two-choices, or by key with rendezvous hashing), send, and deal with failure:
 *
 * - a call that could not be sent (no connection) goes to another instance, whatever it is;
 * - a call lost in flight (connection dropped, node stopping) is retried elsewhere only if marked idempotent, and
 *   otherwise fails at once with its typed error — never hangs;
 * - an instance that keeps failing is ejected for a while and takes traffic again only after it answers a ping.
 *
 * Instances are learned from membership (a node announces its services when ready, and `draining` before it stops),
 * so a new instance gets calls as soon as its announcement arrives, and a draining one no new calls.
 */
import {
  ConnectionError,
  InvalidArgumentError,
  TimeoutError,
  UnavailableError,
  UnknownServiceError,
} from '../errors/index.js';
import { createStrategy, InstanceHealth, pickByKey, type InstanceState, type Strategy, type StrategyName } from '../dispatch/index.js';
import { MAX_CALL_BYTES } from '../keyspace/index.js';
import type { MemberRecord, MemberView } from './member-view.js';
import type { PeerPool } from './peer-pool.js';

export interface ServiceCallOptions {
  /** How to choose the instance (default `round-robin`). Ignored when `key` is given. */
  strategy?: StrategyName;
  /** Same key, same instance while membership is stable (rendezvous hashing: minimal remapping on change). */
  key?: string;
  /** Safe to run twice: retried on another instance if the first one fails mid-call. */
  idempotent?: boolean;
  /** Deadline for the call, retries included (default: the client's timeout). */
  timeoutMs?: number;
}

const MAX_ATTEMPTS = 3;
const EWMA = 0.2;

interface Tracked extends InstanceState {
  health: InstanceHealth;
  probing: boolean;
}

export class ServiceCaller {
  private readonly strategies = new Map<StrategyName, Strategy>();
  private readonly tracked = new Map<string, Tracked>();

  constructor(
    private readonly members: MemberView,
    private readonly pool: PeerPool,
    private readonly defaults: { timeoutMs: number },
  ) {}

  /** Service name → ids of the ready instances offering it. */
  instances(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const m of this.members.ready('compute')) {
      for (const s of servicesOf(m)) {
        const list = out.get(s) ?? [];
        list.push(m.id);
        out.set(s, list);
      }
    }
    return out;
  }

  async call<R>(service: string, payload: unknown, options: ServiceCallOptions): Promise<R> {
    if (typeof service !== 'string' || service === '') throw new InvalidArgumentError('service must be a non-empty string');
    const timeoutMs = options.timeoutMs ?? this.defaults.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const strategy = this.strategy(options.strategy ?? 'round-robin');
    const tried = new Set<string>();
    let lastError: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && Date.now() < deadline; attempt++) {
      const candidates = this.candidates(service, tried);
      if (candidates.length === 0) break;
      const chosen =
        options.key !== undefined
          ? candidates.find((c) => c.id === pickByKey(options.key!, candidates.map((x) => x.id)))!
          : (strategy.choose(candidates) as Tracked);
      tried.add(chosen.id);
      const started = Date.now();
      let sent = false;
      chosen.inFlight++;
      try {
        const connection =
          this.pool.live(chosen.id) ??
          (await (await this.pool.get(chosen.id, Math.min(deadline, Date.now() + 1000))).get());
        sent = true;
        const result = await connection.call<R>(
          'svc.call',
          { service, payload: payload ?? null, timeoutMs: Math.max(1, deadline - Date.now()) },
          { timeoutMs: Math.max(1, deadline - Date.now()), maxBytes: MAX_CALL_BYTES },
        );
        chosen.health.recordSuccess(Date.now());
        chosen.latencyMs = chosen.latencyMs * (1 - EWMA) + (Date.now() - started) * EWMA;
        return result;
      } catch (err) {
        lastError = err;
        if (!isTransportFailure(err)) {
          // The instance answered: an application error (or a stale announcement) is not its health's fault.
          if (err instanceof UnknownServiceError) continue;
          throw err;
        }
        chosen.health.recordFailure(Date.now());
        if (sent && !options.idempotent) throw err;
      } finally {
        chosen.inFlight--;
      }
    }
    if (lastError) throw lastError;
    if (Date.now() >= deadline) throw new TimeoutError(`no answer from service ${service} within ${timeoutMs} ms`);
    const offered = this.members.all().some((m) => m.role === 'compute' && servicesOf(m).includes(service));
    if (!offered) throw new UnknownServiceError(`no compute node offers service ${JSON.stringify(service)}`, { details: { service } });
    throw new UnavailableError(`every instance of ${service} is draining or ejected`, { details: { service } });
  }

  close(): void {
    this.tracked.clear();
  }

  private strategy(name: StrategyName): Strategy {
    let s = this.strategies.get(name);
    if (!s) this.strategies.set(name, (s = createStrategy(name)));
    return s;
  }

  /** Ready instances of the service not tried yet in this call, not ejected; probes the ones due for it. */
  private candidates(service: string, tried: Set<string>): Tracked[] {
    const now = Date.now();
    const out: Tracked[] = [];
    for (const m of this.members.ready('compute')) {
      if (tried.has(m.id) || !servicesOf(m).includes(service)) continue;
      const t = this.track(m.id);
      if (t.health.isAvailable(now)) out.push(t);
      else if (t.health.needsProbe(now)) this.probe(m, t);
    }
    return out;
  }

  private track(id: string): Tracked {
    let t = this.tracked.get(id);
    if (!t) this.tracked.set(id, (t = { id, inFlight: 0, latencyMs: 0, health: new InstanceHealth(), probing: false }));
    return t;
  }

  /** Asks an ejected instance whether it answers again; it takes calls only after it does. */
  private probe(member: MemberRecord, t: Tracked): void {
    if (t.probing) return;
    t.probing = true;
    const peer = this.pool.peerAt(member.id, member.address, Date.now() + 1000);
    peer
      .call('node.ping', null, { timeoutMs: 1000 })
      .then(
        () => t.health.probeSucceeded(Date.now()),
        () => t.health.probeFailed(Date.now()),
      )
      .finally(() => (t.probing = false));
  }
}

function servicesOf(m: MemberRecord): string[] {
  return Array.isArray(m.services) ? (m.services as string[]) : [];
}

/** Failures of the path to the instance (or of the instance as a whole), as opposed to answers from it. */
function isTransportFailure(err: unknown): boolean {
  return err instanceof ConnectionError || err instanceof UnavailableError;
}
