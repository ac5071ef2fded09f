/**
 * The autoscaler control loop: every interval, for each tier with a policy, sample the tier's metric from its nodes,
 * feed the pure {@link Autoscaler}, carry out a `scale` decision through the {@link Provisioner}, and log and store the
 * decision with its reason (`/shardflow/autoscaler/<tier>`, shown by `shardflow status`).
 *
 * ```text
 *  every intervalMs, while leader of election `autoscaler`:
 *    nodes  = provisioner.count(tier)                    sample = Σ metric over the tier's ready nodes (node.stats)
 *    d      = autoscaler.observe({ now, nodes, total })  hysteresis, cooldowns, min/max, reason
 *    scale? → provisioner.scaleTo(tier, d.to)            storage moves data online; compute drains
 *             done   → autoscaler.recordAction(...)      cooldown starts
 *             failed → not done; held until the cooldown of that direction has passed, then advised afresh
 *    store  → /shardflow/autoscaler/<tier>               status shows last decision and recent actions
 * ```
 *
 * Only one loop acts at a time: loops campaign in the coordinator's `autoscaler` election, and only the leader
 * samples and acts; the others wait to take over. A new leader starts its cooldowns from the last action its
 * predecessor stored, so a hand-over does not scale twice. A tier whose nodes are still settling (as many running as
 * ready in membership, every one answering) is not decided on that round.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Autoscaler, formatDuration, formatValue } from '../autoscale/index.js';
import { MemberView, openCoordinator } from '../client/index.js';
import { campaign, leader, type Coordinator, type Lease, type Leadership } from '../coordination/index.js';
import { BusyError } from '../errors/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { createProvisioner, type AutoscaleConfig } from './autoscale-config.js';
import { StatsSampler } from './autoscale-metrics.js';
import {
  AUTOSCALER_ELECTION,
  lastDone,
  readAutoscalerStates,
  withAction,
  writeAutoscalerState,
  type AutoscaleDecision,
  type AutoscalerTierState,
} from './autoscale-state.js';
import { TIERS, type Provisioner, type Tier } from './provisioner.js';

/** Options of {@link AutoscaleLoop.open}. */
export interface AutoscaleLoopOptions {
  /** The cluster directory. */
  dir: string;
  /** Policies, interval and provisioner (see `parseAutoscaleConfig`). */
  config: AutoscaleConfig;
  /** Overrides the provisioner the config names (the loop then does not close it). */
  provisioner?: Provisioner;
  /** Decide and report, but change nothing: no election, no action, nothing stored. */
  dryRun?: boolean;
  /** Name in the election and in status (default `autoscale`); host, pid and a random suffix are added. */
  name?: string;
  /** TTL of the leadership lease (default 3000 ms): how soon another loop takes over from one that died. */
  leaseTtlMs?: number;
  logger?: Logger;
  /** A monotonic clock in ms (default `performance.now`). */
  clock?: () => number;
}

interface TierRun {
  tier: Tier;
  scaler: Autoscaler;
  state: AutoscalerTierState | undefined;
  /** After a failed action: no new one before this (clock ms). */
  failed?: { retryAt: number; error: string };
}

/**
 * The control loop. Emits `decision` (an {@link AutoscaleDecision}) for every decision (a scale emits one with outcome
 * `running` when it starts and one with `done` or `failed`), `elected` when it becomes the leader and `lost` (an
 * Error) when it loses the leadership.
 *
 * @example
 * ```ts
 * import { AutoscaleLoop, parseAutoscaleConfig } from 'shardflow';
 * const config = parseAutoscaleConfig({
 *   intervalMs: 2000,
 *   compute: { metric: 'inFlight', target: 8, highWatermark: 1.25, lowWatermark: 0.25, minNodes: 1, maxNodes: 8,
 *              scaleOutCooldownMs: 30_000, scaleInCooldownMs: 600_000, stabilizationMs: 10_000 },
 * });
 * const loop = await AutoscaleLoop.open({ dir: '.shardflow', config });
 * loop.on('decision', (d) => console.log(d.tier, d.outcome, d.reason));
 * loop.start();
 * // ... later
 * await loop.stop();
 * ```
 */
