/**
 * One reconnecting connection per node, found by node id through membership. Shared by the key-value path and the
 * service-call path of a client, so a client holds at most one connection to each node.
 */
import { UnavailableError } from '../errors/index.js';
import { Peer, splitAddress, type Connection } from '../wire/index.js';
import type { MemberView } from './member-view.js';

export { splitAddress };

export class PeerPool {
  private readonly peers = new Map<string, Peer>();

  constructor(
    private readonly members: MemberView,
    private readonly secret: Uint8Array,
    private readonly name: string,
  ) {}

  /**
   * The open connection to a node at its current address, if there is one now (no waiting). With `anyState`, a node
   * that is draining counts too (its in-flight work may still be answered).
   */
  live(nodeId: string, anyState = false): Connection | undefined {
    const member = this.members.get(nodeId);
    const peer = this.peers.get(nodeId);
    const serving = member?.state === 'ready' || member?.state === 'stopping';
    if (!member || (!anyState && !serving) || !peer || peer.address !== member.address) return undefined;
    return peer.current();
  }

  /** The handle to a node, waiting (until `deadline`) for it to be registered and ready. */
  async get(nodeId: string, deadline: number): Promise<Peer> {
    const member = await this.members.waitFor(nodeId, deadline);
    if (!member) throw new UnavailableError(`node ${nodeId} is not up`, { details: { node: nodeId } });
    return this.peerAt(nodeId, member.address, deadline);
  }

  /** The handle to a node at a known address (no membership wait). */
  peerAt(nodeId: string, address: string, deadline: number): Peer {
    let peer = this.peers.get(nodeId);
    if (!peer || peer.address !== address) {
      peer?.close();
      const [host, port] = splitAddress(address);
      peer = new Peer({
        host,
        port,
        secret: this.secret,
        name: this.name,
        connectTimeoutMs: Math.max(100, Math.min(3000, deadline - Date.now())),
      });
      this.peers.set(nodeId, peer);
    }
    return peer;
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}
