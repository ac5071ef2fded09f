import { describe, expect, it } from 'vitest';
import { BatchTrigger, ConfigError, parseBytes, parseDuration, parseTrigger } from '../../src/index.js';

describe('trigger specs', () => {
  it('parses every trigger, in any order and with units', () => {
    expect(parseTrigger('interval=5s,count=1000,bytes=1mb')).toEqual({ intervalMs: 5000, count: 1000, bytes: 1024 * 1024 });
    expect(parseTrigger(' bytes = 64kb , interval=250ms ')).toEqual({ bytes: 65536, intervalMs: 250 });
    expect(parseTrigger('count=10k')).toEqual({ count: 10_000 });
    expect(parseTrigger({ interval: '2m', count: 5 })).toEqual({ intervalMs: 120_000, count: 5 });
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseBytes('2gb')).toBe(2 * 1024 ** 3);
  });

  it.each([
    ['', /empty trigger/],
    ['count', /expected name=value/],
    ['speed=3', /unknown trigger "speed"/],
    ['count=0', /more than zero/],
    ['count=1.5', /whole number/],
    ['count=-1', /bad trigger count/],
    ['interval=5 parsecs', /bad trigger interval "5 parsecs"/],
    ['bytes=1tb', /bad trigger bytes "1tb"/],
    ['count=1,count=2', /given twice/],
  ])('refuses %j with a ConfigError', (spec, message) => {
    let caught: unknown;
    try {
      parseTrigger(spec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toMatch(message);
  });

  it('fires on whichever trigger comes first', () => {
    let now = 0;
    const t = new BatchTrigger(parseTrigger('interval=1s,count=3,bytes=100'), () => now);
    expect(t.fired()).toBeUndefined();
    t.add(10);
    t.add(10);
    expect(t.fired()).toBeUndefined();
    t.add(10);
    expect(t.fired()).toBe('count');
    t.reset();
    t.add(150);
    expect(t.fired()).toBe('bytes');
    t.reset();
    t.add(1);
    now = 999;
    expect(t.fired()).toBeUndefined();
    expect(t.msLeft()).toBe(1);
    now = 1000;
    expect(t.fired()).toBe('interval');
  });
});
