/**
 * A writer that talks straight to one storage node over the wire — no routing, no retries — and says what became of
 * every write: started by test/integration/netns-partition.test.ts inside the namespace of a node that is about to
 * be cut off, so it can still reach that node while nobody else can.
 *
 *   node --import tsx test/harness/netns-writer.ts '{"address":"10.213.7.11:7000","secretFile":"/tmp/…/secret",
 *     "ns":"np","epoch":3,"keys":["a","b"],"concurrency":4,"callTimeoutMs":8000}'
 *
 * `concurrency` workers (default 4) split the keys; a call not answered within `callTimeoutMs` (default 8000) is
 * reported as a failure with code TIMEOUT (its outcome unknown). With `"mode":"read"` it reads the keys instead
 * (`kv.get`, from the leader), printing `{"type":"read","key":…,"value":…|null,"sent":ms,"t":ms}` for each answer.
 *
 * Prints one JSON line per outcome on stdout:
 *
 *   {"type":"ack","key":…,"value":…,"version":…,"sent":ms,"t":ms}          the node acknowledged the write
 *   {"type":"fail","key":…,"value":…,"code":"MOVED","message":…,"sent":ms,"t":ms}
 *   {"type":"done","acks":n,"fails":n}                                       after SIGTERM/SIGINT, once in-flight
 *                                                                            writes have answered
 *
 * `t` is when the answer arrived (Date.now(), the same clock as the test's). Each key has one worker and values
 * come from one counter, so a key's values only grow. A failed write is followed by a 50 ms pause.
 */
import { connect, readSecretFile, type Connection } from '../../src/wire/index.js';

interface Args {
  address: string;
  secretFile: string;
  ns: string;
  epoch: number;
  keys: string[];
  concurrency?: number;
  callTimeoutMs?: number;
  mode?: 'write' | 'read';
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const [host, portText] = [args.address.slice(0, args.address.lastIndexOf(':')), args.address.slice(args.address.lastIndexOf(':') + 1)];
const secret = await readSecretFile(args.secretFile);
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');

let running = true;
let counter = 0;
let acks = 0;
let fails = 0;
let current: Promise<Connection> | undefined;

/** One shared connection, opened again when it closes or could not be opened. */
function connection(): Promise<Connection> {
  if (!current) {
    const opening = connect({ host, port: Number(portText), secret, name: 'netns-writer', connectTimeoutMs: 3000 });
    current = opening;
    opening.then(
      (c) => c.once('close', () => current === opening && (current = undefined)),
      () => current === opening && (current = undefined),
    );
  }
  return current;
}

async function worker(w: number, workers: number): Promise<void> {
  const mine = args.keys.filter((_, i) => i % workers === w);
  for (let round = 0; running && mine.length > 0; round++) {
    const key = mine[round % mine.length]!;
    const value = ++counter;
    const sent = Date.now();
    try {
      const c = await connection();
      if (args.mode === 'read') {
        const r = (await c.call('kv.get', { ns: args.ns, key, epoch: args.epoch }, { timeoutMs: args.callTimeoutMs ?? 8000 })) as { value: unknown } | null;
        out({ type: 'read', key, value: r?.value ?? null, sent, t: Date.now() });
        await new Promise((r) => setTimeout(r, 20)); // reads need no hurry: a steady trickle through the cut
        continue;
      }
      const r = (await c.call('kv.put', { ns: args.ns, key, value, epoch: args.epoch }, { timeoutMs: args.callTimeoutMs ?? 8000 })) as { version: number };
      acks++;
      out({ type: 'ack', key, value, version: r.version, sent, t: Date.now() });
    } catch (err) {
      fails++;
      const e = err as { code?: string; message?: string };
      out({ type: 'fail', key, value, code: e.code ?? 'ERROR', message: String(e.message ?? err).slice(0, 300), sent, t: Date.now() });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const stop = () => {
  running = false;
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

const workers = Math.max(1, args.concurrency ?? 4);
out({ type: 'started', t: Date.now() });
await Promise.all(Array.from({ length: workers }, (_, w) => worker(w, workers)));
out({ type: 'done', acks, fails });
void current?.then((c) => c.close('done'), () => undefined);
process.exit(0);
