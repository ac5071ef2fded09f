/** The NATS JetStream source against a real nats-server with JetStream (Debian's package). */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetStreamSource } from '../../../src/processing/connectors/index.js';
import { ClosedError, ConfigError } from '../../../src/errors/index.js';
import { startNats, type RunningServer } from '../../harness/servers.js';
import { sourceConformance } from '../connector-conformance.js';

let server: RunningServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let fixtures = 0;

beforeAll(async () => {
  server = await startNats();
  nc = await connect({ servers: server.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

async function stream(name: string): Promise<void> {
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
}

sourceConformance<{ i: number }>('nats jetstream', {
  idOf: (v) => v.i,
  async create({ count, bad }) {
    const n = ++fixtures;
    const names = [`CONF${n}A`, `CONF${n}B`];
    for (const s of names) await stream(s);
    const put = (i: number) => js.publish(`${names[i % 2]}.rec`, JSON.stringify({ i }));
    for (let i = 0; i < count; i++) {
      await put(i);
      if (i < bad) await js.publish(`${names[i % 2]}.rec`, '{"unterminated');
    }
    return {
      source: jetStreamSource<{ i: number }>({ servers: server.url, streams: names }),
      async append(from, more) {
        for (let i = from; i < from + more; i++) await put(i);
      },
      async cleanup() {
        for (const s of names) await jsm.streams.delete(s);
      },
    };
  },
});

describe('nats jetstream source', () => {
  it('positions are stream sequences; start "latest" skips what was there; event time is when stored', async () => {
    await stream('LATEST');
    await js.publish('LATEST.x', JSON.stringify({ old: true }));
    const source = jetStreamSource({ servers: server.url, streams: ['LATEST'], start: 'latest' });
    const reader = await source.open((await source.splits(1))[0]!);
    try {
      expect((await reader.read(10, 30)).records).toEqual([]);
      const before = Date.now();
      const ack = await js.publish('LATEST.x', JSON.stringify({ fresh: true }));
      const batch = await reader.read(10, 2000);
      expect(batch.records.map((r) => r.value)).toEqual([{ fresh: true }]);
      expect(batch.position).toEqual({ seq: ack.seq });
      expect(batch.records[0]!.eventTime).toBeGreaterThanOrEqual(before - 1000);
    } finally {
      await reader.close();
      await jsm.streams.delete('LATEST');
    }
  });

  it('bad records name the message and say why', async () => {
    await stream('BAD');
    const ack = await js.publish('BAD.x', 'plain text');
    const source = jetStreamSource({ servers: server.url, streams: ['BAD'] });
    const reader = await source.open((await source.splits(1))[0]!);
    try {
      const batch = await reader.read(10, 2000);
      expect(batch.bad).toEqual([{ raw: 'plain text', reason: expect.stringMatching(/not JSON/), where: `BAD#${ack.seq}` }]);
      expect(batch.position).toEqual({ seq: ack.seq });
    } finally {
      await reader.close();
      await jsm.streams.delete('BAD');
    }
  });

  it('refuses a bad position or split; an unknown stream or server is a ConnectionError', async () => {
    const source = jetStreamSource({ servers: server.url, streams: ['NOPE'] });
    await expect(source.open({ id: 'x', spec: { stream: 'NOPE' } }, { seq: -1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(source.open({ id: 'x', spec: {} })).rejects.toBeInstanceOf(ConfigError);
    await expect(source.open({ id: 'x', spec: { stream: 'NOPE' } })).rejects.toMatchObject({ code: 'CONNECTION_ERROR' });
    const down = jetStreamSource({ servers: 'nats://127.0.0.1:1', streams: ['X'], connection: { reconnect: false } });
    await expect(down.open({ id: 'x', spec: { stream: 'X' } })).rejects.toMatchObject({ code: 'CONNECTION_ERROR' });
  });

  it('closing a reader ends a read that waits, and later reads fail with ClosedError', async () => {
    await stream('IDLE');
    const source = jetStreamSource({ servers: server.url, streams: ['IDLE'] });
    const reader = await source.open((await source.splits(1))[0]!);
    const waiting = reader.read(10, 10_000);
    const started = Date.now();
    await reader.close();
    expect((await waiting).records).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(reader.read(10, 0)).rejects.toBeInstanceOf(ClosedError);
    await jsm.streams.delete('IDLE');
  });
});
