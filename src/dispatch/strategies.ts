/**
 * Instance selection for unkeyed calls: which instance of a stateless service serves the next call.
 *
 * Every strategy sits behind one small interface, {@link Strategy}, so the dispatcher can be configured by name
 * (`round-robin`, `random`, `least-outstanding`, `power-of-two`). Strategies are pure apart from their own counters:
 * the caller keeps each instance's {@link InstanceState} up to date (in-flight count, latency EWMA) and passes the
 * currently usable candidates to {@link Strategy.choose} on every call.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';

/** What a strategy knows about one instance. The dispatcher owns these objects and mutates them as calls progress. */
export interface InstanceState {
  /** The instance's identity (node id or address). */
  readonly id: string;
  /** Calls sent to this instance that have not completed yet. */
  inFlight: number;
  /** EWMA of recent latencies, ms */
  latencyMs: number;
}

/** The names accepted by {@link createStrategy} and {@link parseStrategyName}. */
export type StrategyName = 'round-robin' | 'random' | 'least-outstanding' | 'power-of-two';

/** Every {@link StrategyName}, in documentation order (for help texts and validation). */
export const STRATEGY_NAMES: readonly StrategyName[] = Object.freeze([
  'round-robin',
  'random',
  'least-outstanding',
  'power-of-two',
]);

/**
 * Picks one instance out of the candidates for a call.
 *
 * @example
 * ```ts
 * const strategy = createStrategy('power-of-two');
 * const target = strategy.choose(instances.filter((i) => health.get(i.id)!.isAvailable(now)));
 * target.inFlight++;
 * ```
 */
export interface Strategy {
  readonly name: StrategyName;
  /**
   * One of `candidates` (the same object, not a copy).
   *
   * @throws InvalidArgumentError if `candidates` is empty.
   */
  choose(candidates: readonly InstanceState[]): InstanceState;
}

/** Options for {@link createStrategy}. */
export interface StrategyOptions {
  /** A source of uniform numbers in `[0, 1)`; `Math.random` unless given. Inject a seeded one for reproducible runs. */
  random?: () => number;
}

/**
 * Turns configuration or command-line text into a {@link StrategyName}. Surrounding whitespace and letter case are
 * ignored, so `' Round-Robin '` is accepted.
 *
 * @throws InvalidArgumentError if `text` names no strategy; the message lists the valid names.
 * @example
 * ```ts
 * parseStrategyName('power-of-two'); // 'power-of-two'
 * parseStrategyName('fastest');      // throws InvalidArgumentError
 * ```
 */
export function parseStrategyName(text: string): StrategyName {
  const normalized = typeof text === 'string' ? text.trim().toLowerCase() : undefined;
  const found = STRATEGY_NAMES.find((name) => name === normalized);
  if (found === undefined) {
    const valid = STRATEGY_NAMES.join(', ');
    throw new InvalidArgumentError(`unknown dispatch strategy ${JSON.stringify(text)}; use one of ${valid}`, {
      details: { strategy: text, valid: [...STRATEGY_NAMES] },
    });
  }
  return found;
}

/**
 * A new strategy instance. Each has its own state (rotation counters), so use one per service, not one per call.
 *
 * - `round-robin`: exact rotation. A counter advances on every call and `index = counter mod candidates.length`, so
 *   over any `k·n` consecutive calls with a stable list of `n` candidates each is chosen exactly `k` times, in list
 *   order. The counter is not reset when the list changes: the rotation simply continues over the new list from
 *   `counter mod newLength`. At the moment of change one instance may be chosen twice in short succession or skipped
 *   for one round; from then on the rotation is exact again. Pass the candidates in a stable order (for example
 *   sorted by id), otherwise the rotation is only as fair as the order is.
 * - `random`: uniform over the candidates, using `options.random`.
 * - `least-outstanding`: an instance with the fewest calls in flight. Ties rotate among the tied instances (so idle
 *   instances share the load instead of the first one taking it all).
 * - `power-of-two`: "power of two choices": two distinct candidates sampled at random, the one with fewer calls in
 *   flight wins (tie: lower latency EWMA, then the first sampled). Nearly as good as least-outstanding at avoiding a
 *   slow instance, without herding every caller onto the same momentarily idle instance.
 *
 * `name` is read as by {@link parseStrategyName} (whitespace and case ignored).
 *
 * @throws InvalidArgumentError if `name` is not a {@link StrategyName} or `options.random` is not a function.
 * @example
 * ```ts
 * const rr = createStrategy('round-robin');
 * rr.choose([a, b, c]); // a, then b, then c, then a ...
 * const p2c = createStrategy('power-of-two', { random: seededRandom });
 * ```
 */
