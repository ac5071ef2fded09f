import { describe, expect, it } from 'vitest';
import { main as kvBasics } from '../../examples/kv-basics.js';

describe('examples', () => {
  it('kv-basics runs and shows CAS and an ordered scan', async () => {
    expect(await kvBasics(() => {})).toEqual(['conflict', '{"name":"Ada Lovelace"}', 'a=A', 'b=B', 'c=C']);
  });
});
