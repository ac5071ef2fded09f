import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';
import * as connectors from '../../src/processing/connectors/index.js';
import type { HttpIngestOptions, JetStreamOptions, NamespaceSinkOptions, RedisStreamsOptions, WebhookOptions } from '../../src/index.js';

describe('the public entry', () => {
  it('exports every connector factory a job uses, the same functions as the connectors module', () => {
    for (const name of ['httpIngest', 'redisStreams', 'jetStreamSource', 'namespaceSink', 'webhook'] as const) {
      expect(typeof api[name], name).toBe('function');
      expect(api[name], name).toBe(connectors[name]);
    }
    for (const name of ['files', 'textLines', 'ndjson', 'csv', 'ndjsonFile', 'generator', 'stdout', 'fromArray', 'collect'] as const)
      expect(typeof api[name], name).toBe('function');
  });

  it('exports their option types', () => {
    // Compile-time: these names resolve from the public entry (tsc checks it).
    const types: [HttpIngestOptions<unknown>?, RedisStreamsOptions<unknown>?, JetStreamOptions<unknown>?, NamespaceSinkOptions<unknown>?, WebhookOptions<unknown>?] = [];
    expect(types).toEqual([]);
  });

  it('resolves as the package itself (`import ... from "shardflow"`)', async () => {
    const pkg = (await import('shardflow')) as typeof api;
    expect(typeof pkg.namespaceSink).toBe('function');
    expect(typeof pkg.webhook).toBe('function');
  });
});
