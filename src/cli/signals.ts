/** Waiting for Ctrl-C or a stop request in long-running commands. */

/**
 * Resolves with the first SIGINT or SIGTERM. Holds a timer meanwhile: signal listeners alone do not keep Node's
 * event loop alive, and a launcher whose children are detached has nothing else that does.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const done = (signal: NodeJS.Signals) => {
      clearInterval(keepAlive);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
