/**
 * Separate hosts on one Linux machine for tests: network namespaces joined by veth pairs to a bridge in the root
 * namespace, real processes started inside them, and a cut (the host-side veth down) that isolates one of them the
 * way a pulled cable does — packets vanish, nothing is refused — until it is healed; or blackhole routes that drop
 * what one host sends to another (for partial partitions).
 *
 * ```text
 *   root namespace                                 namespace sf<id>1        (…2, …3)
 *   bridge sfbr<id> 10.213.X.1/24 ── sf<id>h1 ═══ sf<id>n1 10.213.X.11/24, lo up
 *   (etcd, the test's client)
 * ```
 *
 * Every name carries a random id, so a run never meets the leftovers of a crashed earlier one; `destroy()` kills
 * every process started here (and anything else left inside the namespaces, which only this run used), then removes
 * the namespaces, veths and bridge. Needs root and iproute2 (`ip netns`): {@link netnsSupport} says why not.
 *
 * @example
 * ```ts
 * const net = await createNetwork({ hosts: 3 });
 * try {
 *   const etcd = await startEtcdOn(net.gateway);
 *   const s1 = await startStorageNodeIn(net, net.hosts[0]!, { id: 's1', coordinator: `etcd://${net.gateway}:${etcd.port}`, ... });
 *   await net.cut(net.hosts[0]!);
 *   await net.heal(net.hosts[0]!);
 * } finally {
 *   await net.destroy();
 * }
 * ```
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { freePort } from './ports.js';
import { spawnServer } from './spawn-server.js';

const REPO = join(import.meta.dirname, '../..');

/** Whether this process can build namespaces (root, iproute2 with netns, etcd on PATH); if not, why. */
export function netnsSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return { ok: false, reason: `network namespaces need root (uid ${process.getuid?.() ?? '?'})` };
  }
  const probe = `sfprobe${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (err) {
    return { ok: false, reason: `'ip netns add' does not work here: ${firstLine(err)}` };
  }
  try {
    execFileSync('ip', ['netns', 'exec', probe, 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
  } catch (err) {
    return { ok: false, reason: `'ip netns exec' does not work here: ${firstLine(err)}` };
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
    } catch {
      // Nothing runs in it: it goes with its last reference anyway.
    }
  }
  try {
    execFileSync('etcd', ['--version'], { stdio: 'pipe' });
  } catch (err) {
    return { ok: false, reason: `no usable etcd binary on PATH: ${firstLine(err)}` };
  }
  return { ok: true };
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  const text = (e.stderr ? String(e.stderr) : '') || e.message || String(err);
  return text.trim().split('\n')[0] ?? '';
}

/** Runs `ip ...args`; rejects with its stderr. */
export function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** One namespace: its name, the two ends of its veth pair, and its address. */
export interface NetHost {
  index: number;
  ns: string;
  /** The veth end in the root namespace, on the bridge: down = cut off. */
  hostVeth: string;
  /** The veth end inside the namespace. */
  nsVeth: string;
  address: string;
}

export interface SpawnInOptions {
  /** Appends the process's stderr (and stdout unless piped) to this file. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Pipe stdout to the caller (default); else it goes to the log file. */
  pipeStdout?: boolean;
}

export interface TestNetwork {
  /** The random part of every name. */
  readonly id: string;
  readonly bridge: string;
  /** The bridge's address: the root namespace as the namespaces see it. */
  readonly gateway: string;
  readonly hosts: readonly NetHost[];
  /** Takes the host's link down (its side stays up: traffic inside the namespace goes on). */
  cut(host: NetHost): Promise<void>;
  /** Brings the link back. */
  heal(host: NetHost): Promise<void>;
  /**
   * Drops, silently, what `from` (a namespace, or null for the root namespace) sends to `address`: a blackhole route.
   * One direction only — block both ways for a cut between two hosts. Root routes are removed by `destroy()` too.
   */
  block(from: NetHost | null, address: string): Promise<void>;
  /** Removes a {@link block}. */
  unblock(from: NetHost | null, address: string): Promise<void>;
  /** Starts `argv` inside the host's namespace (cwd: the repository); killed by `destroy()` if still running. */
  spawnIn(host: NetHost, argv: string[], options?: SpawnInOptions): ChildProcess;
  /** Kills what runs inside, removes namespaces, veths and bridge. Safe to call twice. */
  destroy(): Promise<void>;
}

/** Builds the bridge and `hosts` namespaces. On failure removes whatever it made and rejects. */
export async function createNetwork(options: { hosts: number }): Promise<TestNetwork> {
  const id = randomBytes(3).toString('hex');
  const bridge = `sfbr${id}`;
  const subnet = await freeSubnet();
  const gateway = `${subnet}.1`;
  const hosts: NetHost[] = Array.from({ length: options.hosts }, (_, i) => ({
    index: i + 1,
    ns: `sf${id}${i + 1}`,
    hostVeth: `sf${id}h${i + 1}`,
    nsVeth: `sf${id}n${i + 1}`,
    address: `${subnet}.${11 + i}`,
  }));
  const children = new Set<ChildProcess>();
  const rootRoutes = new Set<string>();
  const made = { bridge: false, namespaces: [] as NetHost[], veths: [] as NetHost[] };
  let destroyed = false;

  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    // Our own children first (SIGTERM, then SIGKILL), then anything else still in the namespaces: only this run
    // started processes there.
    await Promise.all([...children].map((c) => stopChild(c, 2000)));
    for (const h of made.namespaces) {
      const pids = await ip(['netns', 'pids', h.ns]).catch(() => '');
      for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    const errors: string[] = [];
    for (const r of rootRoutes) await ip(['route', 'del', 'blackhole', r]).catch((e: Error) => errors.push(e.message));
    rootRoutes.clear();
    for (const h of made.namespaces) await ip(['netns', 'del', h.ns]).catch((e: Error) => errors.push(e.message));
    // Deleting a namespace deletes its veth end and so the pair; this only catches a pair left half-made.
    for (const h of made.veths) await ip(['link', 'del', h.hostVeth]).catch(() => undefined);
    if (made.bridge) await ip(['link', 'del', bridge]).catch((e: Error) => errors.push(e.message));
    const left = (await ip(['-o', 'link', 'show']).catch(() => '')).split('\n').filter((l) => l.includes(`sf${id}`) || l.includes(bridge));
    const nsLeft = (await ip(['netns', 'list']).catch(() => '')).split('\n').filter((l) => l.startsWith(`sf${id}`));
    if (left.length > 0 || nsLeft.length > 0 || errors.length > 0) {
      throw new Error(`network ${id} not fully removed: ${[...errors, ...left, ...nsLeft].join('; ')}`);
    }
  };

  try {
    await ip(['link', 'add', bridge, 'type', 'bridge']);
    made.bridge = true;
    await ip(['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await ip(['link', 'set', bridge, 'up']);
    for (const h of hosts) {
      await ip(['netns', 'add', h.ns]);
      made.namespaces.push(h);
      await ip(['link', 'add', h.hostVeth, 'type', 'veth', 'peer', 'name', h.nsVeth, 'netns', h.ns]);
      made.veths.push(h);
      await ip(['link', 'set', h.hostVeth, 'master', bridge]);
      await ip(['link', 'set', h.hostVeth, 'up']);
      await ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', h.nsVeth]);
      await ip(['-n', h.ns, 'link', 'set', h.nsVeth, 'up']);
    }
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  return {
    id,
    bridge,
    gateway,
    hosts,
    cut: (h) => ip(['link', 'set', h.hostVeth, 'down']).then(() => undefined),
    heal: (h) => ip(['link', 'set', h.hostVeth, 'up']).then(() => undefined),
    async block(from, address) {
      if (!hosts.some((h) => h.address === address) && address !== gateway) throw new Error(`${address} is not in network ${id}`);
      await ip([...(from ? ['-n', from.ns] : []), 'route', 'add', 'blackhole', `${address}/32`]);
      if (!from) rootRoutes.add(`${address}/32`);
    },
    async unblock(from, address) {
      await ip([...(from ? ['-n', from.ns] : []), 'route', 'del', 'blackhole', `${address}/32`]);
      if (!from) rootRoutes.delete(`${address}/32`);
    },
    spawnIn(h, argv, opts = {}) {
      if (destroyed) throw new Error('the network is gone');
      const fd = opts.logFile ? openSync(opts.logFile, 'a') : undefined;
      try {
        const pipe = opts.pipeStdout ?? true;
        // `ip netns exec` execs the command: the child's pid is the command's own.
        const child = spawn('ip', ['netns', 'exec', h.ns, ...argv], {
          cwd: REPO,
          env: opts.env ?? process.env,
          stdio: ['ignore', pipe ? 'pipe' : (fd ?? 'ignore'), fd ?? 'ignore'],
        });
        children.add(child);
        child.once('exit', () => children.delete(child));
        child.once('error', () => children.delete(child));
        return child;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    },
    destroy,
  };
}

/** A /24 under 10.213 that no interface or route here uses yet. */
async function freeSubnet(): Promise<string> {
  const used = (await ip(['-4', '-o', 'addr', 'show'])) + (await ip(['-4', 'route', 'show', 'table', 'all']));
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = `10.213.${randomInt(1, 255)}`;
    if (!used.includes(`${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.213.X.0/24 subnet');
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Calls `onLine` for every line the stream prints (kept draining, so the child never blocks on a full pipe). */
export function onLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    rest += chunk.toString();
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
  });
}

