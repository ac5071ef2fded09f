/**
 * What every StateBackend must do (the memory one now, a storage-tier one next): run `stateBackendConformance` with a
 * factory for a fresh backend. Written against the interface only.
 */
import { describe, expect, it } from 'vitest';
import type { Checkpoint, StateBackend } from '../../src/index.js';

const cp = (epoch: number): Checkpoint => ({ epoch, positions: { s0: { position: epoch * 10, done: false } }, at: 1 });

async function entries(backend: StateBackend, job: string, stage: string, options?: { slot?: number; prefix?: string }) {
  const state = await backend.open(job);
  const out: string[] = [];
  for await (const e of state.scan(stage, options)) out.push(`${e.slot}/${e.key}=${JSON.stringify(e.value)}`);
  return out.sort();
}

export function stateBackendConformance(name: string, create: () => Promise<StateBackend>): void {
  describe(`state backend conformance: ${name}`, () => {
    it('reads its own uncommitted writes, newest epoch first; a fresh job has no checkpoint', async () => {
      const state = await (await create()).open('j');
      expect(state.checkpoint).toBeUndefined();
      expect(await state.get('s', 1, 'k')).toBeUndefined();
      state.put('s', 1, 'k', { n: 1 }, 1);
      state.put('s', 1, 'k', { n: 2 }, 2);
      expect(await state.get('s', 1, 'k')).toEqual({ n: 2 });
      state.delete('s', 1, 'k', 2);
      expect(await state.get('s', 1, 'k')).toBeUndefined();
      // Slots and stages are separate spaces.
      state.put('s', 2, 'k', 'other slot', 1);
      state.put('t', 1, 'k', 'other stage', 1);
      expect(await state.get('s', 2, 'k')).toBe('other slot');
      expect(await state.get('t', 1, 'k')).toBe('other stage');
      // A stage ahead opens epoch 4 before a stage behind writes its epoch 3, then epoch 4: the newest epoch wins.
      state.put('a', 0, 'x', 'ahead', 4);
      state.put('b', 0, 'k', 'epoch 3', 3);
      state.put('b', 0, 'k', 'epoch 4', 4);
      expect(await state.get('b', 0, 'k')).toBe('epoch 4');
    });

    it('commits epochs up to the checkpoint with it; a reopened job sees only what was committed', async () => {
      const backend = await create();
      const a = await backend.open('j');
      a.put('s', 1, 'x', 1, 1);
      a.put('s', 1, 'y', 1, 1);
      a.put('s', 1, 'x', 2, 2); // a stage already past the barrier of epoch 1
      await a.commit(cp(1));
      expect(await a.get('s', 1, 'x')).toBe(2); // still pending in epoch 2, still visible to this run
      const b = await backend.open('j'); // as after a crash
      expect(b.checkpoint).toMatchObject({ epoch: 1, positions: { s0: { position: 10, done: false } } });
      expect(await b.get('s', 1, 'x')).toBe(1);
      expect(await b.get('s', 1, 'y')).toBe(1);
      b.delete('s', 1, 'y', 2);
      b.put('s', 1, 'x', 3, 2);
      await b.commit(cp(2));
      const c = await backend.open('j');
      expect(c.checkpoint?.epoch).toBe(2);
      expect(await c.get('s', 1, 'x')).toBe(3);
      expect(await c.get('s', 1, 'y')).toBeUndefined();
      // Other jobs are separate.
      expect((await backend.open('other')).checkpoint).toBeUndefined();
      expect(await (await backend.open('other')).get('s', 1, 'x')).toBeUndefined();
    });

    it('values are copies: changing an object after put or get changes no stored state', async () => {
      const backend = await create();
      const state = await backend.open('j');
      const acc = { n: 1 };
      state.put('s', 0, 'k', acc, 1);
      acc.n = 99;
      await state.commit(cp(1));
      const got = (await state.get('s', 0, 'k')) as { n: number };
      got.n = 42;
      expect(await (await backend.open('j')).get('s', 0, 'k')).toEqual({ n: 1 });
    });

    it('scans a stage by slot and key prefix, pending changes included', async () => {
      const backend = await create();
      const state = await backend.open('j');
      state.put('s', 1, 'a:1', 1, 1);
      state.put('s', 2, 'a:2', 2, 1);
      state.put('s', 2, 'b:1', 3, 1);
      state.put('t', 1, 'a:9', 9, 1);
      await state.commit(cp(1));
      const live = await backend.open('j');
      live.put('s', 1, 'a:3', 4, 2);
      live.delete('s', 2, 'a:2', 2);
      const all: string[] = [];
      for await (const e of live.scan('s', { prefix: 'a:' })) all.push(`${e.slot}/${e.key}=${JSON.stringify(e.value)}`);
      expect(all.sort()).toEqual(['1/a:1=1', '1/a:3=4']);
      expect(await entries(backend, 'j', 's', { slot: 2 })).toEqual(['2/a:2=2', '2/b:1=3']);
    });
  });
}
