/** Parsers for command-line values: each rejects bad input with an InvalidArgumentError naming the option. */
import { InvalidArgumentError } from '../errors/index.js';
import type { CoordinatorAddress } from '../config/cluster-dir.js';
import { isIP } from 'node:net';

export function parseCount(name: string, min = 0, max = 64): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
    }
    return n;
  };
}

export function parsePositive(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0, not ${JSON.stringify(value)}`);
    return n;
  };
}

const BYTE_SUFFIXES: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** A size such as `512kb`, `50mb` or `1gb` (binary units), in bytes, > 0. */
export function parseBytes(name: string): (value: string) => number {
  return (value: string) => {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
    const unit = m ? BYTE_SUFFIXES[m[2]!.toLowerCase()] : undefined;
    const n = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
    if (!Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a size such as 512kb, 50mb or 1gb, not ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** `host:port` with a port from 0 to 65535. */
export function parseHostPort(name: string): (value: string) => { host: string; port: number } {
  return (value: string) => {
    const i = value.lastIndexOf(':');
    const port = Number(value.slice(i + 1));
    if (i <= 0 || !/^\d+$/.test(value.slice(i + 1)) || port > 65535) {
      throw new InvalidArgumentError(`${name} must be host:port, not ${JSON.stringify(value)}`);
    }
    return { host: value.slice(0, i), port };
  };
}

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Whether `host` is an unspecified ("every interface") address: one to listen on, never to connect to. */
export function isUnspecifiedHost(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]' || /^0*:(0*:)*0*$/.test(host);
}

/**
 * `--advertise`: the host (name, IPv4 or IPv6 address) others connect to, **without a port** — the node appends the
 * port it bound (docs/deploy.md). `10.0.0.11:7000` is refused (it would register `10.0.0.11:7000:7000`), and so is an
 * unspecified address such as `0.0.0.0`.
 */
export function parseAdvertiseHost(name: string): (value: string) => string {
  return (value: string) => {
    const v = value.trim();
    if (isIP(v) === 0 && /^[^:]+:\d*$/.test(v)) {
      throw new InvalidArgumentError(
        `${name} is the host only; the node adds the port it listens on (set with --listen): ` +
          `give ${name} ${v.slice(0, v.lastIndexOf(':'))}, not ${JSON.stringify(value)}`,
      );
    }
    if (/^\[.*\](:\d*)?$/.test(v)) {
      throw new InvalidArgumentError(`${name} takes an IPv6 address without brackets or port (e.g. fd00::11), not ${JSON.stringify(value)}`);
    }
    if (isIP(v) === 0 && !HOSTNAME.test(v)) {
      throw new InvalidArgumentError(`${name} must be a host name or an IP address (without a port), not ${JSON.stringify(value)}`);
    }
    if (isUnspecifiedHost(v)) {
      throw new InvalidArgumentError(`${name} ${v} is not an address other hosts can connect to: give this host's own address`);
    }
    return v;
  };
}

/** A command-line value: JSON when it parses as JSON, else the string itself (`--string` forces a string). */
export function parseValue(text: string, forceString: boolean): unknown {
  if (forceString) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `embedded://host:port` or `etcd://h1:2379,h2:2379[/prefix]`. */
export function parseCoordinatorUrl(text: string): CoordinatorAddress {
  const embedded = /^embedded:\/\/([^/]+):(\d+)$/.exec(text);
  if (embedded) return { kind: 'embedded', host: embedded[1]!, port: Number(embedded[2]) };
  const etcd = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(text);
  if (etcd) {
    return {
      kind: 'etcd',
      endpoints: etcd[1]!.split(',').map((e) => (e.startsWith('http') ? e : `http://${e}`)),
      ...(etcd[2] ? { prefix: etcd[2] } : {}),
    };
  }
  throw new InvalidArgumentError(`--coordinator must be embedded://host:port or etcd://host:port[,host:port...], not ${text}`);
}

