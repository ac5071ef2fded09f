/**
 * Mutual challenge-response authentication with the cluster secret. Neither side ever sends the secret:
 *
 *   server → client  { t: 'hello', proto, nonce: Sn }
 *   client → server  { t: 'auth', proto, nonce: Cn, mac: HMAC(secret, "shardflow/client" | Sn | Cn), name }
 *   server → client  { t: 'welcome', mac: HMAC(secret, "shardflow/server" | Cn | Sn) }   or   { t: 'reject', reason }
 *
 * Fresh random nonces on both sides stop replay; the server's answer proves to the client that it talks to a member
 * of the same cluster, not an impostor listening on the port.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Wire protocol version; a peer with another version is refused at the handshake. */
export const PROTOCOL_VERSION = 1;

export interface HelloMessage {
  t: 'hello';
  proto: number;
  nonce: Uint8Array;
}
export interface AuthMessage {
  t: 'auth';
  proto: number;
  nonce: Uint8Array;
  mac: Uint8Array;
  name: string;
}
export interface WelcomeMessage {
  t: 'welcome';
  mac: Uint8Array;
}
export interface RejectMessage {
  t: 'reject';
  reason: string;
}

export function newNonce(): Buffer {
  return randomBytes(32);
}

export function clientMac(secret: Uint8Array, serverNonce: Uint8Array, clientNonce: Uint8Array): Buffer {
  return createHmac('sha256', secret).update('shardflow/client').update(serverNonce).update(clientNonce).digest();
}

export function serverMac(secret: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Buffer {
  return createHmac('sha256', secret).update('shardflow/server').update(clientNonce).update(serverNonce).digest();
}

/** Constant-time comparison of two MACs. */
export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function isBytes(v: unknown, length?: number): v is Uint8Array {
  return v instanceof Uint8Array && (length === undefined || v.length === length);
}

export function isHello(m: unknown): m is HelloMessage {
  const v = m as Partial<HelloMessage> | null;
  return typeof v === 'object' && v !== null && v.t === 'hello' && typeof v.proto === 'number' && isBytes(v.nonce, 32);
}

export function isAuth(m: unknown): m is AuthMessage {
  const v = m as Partial<AuthMessage> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.t === 'auth' &&
    typeof v.proto === 'number' &&
    isBytes(v.nonce, 32) &&
    isBytes(v.mac, 32) &&
    typeof v.name === 'string' &&
    v.name.length <= 200
  );
}

export function isWelcome(m: unknown): m is WelcomeMessage {
  const v = m as Partial<WelcomeMessage> | null;
  return typeof v === 'object' && v !== null && v.t === 'welcome' && isBytes(v.mac, 32);
}

export function isReject(m: unknown): m is RejectMessage {
  const v = m as Partial<RejectMessage> | null;
  return typeof v === 'object' && v !== null && v.t === 'reject' && typeof v.reason === 'string';
}
