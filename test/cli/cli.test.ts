/**
 * The `shardflow` command as a user runs it: real processes, a real cluster directory, exit codes and output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN_PATH, isAlive } from '../../src/cluster/spawn.js';
import { stopLocalCluster } from '../../src/cluster/local-cluster.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_PATH, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let root: string;
let dir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sf-cli-'));
  dir = join(root, 'cluster');
});
afterAll(async () => {
  await stopLocalCluster(dir).catch(() => undefined);
  await stopLocalCluster(join(root, 'foreground')).catch(() => undefined); // if the test failed before Ctrl-C
  await rm(root, { recursive: true, force: true });
});

describe('shardflow CLI: usage', () => {
  it('prints help for every command', async () => {
    const commands = [[], ['up'], ['down'], ['attach'], ['status'], ['node'], ['demo'], ['call'], ['scale'], ['rebalance'], ['autoscale'], ['run'], ['jobs'], ['stop'], ['kv'], ['kv', 'get'], ['kv', 'put'], ['kv', 'del'], ['kv', 'scan'], ['kv', 'import'], ['kv', 'export'], ['kv', 'create-ns']];
    const results = await Promise.all(commands.map((c) => run([...c, '--help'])));
    results.forEach((r, i) => {
      expect(r.code, commands[i]!.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: shardflow');
    });
  });

  it('refuses bad arguments with a clear message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['up', '--storage', '-1', '--dir', dir], /--storage must be a whole number/],
      [['up', '--storage', 'three', '--dir', dir], /--storage must be a whole number/],
      [['up', '--compute', '1000', '--dir', dir], /--compute must be a whole number from 0 to 64/],
      [['node', '--role', 'oracle', '--id', 'x', '--dir', dir], /--role must be storage or compute/],
      [['node', '--role', 'storage', '--id', 'x', '--listen', 'nowhere', '--dir', dir], /--listen must be host:port/],
      [['node', '--role', 'storage', '--id', 'x', '--coordinator', 'zk://x'], /--coordinator must be/],
      [['kv', 'put', 'only-key'], /missing required argument/],
      [['kv', 'create-ns', 'x', '--scheme', 'btree', '--dir', dir], /--scheme must be hash or range/],
      [['frobnicate'], /unknown command/],
      [['scale', 'compute=many', '--dir', dir], /expected compute=N or storage=N/],
      [['scale', 'storage=0', '--dir', dir], /whole number from 1 to \d+ \(and at least the copies of every replicated namespace\)/],
      [['rebalance', '--max-rate', 'fast', '--dir', dir], /--max-rate must be a size such as 512kb/],
      [['rebalance', '--concurrency', '0', '--dir', dir], /--concurrency must be a whole number from 1 to 64/],
      [['scale', 'storage=2', '--max-p99-ratio', '-1', '--dir', dir], /--max-p99-ratio must be a number > 0/],
      [['call', 'echo', '--strategy', 'fastest', '--dir', dir], /--strategy must be one of/],
      [['node', '--role', 'storage', '--id', 'x', '--services', 'x.ts', '--dir', dir], /--services is for compute nodes/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
    // Nothing was started by the refused commands.
    await expect(stat(join(dir, 'cluster.json'))).rejects.toThrow();
  });

  it('says when no cluster is running in the directory', async () => {
    const r = await run(['status', '--dir', join(root, 'none')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CLUSTER_NOT_RUNNING.*shardflow up/);
  });
});

describe('shardflow CLI: a cluster', () => {
  it('starts detached, serves kv commands, reports status, imports and exports, and stops', async () => {
    const up = await run(['up', '--storage', '2', '--compute', '1', '--dir', dir, '--detach']);
    expect(up.code, up.stderr).toBe(0);
    expect((await stat(join(dir, 'secret'))).mode & 0o777).toBe(0o600);

    const status = await run(['status', '--dir', dir, '--json']);
    const parsed = JSON.parse(status.stdout) as { nodes: Record<string, unknown>[] };
    expect(parsed.nodes.map((n) => [n.id, n.role, n.state])).toEqual([
      ['c1', 'compute', 'up'],
      ['s1', 'storage', 'up'],
      ['s2', 'storage', 'up'],
    ]);
    for (const n of parsed.nodes) {
      expect(n.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(isAlive(n.pid as number)).toBe(true);
    }
    expect(parsed.nodes.filter((n) => n.role === 'storage').map((n) => n.partitions)).toEqual([2048, 2048]);

    expect((await run(['kv', 'put', 'greeting', '{"hello":"world"}', '--dir', dir])).stdout).toMatch(/^OK version \d+/);
    expect((await run(['kv', 'get', 'greeting', '--dir', dir])).stdout.trim()).toBe('{"hello":"world"}');
    expect((await run(['kv', 'put', 'plain', 'not json', '--dir', dir])).code).toBe(0);
    expect((await run(['kv', 'get', 'plain', '--dir', dir])).stdout.trim()).toBe('"not json"');
    expect((await run(['kv', 'del', 'plain', '--dir', dir])).stdout.trim()).toBe('deleted');
    const missing = await run(['kv', 'get', 'plain', '--dir', dir]);
    expect(missing.code).toBe(1);
    const unknownNs = await run(['kv', 'get', 'k', '--ns', 'nope', '--dir', dir]);
    expect(unknownNs.code).toBe(1);
    expect(unknownNs.stderr).toMatch(/UNKNOWN_NAMESPACE/);

    // A file with one bad line is refused whole.
    const bad = join(root, 'bad.ndjson');
    await writeFile(bad, '{"key":"i1","value":1}\n{"key":"i2"}\n');
    const refused = await run(['kv', 'import', bad, '--dir', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/line 2/);
    expect((await run(['kv', 'get', 'i1', '--dir', dir])).code).toBe(1);

    const good = join(root, 'good.ndjson');
    await writeFile(good, Array.from({ length: 3000 }, (_, i) => JSON.stringify({ key: `i${i}`, value: { i } })).join('\n') + '\n');
    const imported = await run(['kv', 'import', good, '--dir', dir, '--quiet']);
    expect(imported.stdout).toMatch(/imported 3000 entries/);

    const out = join(root, 'dump.ndjson');
    expect((await run(['kv', 'export', out, '--dir', dir])).code).toBe(0);
    const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { key: string; value: unknown });
    expect(lines).toHaveLength(3001);
    expect(new Set(lines.map((l) => l.key)).size).toBe(3001);
    expect(lines.find((l) => l.key === 'i2999')?.value).toEqual({ i: 2999 });

    const pids = parsed.nodes.map((n) => n.pid as number);
    const down = await run(['down', '--dir', dir]);
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/s1: stopped/);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });
});

describe('shardflow up in the foreground', () => {
  it('runs until Ctrl-C, then stops every node cleanly', async () => {
    const fgDir = join(root, 'foreground');
    const up = spawn(process.execPath, [BIN_PATH, 'up', '--storage', '1', '--compute', '1', '--dir', fgDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(up, 'exit');
    const lines = createInterface({ input: up.stdout! });
    for await (const line of lines) if (line.includes('press Ctrl-C')) break;
    const nodes = await new ClusterDir(fgDir).listNodes();
    expect(nodes.map((n) => n.id)).toEqual(['c1', 's1']);
    for (const n of nodes) expect(isAlive(n.pid)).toBe(true);
    up.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    for (const n of nodes) expect(isAlive(n.pid)).toBe(false);
  });
});
