import type { Member, MemberState } from '../membership/types.ts'
import { applyConfChange, encodeConfChange } from './confchange.ts'
import type { RaftStorage } from './storage.ts'
import type { ConfChange, Entry, RaftStatus, Role } from './types.ts'

/** Pure helpers of the consensus shell: status views, and the entries of a forced removal. */

/** One voter or learner, as `skein voters` shows it. */
export interface VoterInfo {
  id: string
  /** Its node name, null when membership does not know it. */
  name: string | null
  role: 'voter' | 'learner'
  /** Its match index as the leader sees it; null when unknown here (no leader, or it did not answer). */
  match: number | null
  /** Its membership state, 'unknown' when membership does not list it. */
  health: MemberState | 'unknown'
  /** It is the leader. */
  leader: boolean
  /** It is the peer that answered. */
  self: boolean
}

/** This peer's view of consensus. */
export interface ConsensusStatus {
  id: string
  term: number
  role: Role
  leaderId: string | null
  /** The leader's name (its id when membership does not know it), or null. */
  leader: string | null
  commitIndex: number
  appliedIndex: number
  firstIndex: number
  lastIndex: number
  voters: VoterInfo[]
}

/** The leader's replication progress as a follower learns it (admin protocol). */
export interface RemoteProgress {
  term: number
  lastIndex: number
  members: { id: string; match: number; recentActive: boolean }[]
}

/** Voters then learners, each by name then id, with their health and (when known) match index. */
export function voterInfos(st: RaftStatus, remote: RemoteProgress | undefined, selfId: string, members: ReadonlyMap<string, Member>, self: Member): VoterInfo[] {
  const remoteMatch = new Map((remote?.members ?? []).map((m) => [m.id, m.match]))
  const info = (id: string, role: 'voter' | 'learner'): VoterInfo => {
    const m = id === selfId ? self : members.get(id)
    return {
      id,
      name: m?.name ?? null,
      role,
      match: st.progress?.[id]?.match ?? remoteMatch.get(id) ?? null,
      health: m?.state ?? 'unknown',
      leader: id === st.leader,
      self: id === selfId,
    }
  }
  const order = (a: VoterInfo, b: VoterInfo): number => {
    const an = a.name ?? '\uffff'
    const bn = b.name ?? '\uffff'
    return an < bn ? -1 : an > bn ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  }
  return [...st.voters.map((id) => info(id, 'voter')).sort(order), ...st.learners.map((id) => info(id, 'learner')).sort(order)]
}

/** The index of the last `conf` entry before `hi` in storage (the snapshot's index when there is none). */
export function highestConfIndex(storage: RaftStorage, hi: number): number {
  const lo = storage.firstIndex()
  const end = Math.min(hi, storage.lastIndex() + 1)
  let found = lo - 1
  if (end <= lo) return found
  for (const e of storage.entries(lo, end)) if (e.type === 'conf') found = e.index
  return found
}

/**
 * The entries a forced removal appends to this peer's own log (no leader): `remove id`, and, if
 * that leaves no voter, `add-voter self`. They carry `term` (one above the stored term), so that
 * this peer's log wins the up-to-date check of the peers it then asks for votes.
 */
export function forcedRemovalEntries(input: { self: string; voters: readonly string[]; learners: readonly string[]; id: string; term: number; lastIndex: number }): Entry[] {
  if (input.id === input.self) return []
  let conf = { voters: input.voters.slice(), learners: input.learners.slice() }
  const changes: ConfChange[] = []
  if (conf.voters.includes(input.id) || conf.learners.includes(input.id)) {
    changes.push({ type: 'remove', id: input.id })
    conf = applyConfChange(conf, { type: 'remove', id: input.id })
  }
  if (conf.voters.length === 0) changes.push({ type: 'add-voter', id: input.self })
  return changes.map((c, k) => ({ term: input.term, index: input.lastIndex + 1 + k, type: 'conf', data: encodeConfChange(c) }))
}
