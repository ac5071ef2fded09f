export { ShardflowClient, splitAddress, type BatchOp, type Entry, type ClientOptions } from './client.js';
export { connect, openCoordinator, type ConnectOptions } from './connect.js';
export { MemberView, type MemberRecord } from './member-view.js';
export type { ScanOptions, ScanEntry } from './scan.js';
