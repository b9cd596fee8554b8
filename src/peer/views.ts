import type { MemberCounts, NodeView, RaftRole, StateStatusView, StatusView, TransportStatsView } from '../api/types.ts'
import type { Member } from '../membership/types.ts'

/** Pure conversions from membership rows to the API's JSON views. */

/** A member as a NodeView. `since` (local clock ms since the epoch) becomes an ISO time. */
export function toNodeView(m: Member, selfId: string, drained: ReadonlySet<string> = new Set()): NodeView {
  return {
    id: m.id,
    name: m.name,
    address: m.address,
    state: m.state,
    labels: { ...m.labels },
    incarnation: m.incarnation,
    since: isoTime(m.since),
    self: m.id === selfId,
    drained: drained.has(m.id),
  }
}

/** Members sorted by name (then id) as NodeViews. */
export function toNodeViews(members: readonly Member[], selfId: string, drained: ReadonlySet<string> = new Set()): NodeView[] {
  return members
    .map((m) => toNodeView(m, selfId, drained))
    .sort((a, b) => (a.name === b.name ? (a.id < b.id ? -1 : 1) : a.name < b.name ? -1 : 1))
}

/** How many members are in each state. */
export function countMembers(members: readonly Member[]): MemberCounts {
  const c: MemberCounts = { alive: 0, suspect: 0, dead: 0, left: 0, total: members.length }
  for (const m of members) c[m.state]++
  return c
}

/** This peer's status view. */
export function buildStatus(input: {
  self: Member
  members: readonly Member[]
  clusterId: string
  startedAt: number
  now: number
  version: string
  pid: number
  transport?: TransportStatsView
  /** Consensus view (defaults: no leader, term 0, follower). */
  consensus?: { leader: string | null; leaderId: string | null; term: number; role: RaftRole; commitIndex: number; appliedIndex: number }
  state?: StateStatusView
}): StatusView {
  const c = input.consensus ?? { leader: null, leaderId: null, term: 0, role: 'follower' as const, commitIndex: 0, appliedIndex: 0 }
  return {
    id: input.self.id,
    name: input.self.name,
    clusterId: input.clusterId,
    address: input.self.address,
    labels: { ...input.self.labels },
    incarnation: input.self.incarnation,
    members: countMembers(input.members),
    startedAt: isoTime(input.startedAt),
    uptimeSeconds: Math.max(0, Math.floor((input.now - input.startedAt) / 1000)),
    version: input.version,
    pid: input.pid,
    ...(input.transport === undefined ? {} : { transport: input.transport }),
    leader: c.leader,
    leaderId: c.leaderId,
    term: c.term,
    role: c.role,
    commitIndex: c.commitIndex,
    appliedIndex: c.appliedIndex,
    ...(input.state === undefined ? {} : { state: input.state }),
  }
}

function isoTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : new Date(0).toISOString()
}