export interface EtcdOnHost {
  /** `http://host:port`. */
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * A single-member etcd listening for clients on `host` (e.g. the bridge address) — the same short raft timings as
 * test/harness/etcd.ts, so a lease of TTL 1 s is honoured; peers on loopback.
 */
export async function startEtcdOn(host: string, options: { timeoutMs?: number } = {}): Promise<EtcdOnHost> {
  const port = await freePort(host);
  const peerPort = await freePort();
  const client = `http://${host}:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const { stop } = await spawnServer({
    name: 'etcd-netns',
    command: (dir) => [
      'etcd',
      [
        '--name=sf-netns',
        `--data-dir=${join(dir, 'data')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=sf-netns=${peer}`,
        '--initial-cluster-state=new',
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--logger=zap',
        '--log-level=error',
      ],
    ],
    ready: async () => {
      const res = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
      return ((await res.json()) as { health?: string }).health === 'true';
    },
    timeoutMs: options.timeoutMs ?? 20_000,
  });
  return { endpoint: client, port, stop };
}

/** Resolves once `url` answers an HTTP request from inside the host's namespace (the link works). */
export async function checkReachable(net: TestNetwork, host: NetHost, url: string, timeoutMs = 10_000): Promise<void> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(2000) }).then(() => process.exit(0), (e) => { console.error(String(e.cause ?? e)); process.exit(1); })`;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const child = net.spawnIn(host, [process.execPath, '-e', script], { pipeStdout: false });
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    if (code === 0) return;
    last = err.trim();
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} is not reachable from ${host.ns}: ${last}`);
}

export interface NodeInNamespace {
  id: string;
  host: NetHost;
  /** `address:port` as registered. */
  address: string;
  pid: number;
  /** The node's own folder: `data/` (its --data) and `node.log` (its stderr). */
  dir: string;
  logFile: string;
  child: ChildProcess;
  /** SIGTERM (a clean leave), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `shardflow node --role storage` inside the host's namespace, listening on its address at `port`; resolves
 * once it prints its ready line (rejects with the tail of its log if it exits or is not ready in time).
 */
export async function startStorageNodeIn(
  net: TestNetwork,
  host: NetHost,
  options: { id: string; coordinator: string; secretFile: string; dir: string; port?: number; logLevel?: string; timeoutMs?: number },
): Promise<NodeInNamespace> {
  const dir = join(options.dir, options.id);
  await mkdir(dir, { recursive: true });
  const logFile = join(dir, 'node.log');
  const argv = [
    process.execPath,
    BIN_PATH,
    'node',
    '--role', 'storage',
    '--id', options.id,
    '--coordinator', options.coordinator,
    '--secret-file', options.secretFile,
    '--data', join(dir, 'data'),
    '--listen', `${host.address}:${options.port ?? 7000}`,
    '--advertise', host.address,
  ];
  const child = net.spawnIn(host, argv, { logFile, env: { ...process.env, SHARDFLOW_LOG: options.logLevel ?? 'info' } });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const ready = await new Promise<{ address: string; pid: number }>((resolve, reject) => {
    const fail = async (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).slice(-3000);
      reject(new Error(`storage node ${options.id} in ${host.ns} ${why}\n${tail}`));
    };
    const timer = setTimeout(() => void fail(`was not ready within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => void fail(`exited (${code ?? signal}) before it was ready`);
    child.once('exit', onExit);
    onLines(child.stdout!, (line) => {
      try {
        const msg = JSON.parse(line) as { ready?: boolean; address?: string; pid?: number };
        if (msg.ready && msg.address) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve({ address: msg.address, pid: msg.pid ?? child.pid! });
        }
      } catch {
        // Not the ready line.
      }
    });
  });
  return {
    id: options.id,
    host,
    address: ready.address,
    pid: ready.pid,
    dir,
    logFile,
    child,
    stop: (graceMs = 5000) => stopChild(child, graceMs),
  };
}