export function createStrategy(name: StrategyName, options: StrategyOptions = {}): Strategy {
  const random = options.random ?? Math.random;
  if (typeof random !== 'function') throw new InvalidArgumentError('options.random must be a function');
  // Validated at run time too: the name often comes from JavaScript or unchecked configuration.
  switch (parseStrategyName(name)) {
    case 'round-robin':
      return new RoundRobin();
    case 'random':
      return new RandomChoice(random);
    case 'least-outstanding':
      return new LeastOutstanding();
    case 'power-of-two':
      return new PowerOfTwo(random);
  }
}

function requireCandidates(candidates: readonly InstanceState[], strategy: StrategyName): void {
  if (!Array.isArray(candidates) || candidates.length === 0) {
    throw new InvalidArgumentError(`${strategy}: no candidate instances to choose from`, { details: { strategy } });
  }
}

/**
 * A uniform index in `0 … n - 1`. The clamp guards against a broken `random` returning exactly 1 (or more), which
 * would otherwise index past the end.
 */
function randomIndex(random: () => number, n: number): number {
  const i = Math.floor(random() * n);
  return i >= n ? n - 1 : i < 0 || Number.isNaN(i) ? 0 : i;
}

/**
 * Wraps a rotation counter well before it loses integer precision. The jump back to 0 breaks the rotation once
 * every 2^53 calls, which is never in practice.
 */
function next(counter: number): number {
  return counter >= Number.MAX_SAFE_INTEGER ? 0 : counter + 1;
}

class RoundRobin implements Strategy {
  readonly name = 'round-robin' as const;
  private counter = 0;

  choose(candidates: readonly InstanceState[]): InstanceState {
    requireCandidates(candidates, this.name);
    const chosen = candidates[this.counter % candidates.length]!;
    this.counter = next(this.counter);
    return chosen;
  }
}

class RandomChoice implements Strategy {
  readonly name = 'random' as const;
  constructor(private readonly random: () => number) {}

  choose(candidates: readonly InstanceState[]): InstanceState {
    requireCandidates(candidates, this.name);
    return candidates[randomIndex(this.random, candidates.length)]!;
  }
}

class LeastOutstanding implements Strategy {
  readonly name = 'least-outstanding' as const;
  // Advances only when there is a tie, so the tied instances take turns even if untied calls come in between.
  private counter = 0;

  choose(candidates: readonly InstanceState[]): InstanceState {
    requireCandidates(candidates, this.name);
    let min = Infinity;
    let ties = 0;
    for (const c of candidates) {
      if (c.inFlight < min) {
        min = c.inFlight;
        ties = 1;
      } else if (c.inFlight === min) {
        ties++;
      }
    }
    // Every inFlight NaN (a caller bug): nothing compares as minimal; fall back to the first rather than crash.
    if (ties === 0) return candidates[0]!;
    if (ties === 1) return candidates.find((c) => c.inFlight === min)!;
    let wanted = this.counter % ties;
    this.counter = next(this.counter);
    for (const c of candidates) {
      if (c.inFlight === min && wanted-- === 0) return c;
    }
    return candidates[0]!; // unreachable: `wanted` < number of tied candidates
  }
}

class PowerOfTwo implements Strategy {
  readonly name = 'power-of-two' as const;
  constructor(private readonly random: () => number) {}

  choose(candidates: readonly InstanceState[]): InstanceState {
    requireCandidates(candidates, this.name);
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    // Two distinct indices, uniformly over all pairs: draw the second from the n - 1 others and skip over the first.
    const i = randomIndex(this.random, n);
    let j = randomIndex(this.random, n - 1);
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    if (b.inFlight < a.inFlight) return b;
    if (a.inFlight < b.inFlight) return a;
    return b.latencyMs < a.latencyMs ? b : a;
  }
}
