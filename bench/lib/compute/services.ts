/**
 * The services module bench:compute's shardflow compute nodes host: one tiny handler, the same work as the
 * Moleculer side's `echo` action (see moleculer-node.ts), so the benchmark measures the call path, not the handler.
 */
export default {
  /** Answers with what it was sent. */
  echo: (payload: unknown) => payload,
};
