/**
 * A split's lag estimated from the bytes it has left: records read so far give the bytes per record, and the bytes
 * left divided by it are the records still to read (`ReadBatch.pending`) — for sources that know their size in bytes
 * only (files, the ingest log).
 *
 * @example
 * ```ts
 * const lag = new LagEstimate();
 * lag.read(100, 5000); // 100 records in 5000 bytes
 * lag.pending(45_000); // 900
 * ```
 */
export class LagEstimate {
  private records = 0;
  private bytes = 0;

  /** Counts what a read took: `records` records in `bytes` bytes of the source. */
  read(records: number, bytes: number): void {
    this.records += records;
    this.bytes += bytes;
  }

  /** The records in `bytesLeft` at the size seen so far; undefined before anything was read. */
  pending(bytesLeft: number): number | undefined {
    if (this.records === 0 || this.bytes === 0) return undefined;
    return Math.round(Math.max(0, bytesLeft) / (this.bytes / this.records));
  }
}
