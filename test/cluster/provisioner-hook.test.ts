/**
 * Running a scale hook: no shell, arguments kept whole, exit codes, deadlines (the whole process group is stopped),
 * bounded output, and a named error for each failure. Real processes, no cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandHookCommand, parseHookCommand, runHook } from '../../src/cluster/provisioner-hook.js';
import { isAlive } from '../../src/cluster/spawn.js';
import { ConfigError, TimeoutError, UnavailableError } from '../../src/errors/index.js';

const NODE = process.execPath;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'sf-hookrun-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('parseHookCommand', () => {
  it('splits the string form on whitespace and keeps the array form as it is', () => {
    expect(parseHookCommand('  ./my-scaler.sh {tier}   {count} ')).toEqual(['./my-scaler.sh', '{tier}', '{count}']);
    expect(parseHookCommand(['kubectl', 'scale', 'sts/{tier}', '--replicas={count}'])).toEqual([
      'kubectl',
      'scale',
      'sts/{tier}',
      '--replicas={count}',
    ]);
    expect(parseHookCommand(['my scaler', 'with "quotes"; and $vars'])).toHaveLength(2);
  });

  it('refuses shell syntax in the string form, unknown placeholders and empty commands, naming the field', () => {
    for (const bad of ['scale.sh $TIER', "scale.sh '{tier}'", 'a | b', 'a; b', 'a && b', 'scale.sh > log', '~/scale.sh', 'a *']) {
      expect(() => parseHookCommand(bad, 'autoscale.provisioner.command'), bad).toThrow(ConfigError);
    }
    expect(() => parseHookCommand('scale.sh {replicas}')).toThrow(/unknown placeholder \{replicas\}/);
    expect(() => parseHookCommand('{tier}.sh')).toThrow(/program itself/);
    expect(() => parseHookCommand('   ')).toThrow(/empty/);
    expect(() => parseHookCommand([])).toThrow(/empty/);
    expect(() => parseHookCommand(42)).toThrow(/string or an array/);
    try {
      parseHookCommand('a | b', 'autoscale.provisioner.command');
    } catch (err) {
      expect((err as ConfigError).details.field).toBe('autoscale.provisioner.command');
    }
  });
});

describe('runHook', () => {
  it('passes each substituted value as exactly one argument, shell characters and all', async () => {
    const words = parseHookCommand([NODE, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', '{tier}', 'n={nodes}', '{count}']);
    const argv = expandHookCommand(words, { tier: 'storage', count: '3', from: '2', nodes: 's3; rm -rf / $(id) `x`', dir: '/d' });
    const { stdout } = await runHook(argv);
    expect(JSON.parse(stdout)).toEqual(['storage', 'n=s3; rm -rf / $(id) `x`', '3']);
  });

  it('passes its environment on, with the extra variables', async () => {
    const r = await runHook([NODE, '-e', 'process.stdout.write(`${process.env.SHARDFLOW_TIER} ${process.env.PATH === undefined}`)'], {
      env: { SHARDFLOW_TIER: 'compute' },
    });
    expect(r.stdout).toBe('compute false');
  });

  it('rejects a non-zero exit with UnavailableError carrying the code and the end of stderr', async () => {
    const err = await runHook([NODE, '-e', 'console.error("quota exceeded for instance group"); process.exit(3)']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).retryable).toBe(true);
    expect((err as UnavailableError).message).toMatch(/exited with code 3: quota exceeded/);
    expect((err as UnavailableError).details).toMatchObject({ exitCode: 3 });
  });

  it('rejects a command that cannot be started with ConfigError', async () => {
    await expect(runHook([join(scratch, 'no-such-hook.sh')])).rejects.toThrow(ConfigError);
    const notExecutable = join(scratch, 'plain.sh');
    await writeFile(notExecutable, '#!/bin/sh\necho hi\n');
    await chmod(notExecutable, 0o644);
    await expect(runHook([notExecutable])).rejects.toThrow(/EACCES/);
  });

  it('stops a hook that runs past its deadline, and what it started, with TimeoutError', async () => {
    // The hook starts a child that would outlive it, prints the child's pid, then hangs.
    const script = join(scratch, 'hang.sh');
    await writeFile(script, '#!/bin/sh\nsleep 60 &\necho $!\nwait\n');
    await chmod(script, 0o755);
    const started = Date.now();
    const err = await runHook([script], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
    const child = Number(String((err as TimeoutError).details.stdout).trim());
    expect(child).toBeGreaterThan(0);
    expect(isAlive(child)).toBe(false);
  });

  it('keeps only the tail of long output', async () => {
    const r = await runHook([NODE, '-e', 'process.stdout.write("a".repeat(100000) + "THE END")'], { maxOutputBytes: 1024 });
    expect(r.truncated).toBe(true);
    expect(r.stdout).toHaveLength(1024);
    expect(r.stdout.endsWith('THE END')).toBe(true);
  });
});
