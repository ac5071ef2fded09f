/** The local-process provisioner (the `shardflow scale` path) passes the provisioner conformance suite. */
import { LocalProvisioner } from '../../src/cluster/provisioner.js';
import { provisionerConformance } from './provisioner-conformance.js';

provisionerConformance('LocalProvisioner', async (cluster) => new LocalProvisioner(cluster.dir));
