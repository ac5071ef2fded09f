/**
 * A token bucket: lets at most `rate × t + burst` units through in any window of `t` seconds. The migration copier
 * takes its chunks from one, at the rate the `RateController` sets.
 *
 * Pure: every call takes `now` (ms, one monotonic clock); the bucket refills lazily from the time elapsed.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';

/**
 * A token bucket, full at first.
 *
 * {@link take} either takes the tokens and returns 0, or takes nothing and returns how long to wait; the caller waits
 * and asks again. Nothing is reserved, so a caller that gives up owes nothing.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket(controller.bytesPerSec, 4 * 2 ** 20);
 * for (const chunk of chunks) {
 *   for (let wait; (wait = bucket.take(clock(), chunk.length)) > 0; ) await sleep(wait);
 *   await send(chunk);
 * }
 * // On each latency sample: bucket.setRate(controller.onSample({ now, foregroundP99Ms }), now);
 * ```
 */
export class TokenBucket {
  /** The most tokens the bucket holds: the largest amount that may go at once after a quiet spell. */
  readonly burst: number;
  private rate: number;
  /**
   * The rate at which the time since {@link last} is credited. Normally {@link rate}; lower after a `setRate` without
   * `now`, since we cannot tell when in that interval the rate changed, and crediting the lower one never lets too
   * much through.
   */
  private creditRate: number;
  private tokens: number;
  private last: number | undefined;

  /** @throws InvalidArgumentError unless `ratePerSec` and `burst` are finite numbers > 0. */
  constructor(ratePerSec: number, burst: number) {
    checkRate(ratePerSec);
    if (typeof burst !== 'number' || !Number.isFinite(burst) || burst <= 0) {
      throw new InvalidArgumentError('burst must be a finite number > 0');
    }
    this.rate = ratePerSec;
    this.creditRate = ratePerSec;
    this.burst = burst;
    this.tokens = burst;
  }

  /** Units per second. */
  get ratePerSec(): number {
    return this.rate;
  }

  /**
   * Changes the rate. With `now`, time up to `now` is credited at the old rate and later time at the new one.
   * Without it, the time since the last call is credited at the lower of the two: never too generous.
   *
   * @throws InvalidArgumentError unless `ratePerSec` is a finite number > 0, or if `now` goes back in time.
   */
  setRate(ratePerSec: number, now?: number): void {
    checkRate(ratePerSec);
    if (now !== undefined) {
      this.refill(now);
      this.creditRate = ratePerSec;
    } else {
      this.creditRate = Math.min(this.creditRate, ratePerSec);
    }
    this.rate = ratePerSec;
  }

  /**
   * Takes `amount` tokens if the bucket holds them and returns 0: the amount may go now. Otherwise takes nothing and
   * returns the whole number of ms (>= 1) after which the bucket will hold them at the current rate.
   *
   * @throws InvalidArgumentError if `amount` is not a finite number in `[0, burst]` (a larger amount could never go),
   * or `now` is not finite or goes back in time.
   */
  take(now: number, amount: number): number {
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      throw new InvalidArgumentError('amount must be a finite number >= 0');
    }
    if (amount > this.burst) {
      throw new InvalidArgumentError(`amount ${amount} exceeds the burst ${this.burst}: it could never go at once`, {
        details: { amount, burst: this.burst },
      });
    }
    this.refill(now);
    if (amount <= this.tokens) {
      this.tokens -= amount;
      return 0;
    }
    // ceil: waking up a little late is harmless, a little early only costs another round trip through take.
    return Math.max(1, Math.ceil(((amount - this.tokens) * 1000) / this.rate));
  }

  private refill(now: number): void {
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new InvalidArgumentError('now must be a finite number (ms)');
    }
    if (this.last !== undefined) {
      if (now < this.last) throw new InvalidArgumentError(`now went back in time (${now} < ${this.last})`);
      this.tokens = Math.min(this.burst, this.tokens + (this.creditRate * (now - this.last)) / 1000);
    }
    this.last = now;
    this.creditRate = this.rate;
  }
}

function checkRate(ratePerSec: number): void {
  // A rate of 0 would make every wait infinite: a migration must make progress, however slowly.
  if (typeof ratePerSec !== 'number' || !Number.isFinite(ratePerSec) || ratePerSec <= 0) {
    throw new InvalidArgumentError('ratePerSec must be a finite number > 0');
  }
}
