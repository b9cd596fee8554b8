import type { MemberState } from '../membership/types.ts'

/**
 * Voter management (pure): which single change of the voter set the leader should make next,
 * from the Raft status, the membership view and the time. The leader's shell asks every few
 * ticks and carries out at most one change at a time (docs/consensus.md, "Voter management").
 *
 * The rules, first match wins:
 * 1. A peer asked to be removed (`skein leave`, `skein voters remove`): a learner is removed; a
 *    voter is removed while a quorum remains; if it is the leader itself, leadership goes first
 *    to a caught-up healthy voter (and if it is the only voter, a caught-up learner is promoted
 *    first, so that there is someone to hand over to).
 * 2. A voter that membership lists as `left` is removed.
 * 3. A voter that membership has declared `dead` for at least `deadGraceMs` is removed, while a
 *    quorum of healthy voters remains in the new set. (The promotion rule then fills the seat.)
 * 4. A learner that has left, or has been dead for `deadGraceMs`, is removed.
 * 5. More voters than `maxVoters` (the flag was lowered): the least healthy, least caught-up
 *    voter other than the leader is demoted to learner.
 * 6. Fewer voters than `maxVoters`: a healthy, caught-up learner is promoted, keeping the count
 *    odd — a promotion that would make it even happens only when another caught-up learner can
 *    be promoted right after (2 voters survive no failure, like 1, but need both hosts up).
 * 7. An alive member in no configuration is added as a learner.
 */

/** The policy's settings. */
export interface VoterPolicyConfig {
  /** Most voters (`--voters`, an odd number; default 5). */
  maxVoters: number
  /** How long a voter or learner must have been `dead` in membership before it is removed. */
  deadGraceMs: number
  /** A learner whose match index is within this many entries of the leader's last index is caught up. */
  catchUpLag: number
}

/** Defaults: 5 voters, 10 s of grace, caught up within 10 entries. */
export const DEFAULT_VOTER_POLICY: VoterPolicyConfig = { maxVoters: 5, deadGraceMs: 10_000, catchUpLag: 10 }

/** The leader's view of one member's replication. */
export interface PolicyProgress {
  match: number
  /** Heard from within the last election timeout. */
  recentActive: boolean
}

/** What membership says of a peer. */
export interface PolicyMember {
  id: string
  state: MemberState
  /** Clock time (ms) of the last state change. */
  since: number
}

/** Everything the policy looks at. */
export interface VoterPolicyInput {
  /** The leader's own id (the policy runs on the leader only). */
  self: string
  voters: readonly string[]
  learners: readonly string[]
  progress: Readonly<Record<string, PolicyProgress>>
  /** The leader's last log index. */
  lastIndex: number
  /** A configuration change is in the log and not yet committed. */
  pending: boolean
  /** A leadership transfer is under way. */
  transferring: boolean
  members: readonly PolicyMember[]
  /** Peers that asked to be removed (graceful leave or `voters remove`), oldest request first. */
  removals: readonly string[]
  now: number
}

/** One change for the leader to make; `demote` is an `add-learner` of a voter. */
export type VoterAction =
  | { type: 'add-learner' | 'add-voter' | 'remove' | 'demote'; id: string; reason: string }
  | { type: 'transfer'; to: string; reason: string }

/** Votes needed out of `n` voters. */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1
}

