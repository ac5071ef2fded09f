import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect, count, global, ndjson, ndjsonFile, pipeline, type DeadLetter, type Mode } from '../../src/index.js';
import { tempDir } from './helpers.js';

interface Order {
  user: string;
  amount: number;
}

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe.each(['stream', 'batch'] as Mode[])('dead letters (%s mode)', (mode) => {
  it('bad lines, wrong types and throwing functions go to the dead-letter output; the job keeps running', async () => {
    await writeFile(
      join(dir, 'orders.ndjson'),
      [
        '{"user":"ada","amount":5}',
        '{"user":"ada", amount: 7}', // not JSON
        '{"user":"bob","amount":"ten"}', // wrong type
        '{"user":"bob","amount":3}',
        '{"user":"eve","amount":-1}', // the map throws
        '{"user":["not","a","key"],"amount":1}', // the key is not a string
        '{"user":"bob","amount":4}',
        '',
      ].join('\n'),
    );
    const out = collect<{ user: string; orders: number }>();
    const dead = collect<DeadLetter>();
    const result = await pipeline('orders')
      .from(ndjson<Order>(join(dir, '*.ndjson')))
      .validate((o): o is Order => typeof o === 'object' && o !== null && typeof o.amount === 'number', 'not an order: amount must be a number')
      .map((o) => {
        if (o.amount < 0) throw new RangeError(`negative amount ${o.amount}`);
        return o;
      })
      .deadLetters(dead.sink)
      .keyBy((o) => o.user as string)
      .window(global())
      .aggregate(count())
      .map((r) => ({ user: r.key, orders: r.value }))
      .to(out.sink)
      .run({ mode, trigger: 'count=2' });
    expect(out.values).toEqual([
      { user: 'ada', orders: 1 },
      { user: 'bob', orders: 2 },
    ]);
    const letters = dead.values.map((d) => ({ stage: d.stage, reason: d.reason, record: d.record, where: d.where }));
    expect(letters).toEqual(
      expect.arrayContaining([
        { stage: 'source', reason: expect.stringMatching(/^invalid JSON/), record: '{"user":"ada", amount: 7}', where: expect.stringMatching(/orders\.ndjson:2$/) },
        { stage: 'chain-0', reason: 'not an order: amount must be a number', record: { user: 'bob', amount: 'ten' }, where: undefined },
        { stage: 'chain-0', reason: 'map failed: RangeError: negative amount -1', record: { user: 'eve', amount: -1 }, where: undefined },
        { stage: 'keyed-1', reason: 'keyBy gave object, not a string or a finite number', record: { user: ['not', 'a', 'key'], amount: 1 }, where: undefined },
      ]),
    );
    expect(letters).toHaveLength(4);
    expect(dead.values.every((d) => d.job === 'orders' && !Number.isNaN(Date.parse(d.at)))).toBe(true);
    expect(result.metrics.deadLetters).toBe(4);
    expect(result.metrics.source.bad).toBe(1);
  });

  it('the dead-letter output can be a file', async () => {
    await writeFile(join(dir, 'in.ndjson'), '1\n{oops\n2\n');
    const out = collect<number>();
    await pipeline('to-file')
      .from(ndjson<number>(join(dir, 'in.ndjson')))
      .deadLetters(ndjsonFile(join(dir, 'dead', 'letters.ndjson')))
      .to(out.sink)
      .run({ mode });
    expect(out.values).toEqual([1, 2]);
    const lines = (await readFile(join(dir, 'dead', 'letters.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as DeadLetter);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ job: 'to-file', stage: 'source', record: '{oops' });
  });
});
