/**
 * User services: the handlers a compute node hosts, loaded from the user's module (TypeScript or JavaScript).
 *
 * A services module exports its handlers as the default export or as `services`: an object whose keys are service
 * names and whose values are functions, or `{ handler, timeoutMs }` for a service with its own deadline.
 *
 * @example
 * ```ts
 * // services.ts
 * import type { ServiceContext } from 'shardflow';
 * export default {
 *   echo: (payload: unknown) => payload,
 *   add: async ({ a, b }: { a: number; b: number }) => a + b,
 *   slow: { timeoutMs: 60_000, handler: async (_: unknown, ctx: ServiceContext) => crunch(ctx.signal) },
 * };
 * ```
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors/index.js';

/** What a handler gets besides its payload. */
export interface ServiceContext {
  /** The service's name. */
  service: string;
  /** The id of the node running it. */
  node: string;
  /** Aborted when the call's deadline passes or the node stops: long work should watch it. */
  signal: AbortSignal;
  /** When the caller stops waiting (ms since the epoch). */
  deadline: number;
}

export type ServiceHandler = (payload: any, context: ServiceContext) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ServiceDefinition {
  handler: ServiceHandler;
  /** Longest a call may run on this node (default 30 s; a caller's shorter deadline wins). */
  timeoutMs?: number;
}

export const DEFAULT_SERVICE_TIMEOUT_MS = 30_000;
const SERVICE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,99}$/;

/** Checks a service name: a letter, then up to 99 letters, digits, `_`, `.`, `:` or `-`. */
export function isServiceName(name: unknown): name is string {
  return typeof name === 'string' && SERVICE_NAME.test(name);
}

/** Turns a module's exports into checked service definitions; throws {@link ConfigError} saying what is wrong. */
export function servicesFromModule(exports: Record<string, unknown>, source: string): Map<string, ServiceDefinition> {
  const table = (exports.services ?? exports.default) as unknown;
  if (typeof table !== 'object' || table === null) {
    throw new ConfigError(`${source} exports no services: export default { name: handler, ... } (or export const services)`);
  }
  const out = new Map<string, ServiceDefinition>();
  for (const [name, value] of Object.entries(table)) {
    if (!isServiceName(name)) throw new ConfigError(`${source}: ${JSON.stringify(name)} is not a valid service name`);
    const def: ServiceDefinition | undefined =
      typeof value === 'function'
        ? { handler: value as ServiceHandler }
        : typeof value === 'object' && value !== null && typeof (value as ServiceDefinition).handler === 'function'
          ? (value as ServiceDefinition)
          : undefined;
    if (!def) throw new ConfigError(`${source}: service ${name} is neither a function nor { handler }`);
    if (def.timeoutMs !== undefined && !(Number.isInteger(def.timeoutMs) && def.timeoutMs > 0)) {
      throw new ConfigError(`${source}: service ${name} has a timeoutMs that is not a positive integer`);
    }
    out.set(name, def);
  }
  if (out.size === 0) throw new ConfigError(`${source} defines no services`);
  return out;
}

/** Loads a services module by path. A module that fails to import or defines nothing usable is a {@link ConfigError}. */
export async function loadServices(file: string): Promise<Map<string, ServiceDefinition>> {
  const path = resolve(file);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new ConfigError(`cannot load services from ${path}: ${why}`, { cause });
  }
  return servicesFromModule(exports, path);
}
