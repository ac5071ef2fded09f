export { Catalog, NAMESPACES_PREFIX } from './catalog.js';
export {
  RoutingTable,
  DEFAULT_SPLIT_BYTES,
  type Scheme,
  type NamespaceOptions,
  type RoutingRecord,
  type KeyPlace,
} from './routing-table.js';
export { checkNamespaceName } from './names.js';
