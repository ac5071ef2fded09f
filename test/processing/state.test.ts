import { MemoryStateBackend } from '../../src/index.js';
import { stateBackendConformance } from './state-backend-conformance.js';

stateBackendConformance('memory', async () => new MemoryStateBackend());
