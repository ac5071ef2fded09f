/**
 * Scans a whole namespace page by page across its partitions. Range namespaces are walked in key order, range after
 * range, each page asking the owner of the range that holds the next key (so a split or a move between pages only
 * costs a redirect). Hash namespaces are walked slot after slot.
 */
import type { RoutingTable, ScanPage } from '../keyspace/index.js';
import { InvalidArgumentError } from '../errors/index.js';

export interface ScanOptions {
  /** First key (inclusive). */
  start?: string;
  /** Stop before this key. */
  end?: string;
  /** Most entries to return in all. */
  limit?: number;
  /** Entries fetched per request (default 1000). */
  pageSize?: number;
  /**
   * Read every node's part from one point-in-time snapshot taken when the scan starts (all nodes at once), so writes
   * made during the scan are not seen and a batch is never seen half-applied. Used by `kv export`.
   */
  consistent?: boolean;
}

export interface ScanEntry<V = unknown> {
  key: string;
  value: V;
  version: number;
}

export interface ScanTransport {
  table(namespace: string): Promise<RoutingTable>;
  call(owner: string, params: Record<string, unknown>): Promise<unknown>;
  /** Called after a failed page; throws if the failure is final. */
  refresh(namespace: string, err: unknown): Promise<void>;
  openSnapshot(owner: string): Promise<string>;
  closeSnapshot(owner: string, id: string): Promise<void>;
}

export async function* scanNamespace<V>(
  transport: ScanTransport,
  namespace: string,
  options: ScanOptions,
): AsyncGenerator<ScanEntry<V>> {
  const pageSize = options.pageSize ?? 1000;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 10_000) {
    throw new InvalidArgumentError('pageSize must be an integer from 1 to 10000');
  }
  const table = await transport.table(namespace);
  const snapshots = new Map<string, Promise<string>>();
  if (options.consistent) {
    const owners = new Set(table.partitions().map((p) => table.ownerOf(p)!));
    for (const owner of owners) snapshots.set(owner, transport.openSnapshot(owner));
    await Promise.all(snapshots.values());
  }
  try {
    yield* walk<V>(transport, namespace, options, table, snapshots, pageSize);
  } finally {
    await Promise.all(
      [...snapshots].map(async ([owner, id]) => transport.closeSnapshot(owner, await id).catch(() => undefined)),
    );
  }
}

async function* walk<V>(
  transport: ScanTransport,
  namespace: string,
  options: ScanOptions,
  table: RoutingTable,
  snapshots: Map<string, Promise<string>>,
  pageSize: number,
): AsyncGenerator<ScanEntry<V>> {
  let left = options.limit ?? Number.POSITIVE_INFINITY;
  const base: Record<string, unknown> = { ns: namespace };
  if (options.end !== undefined) base.to = options.end;
  const consistent = options.consistent === true;

  if (table.scheme === 'hash') {
    for (let slot = 0; slot < (table.record.slotCount ?? 0) && left > 0; slot++) {
      let cursor: Record<string, unknown> = options.start === undefined ? {} : { from: options.start };
      for (;;) {
        const params = { ...base, ...cursor, partition: slot, limit: Math.min(pageSize, left) };
        const page = await fetchPage(transport, namespace, params, slot, consistent ? snapshots : undefined);
        for (const e of page.entries) {
          yield e as ScanEntry<V>;
          if (--left <= 0) return;
        }
        if (!page.next) break;
        cursor = page.next;
      }
    }
    return;
  }

  let cursor: Record<string, unknown> = { from: options.start ?? '' };
  while (left > 0) {
    const key = (cursor.after ?? cursor.from) as string;
    const params = { ...base, ...cursor, limit: Math.min(pageSize, left) };
    const page = await fetchPage(transport, namespace, params, key, consistent ? snapshots : undefined);
    for (const e of page.entries) {
      yield e as ScanEntry<V>;
      if (--left <= 0) return;
    }
    if (!page.next) return;
    cursor = page.next;
  }
}

/** One page from whoever owns the slot (number) or the range holding the key (string) now. */
async function fetchPage(
  transport: ScanTransport,
  namespace: string,
  params: Record<string, unknown>,
  where: number | string,
  snapshots: Map<string, Promise<string>> | undefined,
): Promise<ScanPage> {
  for (;;) {
    const table = await transport.table(namespace);
    const partition = typeof where === 'number' ? where : table.place(where).partition;
    const owner = table.ownerOf(partition) ?? '';
    try {
      const call: Record<string, unknown> = { ...params, epoch: table.epoch };
      if (snapshots) {
        // A partition that moved to a node without a snapshot yet gets one now: the best still possible.
        if (!snapshots.has(owner)) snapshots.set(owner, transport.openSnapshot(owner));
        call.snapshot = await snapshots.get(owner);
      }
      return (await transport.call(owner, call)) as ScanPage;
    } catch (err) {
      await transport.refresh(namespace, err);
    }
  }
}
