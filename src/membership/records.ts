/**
 * Pure building blocks of the membership table: the precedence order of claims, table rows,
 * and the Lifeguard suspicion timer. No clocks or randomness here either.
 */
import type { PeerId } from '../transport/types.ts'
import { suspicionTimeout, type SuspicionBounds } from './formulas.ts'
import type { DirectMessage, Effect, Member, MemberInfo, MemberRecord, MemberState, Update } from './types.ts'

/**
 * SWIM precedence as a total order on (incarnation, rank): a claim replaces the current state
 * iff it is strictly greater. That gives exactly: alive(i) wins over anything with incarnation
 * < i; suspect(i) over alive(≤ i) and suspect(< i); dead(i) over alive/suspect(≤ i); left(i)
 * over everything at ≤ i, so it is final for its incarnation. Because the order is total, merging
 * claims is commutative, associative and idempotent.
 */
export const STATE_RANK: Readonly<Record<MemberState, number>> = { alive: 0, suspect: 1, dead: 2, left: 3 }

/** Does the claim (inc, state) take precedence over `current`? Anything beats "unknown". */
export function outranks(inc: number, state: MemberState, current: { inc: number; state: MemberState } | undefined): boolean {
  if (current === undefined) return true
  if (inc !== current.inc) return inc > current.inc
  return STATE_RANK[state] > STATE_RANK[current.state]
}

/** The state an update claims. */
export function updateState(u: Update): MemberState {
  return u.kind
}

/** What a peer says of itself, minus its id. */
export interface Info {
  name: string
  address: string
  labels: Record<string, string>
}

/** A copy of a labels map (never share the caller's object). */
export function copyLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(labels)) out[k] = v
  return out
}

/** Do two label maps hold the same pairs? */
export function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (a[k] !== b[k]) return false
  return true
}

/** Do two infos say the same thing? */
export function sameInfo(a: Info, b: Info): boolean {
  return a.name === b.name && a.address === b.address && sameLabels(a.labels, b.labels)
}

/** The info part of a MemberInfo-like value, copied. */
export function infoOf(m: { name: string; address: string; labels: Record<string, string> }): Info {
  return { name: m.name, address: m.address, labels: copyLabels(m.labels) }
}

/**
 * Lifeguard suspicion: the timeout starts at `max` and shrinks towards `min` as distinct peers
 * confirm it, up to `k` confirmations (the first accuser is not a confirmation).
 */
export class Suspicion {
  start: number
  readonly k: number
  readonly bounds: SuspicionBounds
  readonly accusers = new Set<PeerId>()
  /** When we last told the suspect about it directly (see Prober.hint). */
  lastHint = Number.NEGATIVE_INFINITY

  constructor(start: number, k: number, bounds: SuspicionBounds, firstAccuser: PeerId | undefined) {
    this.start = start
    this.k = k
    this.bounds = bounds
    if (firstAccuser !== undefined) this.accusers.add(firstAccuser)
  }

  /** Count a confirmation from `from`. True if it was new and still counted (fewer than k so far). */
  confirm(from: PeerId): boolean {
    if (this.accusers.has(from)) return false
    if (this.confirmations() >= this.k) return false
    this.accusers.add(from)
    return true
  }

  /** Distinct accusers beyond the first. */
  confirmations(): number {
    return Math.max(0, this.accusers.size - 1)
  }

  /** When the suspicion expires (local clock, ms). */
  deadline(): number {
    return this.start + suspicionTimeout(this.confirmations(), this.k, this.bounds)
  }
}

/** One row of the table. `info` is undefined for a "ghost": a member heard of only by a claim without info. */
export interface Entry {
  id: PeerId
  state: MemberState
  inc: number
  since: number
  info: Info | undefined
  /** The incarnation the info came from (−1 for none). */
  infoInc: number
  suspicion: Suspicion | undefined
}

/** The public view of a row (a copy). Only rows with info have one. */
export function toMember(e: Entry & { info: Info }): Member {
  return { id: e.id, name: e.info.name, address: e.info.address, labels: copyLabels(e.info.labels), state: e.state, incarnation: e.inc, since: e.since }
}

/** A push-pull record for a row with info. */
export function toRecord(e: Entry & { info: Info }): MemberRecord {
  return { id: e.id, name: e.info.name, address: e.info.address, labels: copyLabels(e.info.labels), state: e.state, incarnation: e.inc }
}

/** An `alive` update for a member's info. */
export function aliveUpdate(self: MemberInfo, inc: number): Update {
  return { kind: 'alive', id: self.id, inc, name: self.name, address: self.address, labels: copyLabels(self.labels) }
}

/** Is the member one that gets probed (alive or suspect)? */
export function isLive(state: MemberState): boolean {
  return state === 'alive' || state === 'suspect'
}

/** Updates per broadcast message (the schema allows more; small messages spread faster). */
export const UPDATES_PER_BROADCAST = 64

/** The most records one push-pull carries (the schema's bound). */
export const MAX_PUSH_PULL_MEMBERS = 4096

/** Collects the effects of one call; broadcast updates are batched into few messages. */
export class Out {
  readonly selfId: PeerId
  readonly effects: Effect[] = []
  readonly updates: Update[] = []

  constructor(selfId: PeerId) {
    this.selfId = selfId
  }

  send(to: PeerId, address: string, msg: DirectMessage): void {
    this.effects.push({ type: 'send', to, address, msg })
  }

  broadcast(u: Update): void {
    this.updates.push(u)
  }

  changed(member: Member, previous: MemberState | undefined): void {
    this.effects.push({ type: 'changed', member, previous })
  }

  /** The effects, with the updates packed into broadcast messages. */
  finish(): Effect[] {
    for (let i = 0; i < this.updates.length; i += UPDATES_PER_BROADCAST) {
      this.effects.push({ type: 'broadcast', msg: { t: 'updates', from: this.selfId, updates: this.updates.slice(i, i + UPDATES_PER_BROADCAST) } })
    }
    return this.effects
  }
}
