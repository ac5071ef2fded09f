/** Runs the `shardflow` CLI as a user would, from the repository root, and gives back its exit code and output. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { BIN_PATH } from '../../src/cluster/spawn.js';

const REPO = join(import.meta.dirname, '../..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_PATH, ...args], { cwd: REPO, timeout: timeoutMs, env: { ...process.env, SHARDFLOW_LOG: 'warn' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
