/**
 * The Moleculer setup bench:compute compares against, shared by the caller (the benchmark process) and the
 * service-hosting processes (moleculer-node.ts): TCP transporter with UDP discovery off and static `urls` (so the
 * nodes find each other only at the loopback addresses given), round-robin over the instances, metrics and tracing
 * off, default JSON serializer, no request timeout (Moleculer's default).
 */
import moleculer from 'moleculer';

export const NAMESPACE = 'shardflow-bench';
export const ECHO_ACTION = 'echo.echo';

export function brokerOptions(nodeID: string, urls: string[] = [], caller = false): moleculer.BrokerOptions {
  return {
    nodeID,
    // The caller lives in the benchmark process, whose own cleanup handles signals; a service process lets Moleculer
    // stop the broker and exit on SIGTERM.
    skipProcessEventRegistration: caller,
    namespace: NAMESPACE,
    transporter: {
      type: 'TCP',
      options: {
        // No UDP discovery (no multicast or broadcast packets at all): peers come from `urls` and gossip only.
        udpDiscovery: false,
        urls: urls.length > 0 ? urls : null,
        // Addresses a node advertises come from its registry entry, which loopbackOnly() sets to 127.0.0.1.
        useHostname: true,
      },
    },
    registry: { strategy: 'RoundRobin', preferLocal: false },
    metrics: false,
    tracing: false,
    logger: { type: 'Console', options: { level: 'warn' } },
  };
}

/**
 * Makes the broker advertise 127.0.0.1 as its only address (instead of the host name and every non-internal
 * interface address), so that gossip never leads a peer to connect anywhere but the loopback interface. Call it
 * after constructing the broker, before `start()`.
 */
export function loopbackOnly(broker: moleculer.ServiceBroker): void {
  const local = (broker.registry as unknown as { nodes: { localNode: { hostname: string; ipList: string[] } } }).nodes
    .localNode;
  local.hostname = '127.0.0.1';
  local.ipList = ['127.0.0.1'];
}

/** The TCP port the broker's transporter listens on (after `start()`). */
export function transporterPort(broker: moleculer.ServiceBroker): number {
  const port = (broker.registry as unknown as { nodes: { localNode: { port: unknown } } }).nodes.localNode.port;
  if (typeof port !== 'number' || port <= 0) throw new Error(`Moleculer broker ${broker.nodeID} has no TCP port`);
  return port;
}