/** The next change to make, or undefined when the voter set is as it should be (or a change is pending). */
export function nextVoterChange(input: VoterPolicyInput, config: VoterPolicyConfig = DEFAULT_VOTER_POLICY): VoterAction | undefined {
  if (input.pending || input.transferring) return undefined
  const { self, voters, learners, progress, lastIndex, now } = input
  const byId = new Map(input.members.map((m) => [m.id, m]))
  const removals = new Set(input.removals)
  const state = (id: string): MemberState | 'unknown' => (id === self ? 'alive' : (byId.get(id)?.state ?? 'unknown'))
  const deadLong = (id: string): boolean => {
    const m = byId.get(id)
    return id !== self && m !== undefined && m.state === 'dead' && now - m.since >= config.deadGraceMs
  }
  /** Can take part in a commit: the leader, or a member not dead or gone that the leader heard from lately. */
  const healthy = (id: string): boolean => {
    if (id === self) return true
    const s = state(id)
    return (s === 'alive' || s === 'suspect') && progress[id]?.recentActive === true
  }
  const caughtUp = (id: string): boolean => {
    const p = progress[id]
    return p !== undefined && p.recentActive && p.match + config.catchUpLag >= lastIndex
  }
  /** Would `remaining` voters still have a quorum of healthy ones? */
  const quorumAfter = (remaining: readonly string[]): boolean => remaining.filter(healthy).length >= quorum(remaining.length)
  const best = (ids: readonly string[]): string | undefined =>
    ids.slice().sort((a, b) => (progress[b]?.match ?? 0) - (progress[a]?.match ?? 0) || (a < b ? -1 : a > b ? 1 : 0))[0]
  const promotable = learners.filter((id) => !removals.has(id) && state(id) === 'alive' && caughtUp(id))
  const without = (id: string): string[] => voters.filter((v) => v !== id)

  // 1. Requested removals.
  for (const id of input.removals) {
    if (learners.includes(id)) return { type: 'remove', id, reason: 'removal requested' }
    if (!voters.includes(id)) continue
    if (id === self) {
      const to = best(voters.filter((v) => v !== self && !removals.has(v) && healthy(v) && caughtUp(v)))
      if (to !== undefined) return { type: 'transfer', to, reason: 'the leader is being removed: hand over first' }
      const learner = best(promotable)
      if (voters.length === 1 && learner !== undefined) return { type: 'add-voter', id: learner, reason: 'the only voter is being removed: promote a successor first' }
      continue
    }
    if (voters.length > 1 && quorumAfter(without(id))) return { type: 'remove', id, reason: 'removal requested' }
  }

  // 2, 3. Voters that left, or died long enough ago.
  for (const id of voters) {
    if (id === self) continue
    const gone = state(id) === 'left'
    if ((gone || deadLong(id)) && voters.length > 1 && quorumAfter(without(id))) {
      return { type: 'remove', id, reason: gone ? 'the voter left the cluster' : `the voter has been dead for ${Math.round((now - (byId.get(id)?.since ?? now)) / 1000)} s` }
    }
  }

  // 4. Learners that left or died.
  for (const id of learners) {
    if (state(id) === 'left' || deadLong(id)) return { type: 'remove', id, reason: state(id) === 'left' ? 'the learner left the cluster' : 'the learner has been dead too long' }
  }

  // 5. Too many voters.
  if (voters.length > config.maxVoters) {
    const others = voters.filter((v) => v !== self)
    const order = others.slice().sort((a, b) => Number(healthy(a)) - Number(healthy(b)) || (progress[a]?.match ?? 0) - (progress[b]?.match ?? 0) || (a < b ? -1 : 1))
    const id = order[0]
    if (id !== undefined && quorumAfter(without(id))) return { type: 'demote', id, reason: `more than ${config.maxVoters} voters` }
  }

  // 6. Promote toward maxVoters, keeping the count odd.
  if (voters.length < config.maxVoters && promotable.length > 0) {
    const reachable = Math.min(config.maxVoters, voters.length + promotable.length)
    const target = reachable % 2 === 1 ? reachable : reachable - 1
    const id = best(promotable)
    if (target > voters.length && id !== undefined) return { type: 'add-voter', id, reason: `${voters.length} voters, aiming for ${target}` }
  }

  // 7. New members become learners.
  const inConf = new Set([...voters, ...learners])
  const fresh = input.members
    .filter((m) => m.state === 'alive' && !inConf.has(m.id) && !removals.has(m.id) && m.id !== self)
    .map((m) => m.id)
    .sort()
  const id = fresh[0]
  if (id !== undefined) return { type: 'add-learner', id, reason: 'a new member' }
  return undefined
}
