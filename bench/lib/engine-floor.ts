/**
 * The storage engine alone: shardflow's `StorageEngine` (the same LMDB environment and options a storage node opens),
 * driven in this process with no network and no RPC, in each durability mode. Its put rate is the ceiling one
 * storage node's puts can reach on this disk, which tells how much of shardflow's put throughput is the engine and how
 * much is everything around it — and what acknowledging only after the device flush (`device`) costs here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageEngine, type Durability } from '../../src/storage/engine.js';
import { keySlot } from '../../src/partitioning/index.js';
import { onCleanup, trackDir, untrackDir } from './cleanup.js';
import { runLoad, type Sample } from './load.js';
import type { KvTarget } from './targets.js';

export interface FloorResult {
  durability: Durability;
  concurrency: number;
  sample: Sample;
}

export async function measureEngineFloor(
  parent: string,
  modes: Durability[],
  levels: number[],
  seconds: number,
  keys: string[],
  value: string,
): Promise<FloorResult[]> {
  const results: FloorResult[] = [];
  for (const durability of modes) {
    for (const concurrency of levels) {
      results.push({ durability, concurrency, sample: await measureOne(parent, durability, concurrency, seconds, keys, value) });
    }
  }
  return results;
}

/** One fresh engine (its own directory), one load level. */
async function measureOne(
  parent: string,
  durability: Durability,
  concurrency: number,
  seconds: number,
  keys: string[],
  value: string,
): Promise<Sample> {
  const dir = await mkdtemp(join(parent, 'shardflow-bench-engine-'));
  trackDir(dir);
  let engine: StorageEngine | undefined;
  const stop = async () => {
    await engine?.close();
    engine = undefined;
    await rm(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  const dropCleanup = onCleanup('storage engine', stop);
  try {
    engine = StorageEngine.open(dir, { durability });
    const e = engine;
    const slots = new Map(keys.map((k) => [k, keySlot(k)]));
    const where = (key: string) => {
      const slot = slots.get(key)!;
      return { namespace: 'default', partition: slot, slot };
    };
    const target: KvTarget = {
      name: 'engine',
      serverPids: [],
      put: (key, v) => e.put(where(key), key, v),
      get: async (key) => e.get(where(key), key)?.value as string | undefined,
      prefill: async () => {},
      close: async () => {},
    };
    return await runLoad(target, { op: 'put', concurrency, warmupSeconds: 0.5, seconds, keys, value });
  } finally {
    dropCleanup();
    await stop();
  }
}
