/**
 * The autoscaler's configuration: a good section is read with its defaults, a bad one is refused with a ConfigError
 * naming the field, and `shardflow autoscale` refuses it before touching the cluster (exit code 2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAutoscaleConfig, createProvisioner } from '../../src/cluster/autoscale-config.js';
import { LocalProvisioner } from '../../src/cluster/provisioner.js';
import { CommandProvisioner } from '../../src/cluster/provisioner-command.js';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { ClusterDir } from '../../src/config/cluster-dir.js';
import { ConfigError } from '../../src/errors/index.js';

const STORAGE = {
  metric: 'keys',
  target: 1_000_000,
  highWatermark: 1.2,
  lowWatermark: 0.5,
  minNodes: 3,
  maxNodes: 12,
  scaleOutCooldownMs: 300_000,
  scaleInCooldownMs: 3_600_000,
  stabilizationMs: 60_000,
};
const COMPUTE = { ...STORAGE, metric: 'inFlight', target: 8, minNodes: 1 };

/** The ConfigError `raw` is refused with. */
function refusal(raw: unknown): ConfigError {
  try {
    parseAutoscaleConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('parseAutoscaleConfig', () => {
  it('reads policies per tier and fills in the defaults', () => {
    const config = parseAutoscaleConfig({ storage: STORAGE, compute: COMPUTE });
    expect(config.intervalMs).toBe(5000);
    expect(config.provisioner).toEqual({ kind: 'local' });
    expect(config.policies.storage).toMatchObject({ ...STORAGE, maxStepIn: 1, maxStepOut: 12 });
    expect(config.policies.compute?.metric).toBe('inFlight');
    expect(parseAutoscaleConfig({ storage: { ...STORAGE, metric: 'opsPerSec' } }).policies.storage?.metric).toBe('opsPerSec');
    expect(parseAutoscaleConfig(undefined)).toEqual({ intervalMs: 5000, policies: {}, provisioner: { kind: 'local' } });
  });

  it('reads a command provisioner and builds the provisioner each kind names', () => {
    const config = parseAutoscaleConfig({
      intervalMs: 1000,
      compute: COMPUTE,
      provisioner: { kind: 'command', command: ['./scale.sh', '{tier}', '{count}'], timeoutMs: 60_000 },
    });
    expect(config.provisioner).toEqual({ kind: 'command', command: ['./scale.sh', '{tier}', '{count}'], timeoutMs: 60_000 });
    expect(createProvisioner('/tmp/x', config.provisioner)).toBeInstanceOf(CommandProvisioner);
    expect(createProvisioner('/tmp/x', { kind: 'local' })).toBeInstanceOf(LocalProvisioner);
  });

  it('refuses bad configuration with a ConfigError naming the field', () => {
    const cases: [unknown, string][] = [
      [{ storage: { ...STORAGE, metric: 'callsPerSec' } }, 'autoscale.storage.metric'],
      [{ storage: { ...STORAGE, metric: 'cpu' } }, 'autoscale.storage.metric'],
      [{ compute: { ...COMPUTE, metric: 'bytes' } }, 'autoscale.compute.metric'],
      [{ storage: { ...STORAGE, lowWatermark: 1.5 } }, 'autoscale.storage.lowWatermark'],
      [{ storage: { ...STORAGE, target: -1 } }, 'autoscale.storage.target'],
      [{ compute: { ...COMPUTE, maxStepsIn: 2 } }, 'autoscale.compute.maxStepsIn'],
      [{ compute: { ...COMPUTE, maxNodes: 100 } }, 'autoscale.compute.maxNodes'],
      [{ compute: 'fast' }, 'autoscale.compute'],
      [{ intervalMs: 0, compute: COMPUTE }, 'autoscale.intervalMs'],
      [{ gpu: COMPUTE }, 'autoscale.gpu'],
      [{ compute: COMPUTE, provisioner: { kind: 'cloud' } }, 'autoscale.provisioner.kind'],
      [{ compute: COMPUTE, provisioner: { kind: 'command' } }, 'autoscale.provisioner.command'],
      [{ compute: COMPUTE, provisioner: { kind: 'command', command: 'scale.sh $TIER' } }, 'autoscale.provisioner.command'],
      [{ compute: COMPUTE, provisioner: { kind: 'command', command: 'scale.sh {replicas}' } }, 'autoscale.provisioner.command'],
      [{ compute: COMPUTE, provisioner: { kind: 'command', command: 'x', timeoutMs: 1.5 } }, 'autoscale.provisioner.timeoutMs'],
      [{ compute: COMPUTE, provisioner: { kind: 'local', command: 'x' } }, 'autoscale.provisioner.command'],
      ['yes', 'autoscale'],
    ];
    for (const [raw, field] of cases) {
      const err = refusal(raw);
      expect(err.details.field, JSON.stringify(raw)).toBe(field);
      expect(err.message).toContain(field);
    }
  });
});

describe('shardflow autoscale with bad configuration', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-autoscale-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN_PATH, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
  }

  it('refuses it before contacting the cluster: exit 2 and the field named', async () => {
    // No coordinator listens on port 1: only a refusal before connecting can answer quickly and with exit code 2.
    const files = new ClusterDir(dir);
    await files.writeCluster({
      version: 1,
      coordinator: { kind: 'embedded', host: '127.0.0.1', port: 1 },
      createdAt: new Date().toISOString(),
      autoscale: { storage: { ...STORAGE, lowWatermark: 2 } },
    });
    const fromFile = await run(['autoscale', '--dir', dir, '--once']);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toMatch(/CONFIG_ERROR.*autoscale\.storage\.lowWatermark must be/);

    const fromFlag = await run(['autoscale', '--dir', dir, '--once', '--compute-policy', JSON.stringify({ ...COMPUTE, metric: 'cpu' })]);
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr).toMatch(/--compute-policy\.metric must be one of callsPerSec, inFlight/);

    await files.writeCluster({ version: 1, coordinator: { kind: 'embedded', host: '127.0.0.1', port: 1 }, createdAt: '' });
    const none = await run(['autoscale', '--dir', dir, '--once']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no autoscale policy/);
  });
});
