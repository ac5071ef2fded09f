/**
 * The two systems bench:compute drives, behind one interface: start them (real processes, loopback only), call the
 * `echo` service, and stop them. Both register their processes and temporary directories with cleanup.ts, so they
 * are stopped and removed whatever way the benchmark ends.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import moleculer from 'moleculer';
import { startLocalCluster, stopLocalCluster } from '../../../src/cluster/local-cluster.js';
import { terminate } from '../../../src/cluster/spawn.js';
import { connect } from '../../../src/client/index.js';
import { owned, trackDir, trackPid, untrackDir, untrackPid } from '../cleanup.js';
import { CPU_PROFILE_PRELOAD, withProfiledChildren } from '../cpu-profile.js';
import { benchLog } from '../main.js';
import type { ComputeSystem } from './args.js';
import { brokerOptions, ECHO_ACTION, loopbackOnly, transporterPort } from './moleculer-config.js';

export interface CallTarget {
  system: ComputeSystem;
  /** One call of the echo service. */
  call(payload: unknown): Promise<unknown>;
  /** The processes hosting the service. */
  serverPids: number[];
  /** Processes of the system that run but take no part in a call (shardflow: coordinator and storage node). */
  supportPids: number[];
  /** Version and setup, for the report. */
  description: string;
  close(): Promise<void>;
}

const SERVICES = fileURLToPath(new URL('./services.ts', import.meta.url));
const MOLECULER_NODE = fileURLToPath(new URL('./moleculer-node.ts', import.meta.url));

const log = benchLog('compute');

