/**
 * A compute node: stateless, so any instance can serve any call. It hosts the services of a user's module and
 * announces them through membership the moment it can serve ("I can do this job now; whoever needs it, come to
 * me"); it withdraws them before it stops.
 *
 * Stopping drains: the node announces `draining` (callers stop choosing it), keeps serving what still arrives for a
 * short grace period (callers that chose it before they saw the announcement), waits for its in-flight calls, and
 * only then leaves and closes its port — so a scale-in fails no call.
 */
import type { Coordinator } from '../coordination/coordinator.js';
import { registerNode, type NodeRegistration } from '../coordination/index.js';
import { UnavailableError, UnknownMethodError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { RpcServer } from '../wire/index.js';
import { MAX_CALL_BYTES } from '../keyspace/index.js';
import { ServiceHost, type ServiceStats } from './service-host.js';
import type { ServiceDefinition } from './services.js';


export interface ComputeNodeOptions {
  id: string;
  secret: Uint8Array;
  coordinator: Coordinator;
  /** The services to host (see `loadServices`); none is allowed — the node then only announces itself. */
  services?: ReadonlyMap<string, ServiceDefinition>;
  listenHost?: string;
  listenPort?: number;
  advertiseHost?: string;
  capacity?: number;
  leaseTtlMs?: number;
  /** Handlers of other methods by prefix, served from the moment the node announces itself (`job.` for the node's job host). */
  routes?: ReadonlyMap<string, RouteHandler>;
  /** How long a draining node still serves calls that arrive (default 500 ms). */
  drainGraceMs?: number;
  /** Longest a drain waits for in-flight calls before stopping anyway (default 30 s). */
  drainTimeoutMs?: number;
  logger?: Logger;
}

/** Serves calls of methods outside the node's own (`job.` for the node's job host). */
export type RouteHandler = (method: string, params: unknown) => unknown;

/** What `node.stats` answers for a compute node. */
export interface ComputeStats {
  id: string;
  role: 'compute';
  state: 'ready' | 'draining';
  inFlight: number;
  callsPerSec: number;
  services: ServiceStats[];
}

export class ComputeNode {
  private draining = false;

  private constructor(
    readonly id: string,
    readonly address: string,
    private readonly host: ServiceHost,
    private readonly server: RpcServer,
    private readonly registration: NodeRegistration,
    private readonly options: ComputeNodeOptions,
    private readonly log: Logger,
  ) {}

  /**
   * @example
   * ```ts
   * const services = await loadServices('./services.ts');
   * const node = await ComputeNode.start({ id: 'c1', secret, coordinator, services });
   * ```
   */
  static async start(options: ComputeNodeOptions): Promise<ComputeNode> {
    const log = options.logger ?? createLogger(`compute:${options.id}`);
    const host = new ServiceHost(options.id, options.services ?? new Map());
    let node: ComputeNode | undefined;
    const routes = new Map<string, RouteHandler>(options.routes ?? []);
    const server = new RpcServer({
      secret: options.secret,
      logger: log,
      maxRequestBytes: MAX_CALL_BYTES,
      handler: (method, params) => {
        if (method === 'svc.call') return host.call(params);
        if (method === 'node.ping') return { id: options.id, role: 'compute', state: node?.state ?? 'ready' };
        if (method === 'node.stats') return node?.stats();
        for (const [prefix, route] of routes) if (method.startsWith(prefix)) return route(method, params);
        throw new UnknownMethodError(`unknown method ${method}`);
      },
    });
    const bound = await server.listen(options.listenPort ?? 0, options.listenHost ?? '127.0.0.1');
    const address = `${options.advertiseHost ?? options.listenHost ?? '127.0.0.1'}:${bound.port}`;
    const registration = await registerNode(
      options.coordinator,
      { id: options.id, role: 'compute', address, capacity: options.capacity ?? 1, pid: process.pid, services: host.names() },
      { ttlMs: options.leaseTtlMs ?? 1000 },
    );
    node = new ComputeNode(options.id, address, host, server, registration, options, log);
    log.info('compute node ready', { address, services: host.names() });
    return node;
  }

  get state(): 'ready' | 'draining' {
    return this.draining ? 'draining' : 'ready';
  }

  stats(): ComputeStats {
    return { id: this.id, role: 'compute', state: this.state, ...this.host.stats() };
  }

  /** Drains (see the module comment), then leaves the cluster and closes the port. */
  async stop(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      await this.registration
        .update({ state: 'draining' })
        .catch((err: unknown) => this.log.warn('could not announce draining', { error: String(err) }));
      await new Promise((r) => setTimeout(r, this.options.drainGraceMs ?? 500));
      const timeout = this.options.drainTimeoutMs ?? 30_000;
      const idle = await Promise.race([
        this.host.whenIdle().then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), timeout).unref()),
      ]);
      if (!idle) {
        this.log.warn('drain timed out; stopping with calls still running', { inFlight: this.host.inFlight });
        this.host.abortAll(new UnavailableError(`node ${this.id} is stopping`));
      }
    }
    await this.registration.leave().catch((err: unknown) => this.log.warn('leave failed', { error: String(err) }));
    await this.server.close();
  }
}
