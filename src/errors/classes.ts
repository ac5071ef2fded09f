/**
 * Every named failure, with its code and whether a retry helps. One class per failure a caller may want to catch.
 */
import { ShardflowError, type ErrorOptions } from './base.js';

function make<C extends string>(code: C, name: string, retryable: boolean) {
  const cls = class extends ShardflowError {
    override readonly code: C = code;
    static readonly code: C = code;
    constructor(message: string, options: ErrorOptions = {}) {
      super(message, { ...options, retryable });
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

/** A frame could not be decoded, or broke the protocol's rules. The connection is closed. */
export class ProtocolError extends make('PROTOCOL_ERROR', 'ProtocolError', false) {}
/** A frame, key or value was larger than the configured limit. */
export class TooLargeError extends make('TOO_LARGE', 'TooLargeError', false) {}
/** The peer did not prove knowledge of the cluster secret, or used another protocol version. */
export class AuthenticationError extends make('AUTH_FAILED', 'AuthenticationError', false) {}
/** No answer within the deadline. The operation may or may not have taken effect. */
export class TimeoutError extends make('TIMEOUT', 'TimeoutError', true) {}
/** The connection closed (or could not be opened) before the answer arrived. */
export class ConnectionError extends make('CONNECTION_ERROR', 'ConnectionError', true) {}
/** The peer has no handler for the requested method. */
export class UnknownMethodError extends make('UNKNOWN_METHOD', 'UnknownMethodError', false) {}
/** An argument failed validation: bad key, bad value, bad option. Nothing was changed. */
export class InvalidArgumentError extends make('INVALID_ARGUMENT', 'InvalidArgumentError', false) {}
/** The namespace (table) does not exist. */
export class UnknownNamespaceError extends make('UNKNOWN_NAMESPACE', 'UnknownNamespaceError', false) {}
/** The namespace already exists (with a different definition). */
export class NamespaceExistsError extends make('NAMESPACE_EXISTS', 'NamespaceExistsError', false) {}
/**
 * The partition is owned by another node. `details` holds `{ namespace, partition, epoch, owner, address }`;
 * a client refreshes its routing map and retries there.
 */
export class MovedError extends make('MOVED', 'MovedError', true) {}
/** The request carried a routing epoch older than the node's; refresh the map and retry. */
export class StaleEpochError extends make('STALE_EPOCH', 'StaleEpochError', true) {}
/** A conditional write found another version than expected. `details.actual` holds the current version. */
export class VersionConflictError extends make('VERSION_CONFLICT', 'VersionConflictError', false) {}
/** The coordinator (embedded or etcd) could not be reached or refused the operation. */
export class CoordinatorError extends make('COORDINATOR_ERROR', 'CoordinatorError', true) {}
/** A node is not serving (starting, stopping, or not ready for this partition yet). */
export class UnavailableError extends make('UNAVAILABLE', 'UnavailableError', true) {}
/** Configuration or command-line input that cannot be used. */
export class ConfigError extends make('CONFIG_ERROR', 'ConfigError', false) {}
/** No cluster is running in the given directory, or it cannot be reached. */
export class ClusterNotRunningError extends make('CLUSTER_NOT_RUNNING', 'ClusterNotRunningError', false) {}
/** No service of that name is offered (by this node, or by any node for a caller). */
export class UnknownServiceError extends make('UNKNOWN_SERVICE', 'UnknownServiceError', false) {}
/** A service handler threw; `details.errorName` names what it threw. Retrying runs the handler again. */
export class ServiceError extends make('SERVICE_FAILED', 'ServiceError', false) {}
/**
 * Another operation holds what this one needs (e.g. a rebalance is already running). `details` says who holds it;
 * retry once it is done.
 */
export class BusyError extends make('BUSY', 'BusyError', true) {}
/**
 * The object was closed by its owner (a sink writer, a source reader) and takes no more work. Not retryable on the
 * same object: open a new one.
 */
export class ClosedError extends make('CLOSED', 'ClosedError', false) {}
/**
 * A partition has fewer in-sync copies than a write needs (a majority of its configured copies), or lost them while
 * the write was being replicated: the write is not acknowledged. Retry once the copies are back (`details` says how
 * many are in sync and how many are needed).
 */
export class NotEnoughReplicasError extends make('NOT_ENOUGH_REPLICAS', 'NotEnoughReplicasError', true) {}
/**
 * A node that may no longer lead a replicated partition refused a request without doing anything: its membership
 * lease lapsed (it lost touch with the coordinator), so a successor may have been chosen. Retry: the client looks the
 * leader up again (`details`: namespace, partition, node).
 */
export class NotLeaderError extends make('NOT_LEADER', 'NotLeaderError', true) {}
/** A bug or an unexpected failure on the remote side; its message is kept. */
export class InternalError extends make('INTERNAL', 'InternalError', false) {}

/** Every class above, keyed by code, so the wire can rebuild the right one. */
export const errorClassesByCode: ReadonlyMap<string, new (message: string, options?: ErrorOptions) => ShardflowError> =
  new Map(
    [
      ProtocolError,
      TooLargeError,
      AuthenticationError,
      TimeoutError,
      ConnectionError,
      UnknownMethodError,
      InvalidArgumentError,
      UnknownNamespaceError,
      NamespaceExistsError,
      MovedError,
      StaleEpochError,
      NotEnoughReplicasError,
      NotLeaderError,
      VersionConflictError,
      CoordinatorError,
      UnavailableError,
      ConfigError,
      ClusterNotRunningError,
      UnknownServiceError,
      ServiceError,
      BusyError,
      InternalError,
      ClosedError,
    ].map((cls) => [cls.code, cls]),
  );
