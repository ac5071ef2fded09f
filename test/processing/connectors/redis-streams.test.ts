/** The Redis Streams source against a real redis-server (Debian's package). */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStreams } from '../../../src/processing/connectors/index.js';
import { ClosedError, ConfigError } from '../../../src/errors/index.js';
import { startRedis, type RunningServer } from '../../harness/servers.js';
import { sourceConformance } from '../connector-conformance.js';

let server: RunningServer;
let redis: Redis;
let fixtures = 0;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

async function add(key: string, fields: string[]): Promise<string> {
  return (await redis.xadd(key, '*', ...fields))!;
}

sourceConformance<{ i: number }>('redis streams', {
  idOf: (v) => v.i,
  async create({ count, bad }) {
    const n = ++fixtures;
    const keys = [`conf${n}:a`, `conf${n}:b`];
    const put = async (i: number) => add(keys[i % 2]!, ['data', JSON.stringify({ i })]);
    for (let i = 0; i < count; i++) {
      await put(i);
      if (i < bad) await add(keys[i % 2]!, i % 2 === 0 ? ['data', '{not json'] : ['other', 'x']);
    }
    return {
      source: redisStreams<{ i: number }>({ url: server.url, streams: keys }),
      async append(from, more) {
        for (let i = from; i < from + more; i++) await put(i);
      },
      async cleanup() {
        await redis.del(...keys);
      },
    };
  },
});

describe('redis streams source', () => {
  it('positions are entry ids; start "latest" skips what was there; field null gives the fields', async () => {
    await add('plain', ['user', 'u1']);
    const latest = redisStreams({ url: server.url, streams: ['plain'], start: 'latest', field: null });
    const [split] = await latest.splits(1);
    const reader = await latest.open(split!);
    try {
      const idle = await reader.read(10, 30);
      expect(idle.records).toEqual([]);
      const id = await add('plain', ['user', 'u2']);
      const batch = await reader.read(10, 2000);
      expect(batch.records.map((r) => r.value)).toEqual([{ user: 'u2' }]);
      expect(batch.position).toEqual({ id });
      expect(batch.records[0]!.eventTime).toBe(Number(id.split('-')[0]));
    } finally {
      await reader.close();
    }
  });

  it('bad records name the entry and say why', async () => {
    const id = await add('bad1', ['data', '[1,']);
    const source = redisStreams({ url: server.url, streams: ['bad1'] });
    const reader = await source.open((await source.splits(1))[0]!);
    try {
      const batch = await reader.read(10, 1000);
      expect(batch.bad).toEqual([expect.objectContaining({ where: `bad1@${id}`, reason: expect.stringMatching(/not JSON/) })]);
    } finally {
      await reader.close();
    }
  });

  it('refuses a bad position or split, and an unreachable server with ConnectionError', async () => {
    const source = redisStreams({ url: server.url, streams: ['x'] });
    await expect(source.open({ id: 'x', spec: { key: 'x' } }, { id: 'nope' })).rejects.toBeInstanceOf(ConfigError);
    await expect(source.open({ id: 'x', spec: 'x' })).rejects.toBeInstanceOf(ConfigError);
    expect(() => redisStreams({ streams: [] })).toThrow(ConfigError);
    const down = redisStreams({ url: 'redis://127.0.0.1:1', streams: ['x'], redis: { retryStrategy: () => null } });
    await expect(down.open({ id: 'x', spec: { key: 'x' } })).rejects.toMatchObject({ code: 'CONNECTION_ERROR' });
  });

  it('closing a reader ends a read that waits, and later reads fail with ClosedError', async () => {
    const source = redisStreams({ url: server.url, streams: ['idle'] });
    const reader = await source.open((await source.splits(1))[0]!);
    const waiting = reader.read(10, 10_000);
    const started = Date.now();
    await reader.close();
    expect((await waiting).records).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(reader.read(10, 0)).rejects.toBeInstanceOf(ClosedError);
  });
});
