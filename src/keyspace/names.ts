/** Namespace names: the one rule, shared by the catalog, the nodes and the CLI. */
import { InvalidArgumentError } from '../errors/index.js';

const NAMESPACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** A namespace name: 1–64 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`. */
export function checkNamespaceName(name: unknown): string {
  if (typeof name !== 'string' || !NAMESPACE_NAME.test(name)) {
    throw new InvalidArgumentError(
      `invalid namespace name ${JSON.stringify(name)}: use 1-64 letters, digits, '_', '.' or '-'`,
    );
  }
  return name;
}