export class AutoscaleLoop extends EventEmitter {
  /** This loop's name in the election and in the stored records. */
  readonly candidate: string;
  private readonly tiers: TierRun[];
  private readonly clock: () => number;
  private readonly log: Logger;
  private readonly aborter = new AbortController();
  private lease: Lease | undefined;
  private leadership: Leadership | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  private constructor(
    private readonly options: AutoscaleLoopOptions,
    private readonly coordinator: Coordinator,
    private readonly members: MemberView,
    private readonly sampler: StatsSampler,
    private readonly provisioner: Provisioner,
  ) {
    super();
    this.candidate = `${options.name ?? 'autoscale'}@${hostname()}:${process.pid}#${randomBytes(2).toString('hex')}`;
    this.clock = options.clock ?? (() => performance.now());
    this.log = options.logger ?? createLogger('autoscaler');
    this.tiers = this.freshTiers([]);
  }

  /**
   * Connects to the cluster in `options.dir`. Nothing is sampled or done before {@link start} or {@link runOnce}.
   *
   * @throws ClusterNotRunningError if the directory holds no cluster.
   */
  static async open(options: AutoscaleLoopOptions): Promise<AutoscaleLoop> {
    const { coordinator, secret } = await openCoordinator({ dir: options.dir });
    try {
      const members = await MemberView.open(coordinator);
      const sampler = new StatsSampler(members, secret);
      const provisioner = options.provisioner ?? createProvisioner(options.dir, options.config.provisioner);
      return new AutoscaleLoop(options, coordinator, members, sampler, provisioner);
    } catch (err) {
      await coordinator.close().catch(() => undefined);
      throw err;
    }
  }

  /** Whether this loop leads (and so acts) now. A dry run never leads. */
  get leading(): boolean {
    return this.leadership !== undefined;
  }

  /** Runs in the background until {@link stop}: campaigns, then samples and acts every interval while it leads. */
  start(): void {
    this.running ??= this.run();
  }

  /**
   * One pass over the tiers, as leader (unless a dry run), then steps down. A policy with `stabilizationMs` > 0 can
   * act on load only over several passes, so one pass acts only on the node bounds (or with `stabilizationMs: 0`).
   *
   * @throws BusyError if another autoscaler leads.
   */
  async runOnce(): Promise<AutoscaleDecision[]> {
    if (!this.options.dryRun) {
      const holder = await leader(this.coordinator, AUTOSCALER_ELECTION);
      if (holder !== undefined && holder !== this.candidate) throw busy(holder);
      const ttl = this.options.leaseTtlMs ?? 3000;
      try {
        await this.elect(AbortSignal.any([this.aborter.signal, AbortSignal.timeout(2 * ttl)]));
      } catch (err) {
        if (this.aborter.signal.aborted) throw err;
        throw busy((await leader(this.coordinator, AUTOSCALER_ELECTION).catch(() => undefined)) ?? 'unknown');
      }
    } else {
      await this.seed();
    }
    try {
      return await this.tick();
    } finally {
      await this.resign();
    }
  }

  /** Stops the loop (an action under way is finished first), steps down and closes what it opened. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.aborter.abort(new Error('autoscaler stopping'));
    await this.running?.catch(() => undefined);
    await this.resign();
    this.sampler.close();
    await this.members.close().catch(() => undefined);
    if (!this.options.provisioner) await this.provisioner.close().catch(() => undefined);
    await this.coordinator.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    const signal = this.aborter.signal;
    if (this.options.dryRun) await this.seed().catch(() => undefined);
    while (!signal.aborted) {
      try {
        if (!this.options.dryRun && !this.leadership) await this.elect(signal);
        await this.tick();
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn('autoscaler round failed', { error: err instanceof Error ? err.message : String(err) });
      }
      await sleep(this.options.config.intervalMs, signal);
    }
  }

  /** Campaigns until elected; then starts every tier afresh from the records the previous leader stored. */
  private async elect(signal: AbortSignal): Promise<void> {
    this.lease ??= await this.coordinator.grantLease(this.options.leaseTtlMs ?? 3000);
    const lease = this.lease;
    const leadership = await campaign(this.coordinator, AUTOSCALER_ELECTION, this.candidate, lease, { signal });
    leadership.onLost((reason) => {
      if (this.leadership === leadership) this.leadership = undefined;
      if (this.lease === lease) this.lease = undefined; // a lost lease cannot campaign again
      this.log.warn('lost the autoscaler leadership', { reason: reason.message });
      this.emit('lost', reason);
    });
    await this.seed();
    this.leadership = leadership;
    this.log.info('leading the autoscaler', { candidate: this.candidate, provisioner: this.provisioner.kind });
    this.emit('elected');
  }

