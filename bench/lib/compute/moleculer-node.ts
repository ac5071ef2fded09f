/**
 * One Moleculer service-hosting process for bench:compute: a ServiceBroker with the TCP transporter (see
 * moleculer-config.ts) and one service, `echo`, whose action answers with its params — the same work as shardflow's
 * `echo` (services.ts). Prints one JSON line `{"ready":true,"port":P}` once it listens; the caller then connects.
 *
 *   node --import tsx bench/lib/compute/moleculer-node.ts --id NODE_ID
 *
 * SIGTERM stops the broker (Moleculer's own signal handler) and exits.
 */
import { parseArgs } from 'node:util';
import moleculer from 'moleculer';
import { brokerOptions, loopbackOnly, transporterPort } from './moleculer-config.js';

const { values } = parseArgs({ options: { id: { type: 'string' } }, strict: true });
if (!values.id) throw new Error('--id is required');

const broker = new moleculer.ServiceBroker(brokerOptions(values.id));
loopbackOnly(broker);
broker.createService({
  name: 'echo',
  actions: {
    echo(ctx: moleculer.Context) {
      return ctx.params;
    },
  },
});
await broker.start();
process.stdout.write(JSON.stringify({ ready: true, id: values.id, port: transporterPort(broker), pid: process.pid }) + '\n');
