/**
 * The command-hook provisioner passes the provisioner conformance suite with a real hook script
 * (fixtures/scale-hook.sh) that starts and stops local node processes with the shardflow command; the hook's own
 * record of its calls shows what it was asked to do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandProvisioner } from '../../src/cluster/provisioner-command.js';
import { BIN_PATH } from '../../src/cluster/spawn.js';
import { provisionerConformance } from './provisioner-conformance.js';

const HOOK = join(import.meta.dirname, 'fixtures', 'scale-hook.sh');
let scratch: string;
let hookLog: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sf-hook-'));
  hookLog = join(scratch, 'calls.log');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

provisionerConformance(
  'CommandProvisioner',
  async (cluster) =>
    new CommandProvisioner({
      dir: cluster.dir,
      command: `${HOOK} {tier} {count} {nodes}`,
      env: { HOOK_LOG: hookLog, SHARDFLOW_BIN: BIN_PATH, NODE: process.execPath },
      timeoutMs: 60_000,
      settleTimeoutMs: 30_000,
    }),
);

describe('CommandProvisioner and its hook', () => {
  it('ran the hook once per change, naming the leaving nodes on a scale-in, and never for a refused or no-op request', async () => {
    const calls = (await readFile(hookLog, 'utf8')).trim().split('\n');
    expect(calls).toEqual(['compute 2 ', 'compute 0 c1,c2', 'storage 2 ', 'storage 1 s2']);
  });
});
