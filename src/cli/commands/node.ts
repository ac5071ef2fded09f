/**
 * `shardflow node` runs one node in this process until SIGINT/SIGTERM — from a local cluster directory, or against
 * an external coordinator (the multi-host way). `shardflow coordinator` runs a local cluster's embedded coordinator.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { ClusterDir, DEFAULT_CLUSTER_DIR } from '../../config/cluster-dir.js';
import { announceReady } from '../../cluster/spawn.js';
import { ConfigError, InvalidArgumentError } from '../../errors/index.js';
import { readSecretFile } from '../../wire/index.js';
import { isUnspecifiedHost, parseAdvertiseHost, parseCoordinatorUrl, parseHostPort, parsePositive } from '../options.js';
import { untilSignal } from '../signals.js';
import { createLogger } from '../../util/logger.js';

interface NodeOptions {
  role: string;
  id: string;
  dir?: string;
  data?: string;
  coordinator?: string;
  secretFile?: string;
  listen: { host: string; port: number };
  advertise?: string;
  capacity: number;
  durability: 'process' | 'device';
  services?: string;
}

export function registerNodeCommands(program: Command): void {
  program
    .command('node')
    .description('run one storage or compute node in this process (until SIGINT/SIGTERM)')
    .requiredOption('--role <role>', 'storage or compute')
    .requiredOption('--id <id>', 'node id, unique in the cluster')
    .option('--dir <dir>', 'local cluster directory (gives coordinator, secret and data paths)')
    .option('--data <path>', 'data directory (storage; default DIR/nodes/ID/data)')
    .option('--coordinator <url>', 'embedded://host:port or etcd://host:port,... (default: from --dir)')
    .option('--secret-file <path>', 'cluster secret file, mode 0600 (default: DIR/secret)')
    .option('--listen <host:port>', 'address to listen on', parseHostPort('--listen'), { host: '127.0.0.1', port: 0 })
    .option('--advertise <host>', 'host (name or IP, no port: the bound port is added) others connect to (default: the listen host)', parseAdvertiseHost('--advertise'))
    .option('--capacity <n>', 'relative capacity for partition placement', parsePositive('--capacity'), 1)
    .option('--services <file>', 'compute: the module (.ts or .js) whose exported handlers this node hosts')
    .option('--durability <mode>', 'storage: acknowledge writes once safe from a process crash (process), or once on the device (device)', 'process')
    .action(async (opts: NodeOptions) => {
      if (opts.durability !== 'process' && opts.durability !== 'device') {
        throw new InvalidArgumentError(`--durability must be process or device, not ${JSON.stringify(opts.durability)}`);
      }
      if (opts.role !== 'storage' && opts.role !== 'compute') {
        throw new InvalidArgumentError(`--role must be storage or compute, not ${JSON.stringify(opts.role)}`);
      }
      if (opts.services && opts.role !== 'compute') throw new InvalidArgumentError('--services is for compute nodes');
      if (opts.advertise === undefined && isUnspecifiedHost(opts.listen.host)) {
        // The listen host is what the node registers without --advertise, and no other host can connect to 0.0.0.0.
        throw new InvalidArgumentError(
          `--listen ${opts.listen.host || '(every interface)'}:${opts.listen.port} listens on every interface, which is no address others can ` +
            `connect to: add --advertise with this host's address (e.g. --advertise 10.0.0.11; docs/deploy.md)`,
        );
      }
      const dir = opts.dir ? new ClusterDir(opts.dir) : undefined;
      const address = opts.coordinator ? parseCoordinatorUrl(opts.coordinator) : (await dir?.readCluster())?.coordinator;
      const secretPath = opts.secretFile ?? dir?.secretFile;
      if (!address || !secretPath) throw new ConfigError('give --dir, or --coordinator and --secret-file');
      const dataDir = opts.data ?? dir?.nodeDataDir(opts.id);
      if (opts.role === 'storage' && !dataDir) throw new ConfigError('a storage node needs --data or --dir');
      const { loadServices } = await import('../../compute/services.js');
      // Load the user's module before joining: a module that does not load is refused before anything announces.
      const services = opts.services ? await loadServices(opts.services) : undefined;
      const secret = await readSecretFile(secretPath);
      const { createCoordinator } = await import('../../coordination/index.js');
      const { StorageNode } = await import('../../storage/storage-node.js');
      const { ComputeNode } = await import('../../compute/compute-node.js');
      const coordinator =
        address.kind === 'embedded'
          ? await createCoordinator({ kind: 'embedded', host: address.host, port: address.port, secret })
          : await createCoordinator({ kind: 'etcd', endpoints: address.endpoints, prefix: address.prefix });
      const common = {
        id: opts.id,
        secret,
        coordinator,
        listenHost: opts.listen.host,
        listenPort: opts.listen.port,
        advertiseHost: opts.advertise,
        capacity: opts.capacity,
      };
      // A compute node serves `job.*` calls (its job host) from the moment it announces itself: a job's leader may
      // pick it at once. Calls that come before the host is up wait for it.
      let hostUp!: (host: { handle(method: string, params: unknown): Promise<unknown> }) => void;
      const jobHost = new Promise<{ handle(method: string, params: unknown): Promise<unknown> }>((r) => (hostUp = r));
      const node =
        opts.role === 'storage'
          ? await StorageNode.start({ ...common, dataDir: dataDir!, durability: opts.durability })
          : await ComputeNode.start({ ...common, services, routes: new Map([['job.', (method, params) => jobHost.then((h) => h.handle(method, params))]]) });
      // Storage nodes also run the replica controller (failover, re-replication); one of them leads at a time.
      let replicas: { stop(handOff: boolean): Promise<void> } | undefined;
      if (node instanceof StorageNode) {
        const { connect, PeerPool } = await import('../../client/index.js');
        const { ReplicaController, handOffAllLeads } = await import('../../migration/index.js');
        const client = await connect({ coordinator: address, secret, name: `replicas:${opts.id}` });
        const pool = new PeerPool(client.members, secret, `replicas:${opts.id}`);
        const controller = ReplicaController.start({ coordinator, catalog: client.catalog, members: client.members, pool, name: opts.id });
        replicas = {
          stop: async (handOff) => {
            await controller.stop();
            if (handOff) {
              // Controlled shutdown (SIGTERM): the partitions it leads pass to in-sync followers before it leaves.
              const log = createLogger(`storage:${opts.id}`);
              await node.announceStopping().catch((err: unknown) => log.warn('could not announce stopping', { error: String(err) }));
              const r = await handOffAllLeads({ catalog: client.catalog, members: client.members, pool }, opts.id, { timeoutMs: 8000 }).catch(
                (err: unknown) => void log.warn('handing off leads before stopping failed', { error: String(err) }),
              );
              if (r && r.handedOff + r.kept > 0) log.info('handed off leads before stopping', { ...r });
            }
            pool.close();
            await client.close();
          },
        };
      }
      // Compute nodes also run the jobs submitted to the cluster (`run --on-cluster`), one node per job at a time.
      let jobs: { host: { stop(): Promise<void> }; client: { close(): Promise<void> } } | undefined;
      if (opts.role === 'compute') {
        const { connect, PeerPool } = await import('../../client/index.js');
        const { JobHost } = await import('../../processing/job-host.js');
        const client = await connect({ coordinator: address, secret, name: `jobs:${opts.id}` });
        const pool = new PeerPool(client.members, secret, `jobs:${opts.id}`);
        const host = await JobHost.start({ nodeId: opts.id, coordinator, client, members: client.members, pool, clusterDir: dir?.root });
        hostUp(host);
        jobs = {
          host,
          client: {
            close: async () => {
              pool.close();
              await client.close();
            },
          },
        };
      }
      announceReady({ id: node.id, role: opts.role, address: node.address, pid: process.pid });
      const signal = await untilSignal();
      createLogger(`${opts.role}:${opts.id}`).info('stopping', { signal });
      // SIGTERM stops a storage node gracefully (its leads handed off first); SIGINT stops it at once (`down` stops
      // every node together: none would take the leads).
      await replicas?.stop(signal === 'SIGTERM');
      await jobs?.host.stop();
      await jobs?.client.close();
      await node.stop();
      await coordinator.close();
    });

  program
    .command('coordinator', { hidden: true })
    .description("run a local cluster's embedded coordinator (started by 'shardflow up'; not fault tolerant)")
    .option('--dir <dir>', 'cluster directory', DEFAULT_CLUSTER_DIR)
    .action(async (opts: { dir: string }) => {
      const dir = new ClusterDir(opts.dir);
      const cluster = await dir.readCluster();
      if (cluster.coordinator.kind !== 'embedded') throw new ConfigError(`${dir.root} does not use the embedded coordinator`);
      await mkdir(dir.coordinatorDir, { recursive: true });
      const { EmbeddedCoordinatorServer } = await import('../../coordination/index.js');
      const server = new EmbeddedCoordinatorServer({
        secret: await dir.readSecret(),
        dataFile: join(dir.coordinatorDir, 'state.json'),
      });
      let bound;
      try {
        bound = await server.listen(cluster.coordinator.port, cluster.coordinator.host);
      } catch {
        bound = await server.listen(0, cluster.coordinator.host); // The old port is taken: any free one will do.
      }
      if (bound.port !== cluster.coordinator.port) {
        await dir.writeCluster({ ...cluster, coordinator: { ...cluster.coordinator, port: bound.port } });
      }
      const pidFile = join(dir.coordinatorDir, 'pid');
      await writeFile(pidFile, String(process.pid));
      announceReady({ role: 'coordinator', address: `${bound.host}:${bound.port}`, pid: process.pid });
      await untilSignal();
      await server.close();
      await rm(pidFile, { force: true });
    });
}