  /** Every tier afresh, from the records stored by the last leader (this loop or another). */
  private async seed(): Promise<void> {
    const stored = await readAutoscalerStates(this.coordinator);
    this.tiers.splice(0, this.tiers.length, ...this.freshTiers(stored));
  }

  private async resign(): Promise<void> {
    const leadership = this.leadership;
    this.leadership = undefined;
    await leadership?.resign().catch(() => undefined);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => undefined);
  }

  /** New autoscalers per tier, whose cooldowns start from the last action stored (by any leader). */
  private freshTiers(stored: readonly AutoscalerTierState[]): TierRun[] {
    const out: TierRun[] = [];
    for (const tier of TIERS) {
      const policy = this.options.config.policies[tier];
      if (!policy) continue;
      const scaler = new Autoscaler(policy);
      const state = stored.find((s) => s.tier === tier);
      const since = (d: AutoscaleDecision) => Math.max(0, Date.now() - Date.parse(d.at) - (d.ms ?? 0)); // ms since it ended
      const done = lastDone(state);
      if (done?.from !== undefined && done.to !== undefined && done.from !== done.to && Number.isFinite(since(done))) {
        scaler.recordAction(this.clock() - since(done), done.from, done.to, done.reason);
      }
      const run: TierRun = { tier, scaler, state };
      // A failed attempt is retried after its cooldown, whoever made it.
      const last = state?.actions.at(-1);
      if (last?.outcome === 'failed' && last.from !== undefined && last.to !== undefined && Number.isFinite(since(last))) {
        const cooldown = last.to > last.from ? scaler.policy.scaleOutCooldownMs : scaler.policy.scaleInCooldownMs;
        run.failed = { retryAt: this.clock() - since(last) + cooldown, error: last.error ?? 'unknown error' };
      }
      out.push(run);
    }
    return out;
  }

  /** One pass over the tiers: decide, act, store, report. */
  private async tick(): Promise<AutoscaleDecision[]> {
    const out: AutoscaleDecision[] = [];
    for (const run of this.tiers) {
      if (this.aborter.signal.aborted) break;
      if (!this.options.dryRun && !this.leadership) break;
      out.push(await this.decide(run));
    }
    return out;
  }

  private async decide(run: TierRun): Promise<AutoscaleDecision> {
    const { tier, scaler } = run;
    const policy = scaler.policy;
    const base = { tier, metric: policy.metric, nodes: 0, perNode: null as number | null };
    let d: AutoscaleDecision;
    try {
      const nodes = await this.provisioner.count(tier);
      const sample = await this.sampler.sample(tier, policy.metric);
      Object.assign(base, { nodes, perNode: nodes > 0 && sample.missing.length === 0 ? sample.total / nodes : null });
      if (sample.missing.length > 0) {
        const which = sample.missing.map((m) => `${m.id} (${m.error})`).join(', ');
        d = this.note(base, 'none', `no ${policy.metric} from ${which}: not deciding this round`);
      } else if (sample.nodes.length !== nodes) {
        const why = `${nodes} ${tier} nodes run, ${sample.nodes.length} ready in membership: waiting for them to settle`;
        d = this.note(base, 'none', why);
      } else {
        const advice = scaler.observe({ now: this.clock(), nodes, total: sample.total });
        if (advice.action === 'none') {
          d = this.note(base, 'none', advice.reason);
        } else {
          const scale = { ...base, action: 'scale' as const, from: advice.from, to: advice.to, reason: advice.reason };
          d = await this.act(run, scale);
        }
      }
    } catch (err) {
      d = this.note(base, 'none', `could not sample ${tier}: ${message(err)}`);
    }
    await this.report(run, d);
    return d;
  }

  /** Carries out a scale decision, unless held back by a recent failure, a dry run, or a lost leadership. */
  private async act(run: TierRun, scale: Omit<AutoscaleDecision, 'at' | 'outcome'>): Promise<AutoscaleDecision> {
    const { from, to } = scale as { from: number; to: number };
    const now = this.clock();
    if (run.failed && now < run.failed.retryAt) {
      const why = `${scale.reason}; held: the last attempt failed (${run.failed.error}), retry in ${formatDuration(run.failed.retryAt - now)}`;
      return { ...scale, at: iso(), reason: why, outcome: 'held' };
    }
    if (this.options.dryRun) return { ...scale, at: iso(), outcome: 'dry-run' };
    if (!this.leadership) return { ...scale, at: iso(), reason: `${scale.reason}; held: no longer the leader`, outcome: 'held' };

    const at = iso();
    this.log.info(`scaling ${run.tier} ${from} -> ${to}`, { reason: scale.reason, provisioner: this.provisioner.kind });
    await this.report(run, { ...scale, at, outcome: 'running' });
    const started = this.clock();
    try {
      const outcome = await this.provisioner.scaleTo(run.tier, to, scale.reason);
      run.scaler.recordAction(this.clock(), from, to);
      run.failed = undefined;
      return { ...scale, at, outcome: 'done', detail: outcome.detail, ms: Math.round(this.clock() - started) };
    } catch (err) {
      const error = message(err);
      // Not done; but if it went part way the tier did change, and that starts a cooldown too.
      const reached = await this.provisioner.count(run.tier).catch(() => from);
      if (reached !== from) run.scaler.recordAction(this.clock(), from, reached, `${scale.reason} (stopped at ${reached}: ${error})`);
      const p = run.scaler.policy;
      run.failed = { retryAt: this.clock() + (to > from ? p.scaleOutCooldownMs : p.scaleInCooldownMs), error };
      const detail = reached === from ? 'nothing changed' : `stopped at ${reached} nodes`;
      return { ...scale, at, outcome: 'failed', error, detail, ms: Math.round(this.clock() - started) };
    }
  }

  private note(base: Omit<AutoscaleDecision, 'at' | 'action' | 'reason' | 'outcome'>, action: 'none', reason: string): AutoscaleDecision {
    return { ...base, at: iso(), action, reason, outcome: 'none' };
  }

  /** Logs and emits a decision, and (as leader) stores it. */
  private async report(run: TierRun, d: AutoscaleDecision): Promise<void> {
    if (d.outcome !== 'running') {
      const level = d.outcome === 'failed' ? 'warn' : d.action === 'scale' ? 'info' : 'debug';
      const perNode = d.perNode === null ? undefined : formatValue(d.metric, d.perNode);
      this.log[level](`${d.tier}: ${d.outcome}: ${d.reason}`, { nodes: d.nodes, perNode, detail: d.detail, error: d.error, ms: d.ms });
    }
    this.emit('decision', d);
    if (this.options.dryRun || !this.leadership) return;
    const acted = d.action === 'scale' && (d.outcome === 'running' || d.outcome === 'done' || d.outcome === 'failed');
    run.state = {
      tier: run.tier,
      leader: this.candidate,
      provisioner: this.provisioner.kind,
      policy: run.scaler.policy,
      last: d,
      actions: acted ? withAction(run.state?.actions ?? [], d) : (run.state?.actions ?? []),
    };
    await writeAutoscalerState(this.coordinator, run.state).catch((err: unknown) =>
      this.log.warn('could not store the autoscaler decision', { error: message(err) }),
    );
  }
}

function busy(holder: string): BusyError {
  return new BusyError(`another autoscaler is running (${holder}); only one acts at a time`, { details: { leader: holder } });
}

function iso(): string {
  return new Date().toISOString();
}

function message(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
