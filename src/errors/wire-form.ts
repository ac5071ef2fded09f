/** How an error travels: plain data out, the same class back in. */
import { ShardflowError } from './base.js';
import { errorClassesByCode, InternalError } from './classes.js';

/** The plain form of an error on the wire. */
export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
  /** The cause's message chain, flattened; causes are not rebuilt as classes. */
  cause?: string;
}

function causeText(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return String(cause);
}

/** Turns any thrown value into its wire form. Unknown errors become `INTERNAL` with their message kept. */
export function toWireError(err: unknown): WireError {
  if (err instanceof ShardflowError) {
    const out: WireError = { code: err.code, message: err.message, retryable: err.retryable };
    if (Object.keys(err.details).length > 0) out.details = err.details;
    const cause = causeText(err.cause);
    if (cause !== undefined) out.cause = cause;
    return out;
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { code: InternalError.code, message, retryable: false };
}

/** Rebuilds the named class for a wire error; an unknown code becomes a plain {@link ShardflowError}. */
export function fromWireError(wire: WireError): ShardflowError {
  const cls = errorClassesByCode.get(wire.code);
  const options = {
    details: wire.details ?? {},
    ...(wire.cause !== undefined ? { cause: new Error(wire.cause) } : {}),
  };
  if (cls) return new cls(wire.message, options);
  const err = new ShardflowError(wire.message, { ...options, retryable: wire.retryable });
  Object.defineProperty(err, 'code', { value: wire.code });
  return err;
}

/** True when the value looks like a {@link WireError} (used to validate frames). */
export function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === 'string' && typeof v.message === 'string' && typeof v.retryable === 'boolean';
}
