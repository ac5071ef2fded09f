/**
 * Putting one partition's copies where another's are: the steps that give a replicated range the same leader and
 * followers as its neighbour, so the two can merge (a merge keeps one range's copies, so both must be on the same
 * nodes). Each step changes one copy: a copy on a node the neighbour does not use moves to one it uses that lacks it,
 * and a lead handoff ends it where the leaders still differ. Pure: no I/O.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors/index.js';
import type { ReplicaSet } from './replica-planner.js';

/**
 * One step: `leader` moves the leader copy (`to` leads after it), `follower` moves a follower copy (copied from the
 * leader; `from` leaves), `lead` hands the lead to `to`, which already follows (nothing copied).
 */
export interface AlignmentStep {
  role: 'leader' | 'follower' | 'lead';
  from: string;
  to: string;
}

/**
 * The steps that turn `moving`'s copies into `target`'s: as few copies moved as there are nodes in one set and not
 * the other (the least any alignment must copy), and at most one lead handoff. The leader copy, when it must leave,
 * goes to the target's leader if that node lacks a copy, so no handoff follows. Copies on nodes both sets share stay.
 *
 * @returns The steps in the order to run them (empty when the sets already match), or `undefined` when the sets do not
 *   hold the same number of copies (one is short of copies: re-replication first).
 * @throws InvalidArgumentError when a set names a node twice.
 * @example
 * ```ts
 * alignReplicas({ leader: 's2', followers: ['s3', 's4'] }, { leader: 's1', followers: ['s2', 's3'] });
 * // [{ role: 'follower', from: 's4', to: 's1' }, { role: 'lead', from: 's2', to: 's1' }]
 * ```
 */
export function alignReplicas(moving: ReplicaSet, target: ReplicaSet): AlignmentStep[] | undefined {
  const from = nodesOf(moving, 'moving');
  const to = nodesOf(target, 'target');
  if (from.length !== to.length) return undefined;
  const inTarget = new Set(to);
  const inMoving = new Set(from);
  // Leaving: the leader first, if it leaves. Arriving: the target's leader first, if it arrives. So the leader copy
  // goes where the lead must end when it can.
  const leaving = from.filter((n) => !inTarget.has(n));
  const arriving = to.filter((n) => !inMoving.has(n));
  const steps: AlignmentStep[] = [];
  let leader = moving.leader;
  for (let i = 0; i < leaving.length; i++) {
    const out = leaving[i]!;
    const into = arriving[i]!;
    if (out === leader) {
      steps.push({ role: 'leader', from: out, to: into });
      leader = into;
    } else {
      steps.push({ role: 'follower', from: out, to: into });
    }
  }
  if (leader !== target.leader) steps.push({ role: 'lead', from: leader, to: target.leader });
  return steps;
}

/** The set's nodes, leader first. */
function nodesOf(set: ReplicaSet, what: string): string[] {
  const nodes = [set.leader, ...set.followers];
  if (new Set(nodes).size !== nodes.length) throw new InvalidArgumentError(`the ${what} copies name a node twice: ${nodes.join(', ')}`);
  return nodes;
}
