/**
 * Connectors: the sources and sinks a pipeline reads from and writes to, all behind the interfaces of `types.ts`.
 */
export type * from './types.js';
// HTTP ingest, Redis Streams, NATS JetStream, storage namespace, webhook.
export { httpIngest, HttpIngestSource, type HttpIngestOptions } from './http-ingest.js';
export { redisStreams, type RedisStreamsOptions } from './redis-streams.js';
export { jetStreamSource, type JetStreamOptions } from './jetstream.js';
export { namespaceSink, type NamespaceSinkOptions } from './namespace-sink.js';
export { webhook, BATCH_HEADER, type WebhookOptions } from './webhook.js';
export { signBody, bearerHeader, checkSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signing.js';
