/**
 * The autoscaler's decisions as kept in the coordinator, one record per tier under `/shardflow/autoscaler/<tier>`,
 * so `shardflow status` (any process, any host) can show what the autoscaler decided last and why, and a newly
 * elected autoscaler can honour the cooldown its predecessor started. Field names are part of `status --json`.
 *
 * @module
 */
import { AUTOSCALER_PREFIX, autoscalerKey, leader, type Coordinator } from '../coordination/index.js';
import { formatDuration, formatValue, type ScalePolicy } from '../autoscale/index.js';
import type { Tier } from './provisioner.js';

/** The election the autoscaler loops campaign in: one acts at a time. */
export const AUTOSCALER_ELECTION = 'autoscaler';
/** Actions kept per tier in the record. */
export const ACTIONS_KEPT = 20;

/** What became of a decision. */
export type DecisionOutcome = 'none' | 'running' | 'done' | 'failed' | 'dry-run' | 'held';

/** One decision of the autoscaler loop for one tier. */
export interface AutoscaleDecision {
  /** When it was taken (ISO). */
  at: string;
  tier: Tier;
  metric: string;
  /** Nodes of the tier at the time. */
  nodes: number;
  /** The metric per node, when it could be measured. */
  perNode: number | null;
  action: 'none' | 'scale';
  from?: number;
  to?: number;
  /** Why, as the pure Autoscaler (or the loop, when it held back) put it. */
  reason: string;
  /**
   * `none`: nothing to do; `running`: the provisioner is at it; `done`; `failed` (see `error`; retried after the
   * cooldown); `dry-run`: advised only; `held`: a scale was advised but the loop held back (see `reason`).
   */
  outcome: DecisionOutcome;
  error?: string;
  /** What the provisioner did (`started c2`), or how far a failed action got. */
  detail?: string;
  /** How long the action took (done or failed). */
  ms?: number;
}

/** The record of one tier. */
export interface AutoscalerTierState {
  tier: Tier;
  /** The loop that wrote it (the election candidate). */
  leader: string;
  /** Whether that loop still leads (filled in when read; not stored). */
  active?: boolean;
  provisioner: string;
  policy: ScalePolicy;
  /** The latest decision, `none` ones included. */
  last: AutoscaleDecision;
  /** The latest scaling actions (running, done or failed), oldest first, at most {@link ACTIONS_KEPT}. */
  actions: AutoscaleDecision[];
}

/** Writes a tier's record. */
export async function writeAutoscalerState(coordinator: Coordinator, state: AutoscalerTierState): Promise<void> {
  const { active: _active, ...stored } = state;
  await coordinator.put(autoscalerKey(state.tier), JSON.stringify(stored));
}

/**
 * Every tier's record, storage first, each marked `active` when the loop that wrote it still leads the election.
 * Records that do not parse are skipped.
 *
 * @example
 * ```ts
 * for (const s of await readAutoscalerStates(coordinator)) console.log(s.tier, s.last.reason);
 * ```
 */
export async function readAutoscalerStates(coordinator: Coordinator): Promise<AutoscalerTierState[]> {
  const [entries, current] = await Promise.all([coordinator.list(AUTOSCALER_PREFIX), leader(coordinator, AUTOSCALER_ELECTION)]);
  const out: AutoscalerTierState[] = [];
  for (const e of entries) {
    try {
      const s = JSON.parse(e.value) as AutoscalerTierState;
      if ((s.tier === 'storage' || s.tier === 'compute') && s.last && Array.isArray(s.actions)) {
        out.push({ ...s, active: current !== undefined && current === s.leader });
      }
    } catch {
      // Not ours to show.
    }
  }
  return out.sort((a, b) => (a.tier === b.tier ? 0 : a.tier === 'storage' ? -1 : 1));
}

/** The latest action that took effect, if any: what a new leader's cooldown starts from. */
export function lastDone(state: AutoscalerTierState | undefined): AutoscaleDecision | undefined {
  return state?.actions.filter((a) => a.outcome === 'done').at(-1);
}

/** Adds an action to a record's list (replacing the running entry it completes), keeping the newest. */
export function withAction(actions: readonly AutoscaleDecision[], action: AutoscaleDecision): AutoscaleDecision[] {
  const list = actions.filter((a) => !(a.outcome === 'running' && a.from === action.from && a.to === action.to));
  list.push(action);
  return list.slice(-ACTIONS_KEPT);
}

/** One decision as a line: `14:02:11  1 -> 2  done in 3.2 s  keys/node 2k > 1.2 × 1k for 1 s: 1 -> 2 [started s2]`. */
export function formatDecision(d: AutoscaleDecision): string {
  const when = d.at.slice(11, 19);
  if (d.action === 'none' || d.from === undefined || d.to === undefined) return `${when}  ${d.reason}`;
  const took = d.ms === undefined ? '' : ` in ${formatDuration(d.ms)}`;
  const error = d.error ? ` (${d.error})` : '';
  const detail = d.detail ? ` [${d.detail}]` : '';
  return `${when}  ${d.from} -> ${d.to}  ${d.outcome}${took}  ${d.reason}${error}${detail}`;
}

/**
 * The autoscaler section of `shardflow status`: per tier, the last decision and the latest actions.
 *
 * ```text
 * autoscaler (autoscale@host:4242, local provisioner):
 *   storage  keys, target 1k/node, 1–3 nodes; last 14:02:15: keys/node 1k within 0.3–1.2 × 1k
 *     14:02:11  1 -> 2  done in 3.2 s  keys/node 2k > 1.2 × 1k for 1 s: 1 -> 2 [storage 1 -> 2, data moved online]
 * ```
 */
export function formatAutoscaler(states: readonly AutoscalerTierState[], actionsShown = 3): string[] {
  if (states.length === 0) return [];
  const first = states[0]!;
  const running = states.some((s) => s.active) ? '' : ', not running now';
  const out = [`autoscaler (${first.leader}, ${first.provisioner} provisioner${running}):`];
  for (const s of states) {
    const p = s.policy;
    out.push(`  ${s.tier}  ${p.metric}, target ${formatValue(p.metric, p.target)}/node, ${p.minNodes}–${p.maxNodes} nodes; last ${formatDecision(s.last)}`);
    for (const a of s.actions.slice(-actionsShown)) out.push(`    ${formatDecision(a)}`);
  }
  return out;
}
