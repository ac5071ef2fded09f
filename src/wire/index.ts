export { Connection, type RequestHandler, type CallOptions } from './connection.js';
export { connect, type ConnectOptions } from './connect.js';
export { RpcServer, type RpcServerOptions } from './server.js';
export { Peer, splitAddress } from './peer.js';
export { generateSecretFile, readSecretFile } from './secret.js';
export { encodeFrame, encodeBody, FrameDecoder, DEFAULT_MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES } from './frame.js';
export { PROTOCOL_VERSION } from './handshake.js';