async function poll(what: string, timeoutMs: number, ready: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * shardflow: a local cluster (embedded coordinator, `storage: 1` — the minimum — and `servers` compute nodes hosting
 * services.ts), and a client in this process. Resolves once the client sees every compute instance of `echo`.
 */
export async function startShardflow(parent: string, servers: number, cpuProfDir?: string): Promise<CallTarget> {
  const dir = await mkdtemp(join(parent, 'shardflow-bench-compute-'));
  trackDir(dir);
  const pids: number[] = [];
  let client: Awaited<ReturnType<typeof connect>> | undefined;
  const stop = async () => {
    await client?.close().catch(() => undefined);
    client = undefined;
    try {
      await stopLocalCluster(dir);
    } catch (err) {
      // A cluster that failed half-way may lack its cluster file; the tracked pids are killed regardless.
      log(`stopping the shardflow cluster: ${err instanceof Error ? err.message : String(err)}`);
    }
    for (const pid of pids) untrackPid(pid);
    await rm(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  // Node processes inherit this environment: that is how they get profiled when asked (see cpu-profile.ts).
  return owned('shardflow cluster', stop, (release) =>
    withProfiledChildren(cpuProfDir, async () => {
      const cluster = await startLocalCluster({ dir, storage: 1, compute: servers, services: SERVICES });
      for (const pid of [cluster.coordinatorPid, ...cluster.nodes.map((n) => n.pid)]) {
        if (pid) {
          pids.push(pid);
          trackPid(pid);
        }
      }
      const serverPids = cluster.nodes.filter((n) => n.role === 'compute').map((n) => n.pid!);
      const supportPids = pids.filter((p) => !serverPids.includes(p));
      const c = (client = await connect({ dir }));
      await poll(`the shardflow client to see ${servers} instances of echo`, 30_000, () => {
        return (c.serviceInstances().get('echo')?.length ?? 0) === servers;
      });
      const instances = c.serviceInstances().get('echo')!;
      log(`shardflow client sees echo on ${instances.join(', ')}`);
      const options = { strategy: 'round-robin' } as const;
      return {
        system: 'shardflow',
        call: (payload) => c.call('echo', payload, options),
        serverPids,
        supportPids,
        description: `shardflow ${packageVersion('.')}`,
        close: release,
      };
    }),
  );
}

interface SpawnedNode {
  id: string;
  pid: number;
  port: number;
}

/** Starts one moleculer-node.ts process (detached, in its own process group) and waits for its ready line. */
function spawnMoleculerNode(id: string, logFile: string, cpuProfDir?: string, timeoutMs = 30_000): Promise<SpawnedNode> {
  const args = ['--import', 'tsx'];
  const env = { ...process.env };
  if (cpuProfDir) {
    args.push('--import', CPU_PROFILE_PRELOAD);
    env.SHARDFLOW_BENCH_CPU_PROF_DIR = resolve(cpuProfDir);
  }
  args.push(MOLECULER_NODE, '--id', id);
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', out], env });
  closeSync(out);
  if (child.pid) trackPid(child.pid);
  return new Promise((resolveReady, reject) => {
    let settled = false;
    const lines = createInterface({ input: child.stdout! });
    const finish = (err: Error | undefined, node?: SpawnedNode) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      lines.close();
      child.stdout?.destroy();
      child.removeAllListeners('exit');
      if (err) {
        child.kill('SIGKILL');
        reject(err);
      } else {
        child.unref();
        resolveReady(node!);
      }
    };
    const tail = () => {
      try {
        return readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        return '';
      }
    };
    const timer = setTimeout(() => finish(new Error(`Moleculer node ${id} was not ready in ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { ready?: boolean; port?: number };
        if (msg.ready === true && typeof msg.port === 'number') finish(undefined, { id, pid: child.pid!, port: msg.port });
      } catch {
        // Not the ready line.
      }
    });
    child.once('error', (err) => finish(new Error(`cannot start Moleculer node ${id}: ${err.message}`)));
    child.once('exit', (code, signal) => finish(new Error(`Moleculer node ${id} exited (${signal ?? code}) before it was ready:\n${tail()}`)));
  });
}

/**
 * Moleculer: `servers` processes each running a ServiceBroker with the `echo` service, and a caller broker without
 * services in this process, all on the TCP transporter at 127.0.0.1. Resolves once the caller sees `echo` on every
 * service node.
 */
export async function startMoleculer(parent: string, servers: number, cpuProfDir?: string): Promise<CallTarget> {
  const dir = await mkdtemp(join(parent, 'shardflow-bench-moleculer-'));
  trackDir(dir);
  mkdirSync(join(dir, 'logs'));
  const nodes: SpawnedNode[] = [];
  let broker: moleculer.ServiceBroker | undefined;
  const stop = async () => {
    if (broker) await broker.stop().catch(() => undefined);
    broker = undefined;
    await Promise.all(
      nodes.map(async (n) => {
        await terminate(n.pid, 5000);
        untrackPid(n.pid);
      }),
    );
    await rm(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  return owned('Moleculer brokers', stop, async (release) => {
    const ids = Array.from({ length: servers }, (_, i) => `mol-s${i + 1}`);
    const started = await Promise.allSettled(ids.map((id) => spawnMoleculerNode(id, join(dir, 'logs', `${id}.log`), cpuProfDir)));
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const b = (broker = new moleculer.ServiceBroker(
      brokerOptions(
        'bench-caller',
        nodes.map((n) => `127.0.0.1:${n.port}/${n.id}`),
        true,
      ),
    ));
    loopbackOnly(b);
    await b.start();
    log(`Moleculer caller listens on 127.0.0.1:${transporterPort(b)}; service nodes on ${nodes.map((n) => n.port).join(', ')}`);
    await b.waitForServices('echo', 30_000);
    await poll(`the Moleculer caller to see echo on ${servers} nodes`, 30_000, () => {
      const list = b.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as { name: string; nodeID: string }[];
      const hosting = new Set(list.filter((s) => s.name === 'echo').map((s) => s.nodeID));
      return ids.every((id) => hosting.has(id));
    });
    // getNodeList is in Moleculer 0.14's registry but not in its type declarations.
    const registry = b.registry as unknown as { getNodeList(o: object): { id: string }[] };
    const available = registry.getNodeList({ onlyAvailable: true, withServices: false }).map((n) => n.id);
    log(`Moleculer caller sees nodes ${available.sort().join(', ')}; echo on ${ids.join(', ')}`);
    return {
      system: 'moleculer',
      call: (payload) => b.call(ECHO_ACTION, payload as moleculer.GenericObject),
      serverPids: nodes.map((n) => n.pid),
      supportPids: [],
      description: `Moleculer ${moleculerVersion()}`,
      close: release,
    };
  });
}

function packageVersion(path: string): string {
  try {
    const url = new URL(`../../../${path === '.' ? '' : `node_modules/${path}/`}package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function moleculerVersion(): string {
  return packageVersion('moleculer');
}
