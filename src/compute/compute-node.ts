/**
 * A compute node: stateless, so any instance can serve any request. For now it announces itself through membership
 * and answers pings; hosting user services and dispatch across instances build on this (issue 3).
 */
import type { Coordinator } from '../coordination/coordinator.js';
import { registerNode, type NodeRegistration } from '../coordination/index.js';
import { UnknownMethodError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { RpcServer } from '../wire/index.js';

export interface ComputeNodeOptions {
  id: string;
  secret: Uint8Array;
  coordinator: Coordinator;
  listenHost?: string;
  listenPort?: number;
  advertiseHost?: string;
  capacity?: number;
  leaseTtlMs?: number;
  logger?: Logger;
}

export class ComputeNode {
  private constructor(
    readonly id: string,
    readonly address: string,
    private readonly server: RpcServer,
    private readonly registration: NodeRegistration,
    private readonly log: Logger,
  ) {}

  /**
   * @example
   * ```ts
   * const node = await ComputeNode.start({ id: 'c1', secret, coordinator });
   * ```
   */
  static async start(options: ComputeNodeOptions): Promise<ComputeNode> {
    const log = options.logger ?? createLogger(`compute:${options.id}`);
    const server = new RpcServer({
      secret: options.secret,
      logger: log,
      handler: (method) => {
        if (method === 'node.ping') return { id: options.id, role: 'compute' };
        if (method === 'node.stats') return { id: options.id, services: [] };
        throw new UnknownMethodError(`unknown method ${method}`);
      },
    });
    const bound = await server.listen(options.listenPort ?? 0, options.listenHost ?? '127.0.0.1');
    const address = `${options.advertiseHost ?? options.listenHost ?? '127.0.0.1'}:${bound.port}`;
    const registration = await registerNode(
      options.coordinator,
      { id: options.id, role: 'compute', address, capacity: options.capacity ?? 1, pid: process.pid, services: [] },
      { ttlMs: options.leaseTtlMs ?? 1000 },
    );
    log.info('compute node ready', { address });
    return new ComputeNode(options.id, address, server, registration, log);
  }

  async stop(): Promise<void> {
    await this.registration.leave().catch((err: unknown) => this.log.warn('leave failed', { error: String(err) }));
    await this.server.close();
  }
}
