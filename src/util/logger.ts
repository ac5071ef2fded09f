/**
 * A small leveled logger writing one line per event to stderr. Level comes from `SHARDFLOW_LOG`
 * (`debug`, `info`, `warn`, `error`, `silent`; default `info`). Lines are `time level component message {fields}`,
 * easy for people and for a log shipper to read.
 */
const levels = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof levels;

function threshold(): number {
  const env = (process.env.SHARDFLOW_LOG ?? 'info').toLowerCase();
  return env in levels ? levels[env as LogLevel] : levels.info;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

/** Creates a logger for one component, e.g. `createLogger('storage:n1')`. */
export function createLogger(component: string): Logger {
  const min = threshold();
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (levels[level] < min) return;
    const extra = fields && Object.keys(fields).length > 0 ? ' ' + safeJson(fields) : '';
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${component} ${message}${extra}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (sub) => createLogger(`${component}:${sub}`),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v));
  } catch {
    return '[unserialisable]';
  }
}
