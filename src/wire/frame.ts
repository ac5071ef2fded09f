/**
 * Framing: every message is a 4-byte big-endian length followed by that many bytes of msgpack.
 * The decoder enforces a size limit before buffering a frame, so an oversized length closes the connection
 * without the node ever allocating it.
 */
import { Packr } from 'msgpackr';
import { ProtocolError, TooLargeError } from '../errors/index.js';

/** Default largest frame body accepted after authentication (16 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Largest frame accepted before the peer has authenticated: handshakes are tiny. */
export const MAX_HANDSHAKE_FRAME_BYTES = 1024;

// Plain maps and arrays only (no msgpackr record extension): any msgpack implementation can read our frames.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Encodes one message as a length-prefixed frame. */
export function encodeFrame(message: unknown): Buffer {
  const body = packr.pack(message);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Encodes a message body without the prefix (used to measure payload sizes). */
export function encodeBody(message: unknown): Buffer {
  return packr.pack(message);
}

/**
 * Splits a byte stream into decoded messages. Feed it socket chunks; it calls `onMessage` for each whole frame.
 * Throws {@link TooLargeError} or {@link ProtocolError}; the caller then closes the connection.
 */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);
  /** Current limit; raised after authentication. */
  maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  push(chunk: Buffer, onMessage: (message: unknown, bytes: number) => void): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (this.pending.length - offset >= 4) {
      const length = this.pending.readUInt32BE(offset);
      if (length > this.maxFrameBytes) {
        throw new TooLargeError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`, {
          details: { length, limit: this.maxFrameBytes },
        });
      }
      if (this.pending.length - offset - 4 < length) break;
      const body = this.pending.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      let message: unknown;
      try {
        message = packr.unpack(body);
      } catch (cause) {
        throw new ProtocolError('frame body is not valid msgpack', { cause });
      }
      onMessage(message, length);
    }
    this.pending = offset === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(offset);
  }
}
