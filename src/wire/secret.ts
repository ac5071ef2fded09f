/** The cluster secret: 32 random bytes, hex in a file only its owner can read (mode 0600). */
import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { ConfigError } from '../errors/index.js';

/** Writes a new secret to `path` (mode 0600, refusing to overwrite) and returns it. */
export async function generateSecretFile(path: string): Promise<Buffer> {
  const secret = randomBytes(32);
  try {
    await writeFile(path, secret.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (cause) {
    throw new ConfigError(`cannot create the cluster secret at ${path}`, { cause });
  }
  await chmod(path, 0o600); // The umask may have narrowed the mode above; make it exact.
  return secret;
}

/**
 * Reads a secret file. Refuses one that others can read (like ssh does with keys), or that is not 64 hex digits.
 */
export async function readSecretFile(path: string): Promise<Buffer> {
  let text: string;
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new ConfigError(
        `the cluster secret ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 on it`,
      );
    }
    text = (await readFile(path, 'utf8')).trim();
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`cannot read the cluster secret at ${path}`, { cause });
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new ConfigError(`the cluster secret at ${path} is not 64 hex digits`);
  return Buffer.from(text, 'hex');
}
