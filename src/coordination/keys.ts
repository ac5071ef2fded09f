/**
 * Where shardflow keeps its metadata in the coordinator's key space. Every key lives under {@link ROOT}, one folder
 * per kind of record, so a watch on a folder sees exactly one kind and `list(ROOT)` shows a whole cluster.
 *
 * ```
 * /shardflow/members/<nodeId>        JSON MemberInfo, attached to the node's lease
 * /shardflow/elections/<election>    the leader's candidate name, attached to the leader's lease
 * /shardflow/namespaces/<name>       JSON routing record (keyspace/routing-table.ts): owners, epoch, moves
 * ```
 *
 * Folders end with `/` so that a prefix never matches a sibling (`members/` does not match `membersX`).
 */

/** The root of every shardflow key. Isolation between clusters sharing one etcd is the etcd `prefix` option's job. */
export const ROOT = '/shardflow/';

/** Folder of the membership records. */
export const MEMBERS_PREFIX = `${ROOT}members/`;
/** Folder of the election keys. */
export const ELECTIONS_PREFIX = `${ROOT}elections/`;
/** Folder of the namespaces' routing records. */
export const NAMESPACES_PREFIX = `${ROOT}namespaces/`;

/** Key of one member's record. */
export function memberKey(nodeId: string): string {
  return MEMBERS_PREFIX + nodeId;
}

/** Key of one election. */
export function electionKey(election: string): string {
  return ELECTIONS_PREFIX + election;
}
