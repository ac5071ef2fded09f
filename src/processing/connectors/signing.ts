/**
 * HTTP authentication with the cluster secret, shared by the HTTP ingest source (which checks it) and the webhook
 * sink (which signs what it sends, so a receiver can check it the same way). Two forms are accepted:
 *
 * - `Authorization: Bearer <the secret in hex>` — simple, for trusted networks and curl;
 * - `X-Shardflow-Timestamp: <ms since the epoch>` and `X-Shardflow-Signature: sha256=<hex>` where the hex is
 *   `HMAC-SHA256(secret, "shardflow/http" | "\n" | timestamp | "\n" | body)` — the secret never travels, and a
 *   signature older than 5 minutes (or that far in the future) is refused, so a captured request cannot be replayed
 *   later. (Within the window a replay is possible; sinks are at-least-once anyway.)
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIMESTAMP_HEADER = 'x-shardflow-timestamp';
export const SIGNATURE_HEADER = 'x-shardflow-signature';
/** How far a signed request's timestamp may be from now. */
export const MAX_SIGNATURE_SKEW_MS = 5 * 60_000;

function mac(secret: Uint8Array, timestamp: string, body: Uint8Array | string): Buffer {
  return createHmac('sha256', secret).update('shardflow/http\n').update(timestamp).update('\n').update(body).digest();
}

/**
 * Headers that sign `body` with the cluster secret.
 *
 * @example
 * ```ts
 * const body = '{"user":"u1"}\n';
 * await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', ...signBody(secret, body) } });
 * ```
 */
export function signBody(secret: Uint8Array, body: Uint8Array | string, now = Date.now()): Record<string, string> {
  const timestamp = String(now);
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: `sha256=${mac(secret, timestamp, body).toString('hex')}` };
}

/** The `Authorization` header value that carries the secret itself. */
export function bearerHeader(secret: Uint8Array): string {
  return `Bearer ${Buffer.from(secret).toString('hex')}`;
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

type Headers = Record<string, string | string[] | undefined>;
const one = (h: Headers, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Whether the request carries a bearer token (checked before its body is read). Other schemes count as absent. */
export function checkBearer(secret: Uint8Array, headers: Headers): 'ok' | 'absent' | 'wrong' {
  const auth = one(headers, 'authorization');
  if (auth === undefined || !/^Bearer\s/i.test(auth)) return 'absent';
  const m = /^Bearer\s+([0-9a-fA-F]+)\s*$/i.exec(auth);
  if (!m || m[1]!.length % 2 !== 0) return 'wrong';
  return equal(Buffer.from(m[1]!, 'hex'), Buffer.from(secret)) ? 'ok' : 'wrong';
}

/**
 * Checks a signed request; returns why it is refused, or undefined when it is good. A webhook receiver uses it to
 * check that a batch came from the cluster.
 *
 * @example
 * ```ts
 * createServer((req, res) => {
 *   const chunks: Buffer[] = [];
 *   req.on('data', (c) => chunks.push(c)).on('end', () => {
 *     const why = checkSignature(secret, req.headers, Buffer.concat(chunks));
 *     res.writeHead(why ? 401 : 200).end(why ?? 'ok');
 *   });
 * });
 * ```
 */
export function checkSignature(secret: Uint8Array, headers: Headers, body: Uint8Array, now = Date.now()): string | undefined {
  const timestamp = one(headers, TIMESTAMP_HEADER);
  const signature = one(headers, SIGNATURE_HEADER);
  if (timestamp === undefined || signature === undefined) {
    return `send "Authorization: Bearer <cluster secret>" or the ${TIMESTAMP_HEADER} and ${SIGNATURE_HEADER} headers`;
  }
  if (!/^\d{1,16}$/.test(timestamp)) return `${TIMESTAMP_HEADER} must be milliseconds since the epoch`;
  if (Math.abs(now - Number(timestamp)) > MAX_SIGNATURE_SKEW_MS) {
    return `${TIMESTAMP_HEADER} is more than ${MAX_SIGNATURE_SKEW_MS / 60_000} minutes from the server's clock`;
  }
  const m = /^sha256=([0-9a-f]{64})$/i.exec(signature);
  if (!m) return `${SIGNATURE_HEADER} must be sha256=<64 hex digits>`;
  return equal(Buffer.from(m[1]!, 'hex'), mac(secret, timestamp, body)) ? undefined : 'the signature does not match';
}
