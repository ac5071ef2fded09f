export { ShardflowClient, type BatchOp, type Entry, type ClientOptions, type ReadOptions } from './client.js';
export { splitAddress, PeerPool } from './peer-pool.js';
export type { ServiceCallOptions } from './service-caller.js';
export { connect, openCoordinator, type ConnectOptions } from './connect.js';
export { MemberView, type MemberRecord } from './member-view.js';
export type { ScanOptions, ScanEntry } from './scan.js';
