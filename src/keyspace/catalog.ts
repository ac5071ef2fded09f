/**
 * The namespace catalog: every namespace's routing table, kept current from the coordinator by a watch.
 * Storage nodes, clients and the CLI each hold one. Changes go through compare-and-set on the namespace's key, so two
 * writers racing (two `kv` commands creating one namespace, two nodes splitting) cannot both win.
 */
import type { Coordinator, Watch } from '../coordination/coordinator.js';
import { NAMESPACES_PREFIX } from '../coordination/keys.js';
import { NamespaceExistsError, UnknownNamespaceError, CoordinatorError } from '../errors/index.js';
import { checkNamespaceName } from './names.js';
import { RoutingTable, type NamespaceOptions, type RoutingRecord } from './routing-table.js';


interface Known {
  table: RoutingTable;
  revision: number;
}

/**
 * @example
 * ```ts
 * const catalog = await Catalog.open(coordinator);
 * await catalog.create('users', { scheme: 'hash' }, (parts) => initialAssignment(parts, nodes).assignment);
 * catalog.table('users').place('u1'); // { partition: 1234, slot: 1234 }
 * ```
 */
export class Catalog {
  private readonly known = new Map<string, Known>();
  private readonly listeners = new Set<(table: RoutingTable | undefined, name: string) => void>();
  private watch: Watch | undefined;
  private closed = false;

  /** Reads in flight per namespace, and the one queued behind it (see {@link refresh}). */
  private readonly refreshing = new Map<string, { current: Promise<RoutingTable | undefined>; next?: Promise<RoutingTable | undefined> }>();

  private constructor(private readonly coordinator: Coordinator) {}

  /** Loads every namespace and follows changes. */
  static async open(coordinator: Coordinator): Promise<Catalog> {
    const catalog = new Catalog(coordinator);
    await catalog.start();
    return catalog;
  }

  /**
   * Watches first, then lists: a change between the two is seen by the watch, and `accept` keeps the newest revision
   * whichever arrives first. A watch that breaks (coordinator restarted, history gone) is replaced the same way.
   */
  private async start(): Promise<void> {
    this.watch = await this.coordinator.watch(
      NAMESPACES_PREFIX,
      (event) => {
        const name = event.key.slice(NAMESPACES_PREFIX.length);
        if (event.type === 'delete') {
          this.known.delete(name);
          for (const l of this.listeners) l(undefined, name);
        } else if (event.value !== undefined) {
          this.accept(name, event.value, event.revision);
        }
      },
      { onError: () => this.restart(100) },
    );
    for (const e of await this.coordinator.list(NAMESPACES_PREFIX)) {
      this.accept(e.key.slice(NAMESPACES_PREFIX.length), e.value, e.revision);
    }
  }

  private restart(delayMs: number): void {
    if (this.closed) return;
    this.start().catch(() => setTimeout(() => this.restart(Math.min(delayMs * 2, 2000)), delayMs).unref());
  }

  private accept(name: string, value: string, revision: number): void {
    const have = this.known.get(name);
    if (have && have.revision >= revision) return;
    const table = RoutingTable.fromRecord(JSON.parse(value) as RoutingRecord);
    this.known.set(name, { table, revision });
    for (const l of this.listeners) l(table, name);
  }

  /** Calls `listener` whenever a namespace's table changes or the namespace is dropped (`undefined`). */
  onChange(listener: (table: RoutingTable | undefined, name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  names(): string[] {
    return [...this.known.keys()].sort();
  }

  /** The cached table, or undefined. */
  find(name: string): RoutingTable | undefined {
    return this.known.get(name)?.table;
  }

  /** The cached table; throws {@link UnknownNamespaceError}. */
  table(name: string): RoutingTable {
    const t = this.find(name);
    if (!t) throw new UnknownNamespaceError(`namespace ${JSON.stringify(name)} does not exist`, { details: { namespace: name } });
    return t;
  }

  /** Reads the table from the coordinator now (after a MOVED, when the watch may lag). */
  async refresh(name: string): Promise<RoutingTable | undefined> {
    // Callers that ask while a read is in flight share the next one (not the current: it may predate their need).
    const queued = this.refreshing.get(name);
    if (queued?.next) return queued.next;
    if (queued) {
      queued.next = queued.current.then(() => this.refresh(name));
      return queued.next;
    }
    const current = this.coordinator
      .get(NAMESPACES_PREFIX + name)
      .then((e) => {
        if (e) this.accept(name, e.value, e.revision);
        return this.find(name);
      })
      .finally(() => {
        // The queued read, if any, registers itself when it starts.
        if (this.refreshing.get(name)?.current === current) this.refreshing.delete(name);
      });
    this.refreshing.set(name, { current });
    return current;
  }

  /**
   * Creates a namespace. If one of that name exists with the same scheme, returns it (creation is idempotent);
   * with another scheme, throws {@link NamespaceExistsError}.
   */
  async create(
    name: string,
    options: NamespaceOptions,
    assign: (partitions: number[]) => Map<number, string>,
    /** The storage nodes followers may be placed on (default: those `assign` chose). */
    nodes?: readonly string[],
  ): Promise<RoutingTable> {
    checkNamespaceName(name);
    const existing = this.find(name) ?? (await this.refresh(name));
    if (existing) return sameScheme(existing, options);
    const table = RoutingTable.create(name, options, assign, nodes);
    const result = await this.coordinator.compareAndSet(NAMESPACES_PREFIX + name, 0, JSON.stringify(table.record));
    if (result.ok) {
      this.accept(name, JSON.stringify(table.record), result.revision);
      return table;
    }
    const raced = await this.refresh(name);
    if (!raced) throw new CoordinatorError(`namespace ${name} vanished while being created`);
    return sameScheme(raced, options);
  }

  /**
   * Replaces a table through compare-and-set: `change` gets the current table and returns the next one (or
   * undefined to give up). Retries when another writer changed it meanwhile.
   */
  async update(name: string, change: (current: RoutingTable) => RoutingTable | undefined): Promise<RoutingTable> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const e = await this.coordinator.get(NAMESPACES_PREFIX + name);
      if (!e) throw new UnknownNamespaceError(`namespace ${JSON.stringify(name)} does not exist`, { details: { namespace: name } });
      const current = RoutingTable.fromRecord(JSON.parse(e.value) as RoutingRecord);
      const next = change(current);
      if (!next) return current;
      const result = await this.coordinator.compareAndSet(NAMESPACES_PREFIX + name, e.revision, JSON.stringify(next.record));
      if (result.ok) {
        this.accept(name, JSON.stringify(next.record), result.revision);
        return next;
      }
    }
    throw new CoordinatorError(`could not update ${name}: too many concurrent changes`);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
    this.listeners.clear();
  }
}

function sameScheme(table: RoutingTable, options: NamespaceOptions): RoutingTable {
  if (table.scheme !== options.scheme) {
    throw new NamespaceExistsError(`namespace ${table.name} exists with scheme ${table.scheme}, not ${options.scheme}`, {
      details: { namespace: table.name, scheme: table.scheme },
    });
  }
  return table;
}
