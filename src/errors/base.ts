/**
 * The root of every error shardflow throws on purpose.
 *
 * Each subclass has a stable `code`, says whether retrying the same operation can help (`retryable`), keeps the
 * underlying `cause`, and may carry structured `details` (for example the new owner in a {@link MovedError}).
 * Errors cross the wire as `{ code, message, retryable, details }` and are rebuilt on the other side as the same class
 * (see `toWireError` / `fromWireError`), so `err instanceof MovedError` works in a client for an error raised by a node.
 *
 * @example
 * ```ts
 * import { ShardflowError, TimeoutError } from 'shardflow';
 * try { await client.get('users', 'u1'); }
 * catch (err) { if (err instanceof ShardflowError && err.retryable) { ... } }
 * ```
 */
export class ShardflowError extends Error {
  /** Stable machine-readable code, e.g. `MOVED`. Subclasses override it. */
  readonly code: string = 'SHARDFLOW_ERROR';
  /** Whether the same operation may succeed if tried again (perhaps after refreshing routing). */
  readonly retryable: boolean;
  /** Structured facts about the failure; plain data that survives msgpack. */
  readonly details: Record<string, unknown>;

  constructor(
    message: string,
    options: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Options every error constructor accepts. */
export interface ErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}
