import { describe, expect, it } from 'vitest';
import { RECENT_ANSWER_MAX, RECENT_MAX, RECENT_MS, RecentApplies } from '../../src/storage/recent-applies.js';

describe('RecentApplies', () => {
  it('answers the keys a leader sent to some partitions above a version, each once, and the newest version', () => {
    let now = 0;
    const r = new RecentApplies(() => now);
    r.record('s1', 'ns', 1, 'a', 10);
    r.record('s1', 'ns', 1, 'a', 11);
    r.record('s1', 'ns', 2, 'b', 12);
    r.record('s2', 'ns', 1, 'c', 13); // another leader
    r.record('s1', 'other', 1, 'd', 14); // another namespace
    expect(r.from('s1', 'ns', new Set([1, 2]), -1)).toEqual({ keys: [['ns', 1, 'a'], ['ns', 2, 'b']], complete: true });
    expect(r.from('s1', 'ns', new Set([1, 2]), 11).keys).toEqual([['ns', 2, 'b']]);
    expect(r.from('s1', 'ns', new Set([2]), -1).keys).toEqual([['ns', 2, 'b']]);
    expect(r.newestFrom('s1')).toBe(14);
    expect(r.newestFrom('s3')).toBe(-1);
  });

  it('forgets keys older than RECENT_MS, and says when keys that young were dropped for room', () => {
    let now = 0;
    const r = new RecentApplies(() => now);
    r.record('s1', 'ns', 1, 'old', 1);
    now = RECENT_MS + 1;
    r.record('s1', 'ns', 1, 'new', 2);
    expect(r.from('s1', 'ns', new Set([1]), -1)).toEqual({ keys: [['ns', 1, 'new']], complete: true });
    for (let i = 0; i < RECENT_MAX + 10; i++) r.record('s1', 'ns', 1, `k${i}`, 3 + i);
    expect(r.size).toBe(RECENT_MAX);
    const answer = r.from('s1', 'ns', new Set([1]), -1);
    expect(answer.complete).toBe(false);
    expect(answer.keys).toHaveLength(RECENT_ANSWER_MAX); // an answer is cut short, and says so
    expect(answer.keys[0]).toEqual(['ns', 1, 'k10']);
    expect(r.from('s1', 'ns', new Set([1]), 3 + RECENT_MAX + 9 - 100).keys).toHaveLength(100); // the newest, after a version
    now += RECENT_MS + 1; // long after the overflow: complete again (nothing that young was dropped)
    r.record('s1', 'ns', 1, 'later', 10 ** 9);
    expect(r.from('s1', 'ns', new Set([1]), -1)).toEqual({ keys: [['ns', 1, 'later']], complete: true });
  });
});
