/**
 * Running a user-supplied command (a "hook") safely: no shell, arguments substituted into a template after it was
 * split into words (so a value can never become two arguments or shell syntax), a deadline, output kept to a bounded
 * tail, and every failure a named error.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { ConfigError, TimeoutError, UnavailableError } from '../errors/index.js';

/** The placeholders a hook template may use: `{tier}`, `{count}`, `{from}`, `{nodes}`, `{dir}`. */
export const HOOK_PLACEHOLDERS = ['tier', 'count', 'from', 'nodes', 'dir'] as const;
export type HookPlaceholder = (typeof HOOK_PLACEHOLDERS)[number];

/** Default deadline of one hook run: scaling a cloud group can take minutes. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10 * 60_000;
/** Default bytes of stdout and of stderr kept (the tail: errors are usually at the end). */
export const DEFAULT_HOOK_OUTPUT_BYTES = 64 * 1024;

// In the one-string form these would mean something to a shell and nothing here: refuse rather than surprise.
const SHELL_SYNTAX = /['"`$|;&<>()\\*?\n\r]/;

/**
 * Checks a hook command and returns it as words. Accepts an array of words (`["./scale.sh", "{tier}", "{count}"]`),
 * or one string split on whitespace (`"./scale.sh {tier} {count}"`) that must not contain quotes or other shell
 * syntax: the command runs without a shell, so use the array form for a word with spaces.
 *
 * @throws ConfigError naming `what` for an empty command, shell syntax in the string form, or an unknown
 * placeholder (`{tier}`, `{count}`, `{from}`, `{nodes}` and `{dir}` are known).
 *
 * @example
 * ```ts
 * parseHookCommand('./my-scaler.sh {tier} {count}');          // ['./my-scaler.sh', '{tier}', '{count}']
 * parseHookCommand(['kubectl', 'scale', 'sts/{tier}', '--replicas={count}']);
 * parseHookCommand('scale.sh $TIER');                          // ConfigError: shell syntax
 * ```
 */
export function parseHookCommand(command: unknown, what = 'command'): string[] {
  let words: string[];
  if (typeof command === 'string') {
    if (SHELL_SYNTAX.test(command) || /(^|\s)~/.test(command)) {
      throw new ConfigError(
        `${what} ${JSON.stringify(command)} contains shell syntax, but it runs without a shell: write it as an array of words`,
        { details: { field: what } },
      );
    }
    words = command.trim().split(/\s+/).filter(Boolean);
  } else if (Array.isArray(command) && command.every((w) => typeof w === 'string')) {
    words = [...(command as string[])];
  } else {
    throw new ConfigError(`${what} must be a string or an array of strings`, { details: { field: what } });
  }
  if (words.length === 0 || words[0]!.trim() === '') throw new ConfigError(`${what} is empty`, { details: { field: what } });
  if (/\{[a-z]+\}/i.test(words[0]!)) {
    throw new ConfigError(`${what}: the program itself cannot be a placeholder`, { details: { field: what } });
  }
  for (const word of words) {
    for (const [, name] of word.matchAll(/\{([^{}]*)\}/g)) {
      if (!(HOOK_PLACEHOLDERS as readonly string[]).includes(name!)) {
        throw new ConfigError(`${what}: unknown placeholder {${name}} (known: ${HOOK_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`, {
          details: { field: what, placeholder: name },
        });
      }
    }
  }
  return words;
}

/** The words with every placeholder replaced; each word stays one argument whatever the values hold. */
export function expandHookCommand(words: readonly string[], values: Record<HookPlaceholder, string>): string[] {
  return words.map((w) => w.replace(/\{([a-z]+)\}/g, (_m, name: string) => values[name as HookPlaceholder] ?? `{${name}}`));
}

/** How one hook runs. */
export interface HookRunOptions {
  /** Kill it (its whole process group: SIGTERM, then SIGKILL) after this long. */
  timeoutMs?: number;
  /** Bytes kept of stdout and of stderr each: the last ones. */
  maxOutputBytes?: number;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
}

/** What a hook that exited 0 printed. */
export interface HookResult {
  stdout: string;
  stderr: string;
  /** Whether output was longer than `maxOutputBytes` and only its tail is here. */
  truncated: boolean;
  ms: number;
}

/**
 * Runs `argv` (no shell) and resolves once it exits 0.
 *
 * The hook runs in its own process group, so a timeout stops whatever it started too. After it exits, output still
 * held open by something it left running is not waited for beyond a second.
 *
 * @throws ConfigError when it cannot be started (no such file, not executable), {@link TimeoutError} when it runs past
 * `timeoutMs`, {@link UnavailableError} (retryable) when it exits non-zero or is killed by a signal; `details` holds
 * the command, exit code or signal, and the tail of stderr.
 *
 * @example
 * ```ts
 * const { stdout } = await runHook(['./my-scaler.sh', 'compute', '3'], { timeoutMs: 60_000 });
 * ```
 */
export function runHook(argv: readonly string[], options: HookRunOptions = {}): Promise<HookResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  const limit = options.maxOutputBytes ?? DEFAULT_HOOK_OUTPUT_BYTES;
  const shown = argv.map((a) => (/^[\w./:=,@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const stdout = new Tail(limit);
    const stderr = new Tail(limit);
    const child = spawn(argv[0]!, argv.slice(1), {
      shell: false,
      detached: true, // its own process group: a timeout kills what it started as well
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
    });
    let settled = false;
    let timedOut = false;
    let exitGrace: NodeJS.Timeout | undefined;
    const details = () => ({ command: shown, stderr: stderr.text(), stdout: stdout.text() });
    const finish = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(exitGrace);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (err) reject(err);
      else resolve({ stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.truncated || stderr.truncated, ms: Date.now() - started });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), 2000).unref();
    }, timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', (err: NodeJS.ErrnoException) =>
      finish(new ConfigError(`cannot run ${shown}: ${err.code ?? err.message}`, { cause: err, details: { command: shown } })),
    );
    const exited = (code: number | null, signal: NodeJS.Signals | null) => {
      if (timedOut) {
        finish(new TimeoutError(`${shown} did not finish in ${timeoutMs} ms and was stopped`, { details: { ...details(), timeoutMs } }));
      } else if (code === 0) {
        finish(undefined);
      } else {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const tail = stderr.text().trim().split('\n').slice(-3).join(' | ');
        finish(new UnavailableError(`${shown} ${how}${tail ? `: ${tail}` : ''}`, { details: { ...details(), exitCode: code, signal } }));
      }
    };
    child.once('close', exited);
    child.once('exit', (code, signal) => {
      exitGrace = setTimeout(() => exited(code, signal), 1000);
    });
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

/** The last `limit` bytes of a stream. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      this.truncated = true;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
