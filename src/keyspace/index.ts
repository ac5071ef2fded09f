/**
 * The keyspace: what namespaces, keys and values are, how keys map to partitions and partitions to nodes (routing
 * tables kept in the coordinator), and the answer shapes of the key-value protocol. Shared by storage nodes, clients
 * and the CLI.
 */
export { Catalog } from './catalog.js';
export {
  RoutingTable,
  DEFAULT_SPLIT_BYTES,
  DEFAULT_SPLIT_OPS_SUSTAIN_MS,
  MAX_COPIES,
  type Scheme,
  type NamespaceOptions,
  type RoutingRecord,
  type KeyPlace,
  type MigrationEntry,
} from './routing-table.js';
export { checkNamespaceName } from './names.js';
export { checkKey, checkValue, MAX_KEY_BYTES, MAX_VALUE_BYTES, MAX_BATCH_OPS, MAX_SCAN_LIMIT, MAX_CALL_BYTES } from './limits.js';
export type { KvEntry, ScanPage } from './kv-protocol.js';
