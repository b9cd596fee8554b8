/**
 * The membership table proper: rows, the SWIM precedence rules applied to claims (alive, suspect,
 * dead, left), Lifeguard suspicion timers, and the push-pull merge. Pure: time comes in as `now`,
 * randomness from the host's Rng. Claims about this peer itself go to the host, which refutes.
 */
import { randInt, shuffled, type Rng } from '../core/rng.ts'
import type { PeerId } from '../transport/types.ts'
import { expectedConfirmations, suspicionBounds } from './formulas.ts'
import { infoOf, isLive, outranks, sameInfo, Suspicion, toMember, type Entry, type Info, type Out } from './records.ts'
import type { Member, MemberRecord, MemberState, MembershipConfig } from './types.ts'

/** What the table needs from the core that owns it. */
export interface ClaimsHost {
  readonly selfId: PeerId
  readonly config: MembershipConfig
  readonly rng: Rng
  /** A claim about this peer itself (the host refutes it if it must). */
  aboutSelf(state: MemberState, inc: number, info: Info | undefined, out: Out): void
  /** A member became worth probing (new, or back to alive/suspect). */
  probeable(id: PeerId): void
  /** Ids to draw random members from cheaply (may hold stale ids). */
  sampleKeys(): readonly PeerId[]
}

/** The table of other members (self is kept by the host). */
export class Claims {
  readonly entries = new Map<PeerId, Entry>()
  /** Ids of rows with a running suspicion timer. */
  readonly suspects = new Set<PeerId>()
  readonly #host: ClaimsHost
  #liveCount = 1
  #liveDirty = true

  constructor(host: ClaimsHost) {
    this.#host = host
  }

  /** Live members (alive or suspect) with details, self included. */
  liveCount(): number {
    if (this.#liveDirty) {
      let n = 1
      for (const e of this.entries.values()) if (e.info !== undefined && isLive(e.state)) n++
      this.#liveCount = n
      this.#liveDirty = false
    }
    return this.#liveCount
  }

  /** The public view of a row, if we have its details. */
  member(id: PeerId): Member | undefined {
    const e = this.entries.get(id)
    return e?.info === undefined ? undefined : toMember({ ...e, info: e.info })
  }

  /** The address in the table for `id`, or '' if unknown. */
  addressOf(id: PeerId): string {
    return this.entries.get(id)?.info?.address ?? ''
  }

  /** Up to `k` random members with details (not in `exclude`) in one of `states`. */
  pick(k: number, exclude: ReadonlySet<PeerId>, states: readonly MemberState[]): PeerId[] {
    const rng = this.#host.rng
    const ok = (id: PeerId): boolean => {
      const e = this.entries.get(id)
      return e?.info !== undefined && states.includes(e.state) && !exclude.has(id)
    }
    const chosen = new Set<PeerId>()
    // Cheap random draws first (big tables); a full scan for small or sparse ones.
    const keys = this.#host.sampleKeys()
    for (let tries = 0; tries < 4 * k && chosen.size < k && keys.length > 0; tries++) {
      const id = keys[randInt(rng, keys.length)]
      if (id !== undefined && ok(id)) chosen.add(id)
    }
    if (chosen.size < k) {
      const rest = [...this.entries.keys()].filter((id) => ok(id) && !chosen.has(id))
      for (const id of shuffled(rng, rest).slice(0, k - chosen.size)) chosen.add(id)
    }
    return [...chosen]
  }

  /** Claim: `id` is alive at `inc` with `info`. */
  setAlive(id: PeerId, inc: number, info: Info, now: number, out: Out): void {
    if (id === this.#host.selfId) { this.#host.aboutSelf('alive', inc, info, out); return }
    const e = this.entries.get(id)
    if (e === undefined) {
      const fresh: Entry = { id, state: 'alive', inc, since: now, info, infoInc: inc, suspicion: undefined }
      this.entries.set(id, fresh)
      this.#liveDirty = true
      this.#host.probeable(id)
      out.changed(toMember({ ...fresh, info }), undefined)
      return
    }
    const visible = e.info !== undefined
    const prev = e.state
    let changed = this.#learnInfo(e, inc, info)
    if (outranks(inc, 'alive', e)) {
      changed = true
      this.#setState(e, 'alive', inc, now)
      if (!isLive(prev)) this.#host.probeable(id)
    } else if (!visible && isLive(e.state)) {
      // A ghost (a claim heard before any details) becomes a member we can probe.
      this.#host.probeable(id)
      if (e.state === 'suspect') this.#startSuspicion(e, undefined, now)
    }
    if (changed && e.info !== undefined) out.changed(toMember({ ...e, info: e.info }), visible ? prev : undefined)
  }

  /**
   * Claim: `accuser` suspects `id` at `inc`. Returns 'started' for a new suspicion, 'confirmed'
   * for a new counted confirmation, or undefined when there is nothing worth announcing.
   */
  setSuspect(id: PeerId, inc: number, accuser: PeerId, now: number, out: Out): 'started' | 'confirmed' | undefined {
    if (id === this.#host.selfId) { this.#host.aboutSelf('suspect', inc, undefined, out); return undefined }
    const e = this.#rowOrGhost(id, 'suspect', inc, now)
    if (e === undefined) return undefined
    if (e.state === 'suspect' && e.suspicion !== undefined) {
      if (inc < e.inc) return undefined
      if (inc > e.inc) {
        e.inc = inc
        if (e.info !== undefined) out.changed(toMember({ ...e, info: e.info }), 'suspect')
      }
      return e.suspicion.confirm(accuser) ? 'confirmed' : undefined
    }
    if (!outranks(inc, 'suspect', e)) return undefined
    const prev = e.state
    this.#setState(e, 'suspect', inc, now)
    if (e.info === undefined) return undefined
    if (!isLive(prev)) this.#host.probeable(id)
    this.#startSuspicion(e, accuser, now)
    out.changed(toMember({ ...e, info: e.info }), prev)
    return 'started'
  }

  /** Claim: `id` is dead (or left) at `inc`. True if the table changed. */
  setFinal(id: PeerId, state: 'dead' | 'left', inc: number, now: number, out: Out): boolean {
    if (id === this.#host.selfId) { this.#host.aboutSelf(state, inc, undefined, out); return false }
    const e = this.#rowOrGhost(id, state, inc, now)
    if (e === undefined || !outranks(inc, state, e)) return false
    const prev = e.state
    this.#setState(e, state, inc, now)
    if (e.info !== undefined) out.changed(toMember({ ...e, info: e.info }), prev)
    return true
  }

  /**
   * Merge one push-pull row from `from`. Alive and left rows are taken as claims. A dead or
   * suspect row about a member we hold alive only makes it suspect here, with our own timer, and
   * returns true: the caller announces that suspicion so that the member can refute. So the
   * verdicts of the other side of a partition are re-checked, not trusted. Rows about members we
   * did not know are adopted as they are.
   */
  merge(rec: MemberRecord, from: PeerId, now: number, out: Out): boolean {
    const info = infoOf(rec)
    const inc = rec.incarnation
    if (rec.id === this.#host.selfId) { this.#host.aboutSelf(rec.state, inc, info, out); return false }
    if (rec.state === 'alive') { this.setAlive(rec.id, inc, info, now, out); return false }
    const e = this.entries.get(rec.id)
    if (e?.info === undefined) {
      const row: Entry = e ?? { id: rec.id, state: rec.state, inc, since: now, info: undefined, infoInc: -1, suspicion: undefined }
      if (outranks(inc, rec.state, row)) this.#setState(row, rec.state, inc, now)
      row.info = info
      row.infoInc = inc
      this.entries.set(rec.id, row)
      this.#liveDirty = true
      if (isLive(row.state)) this.#host.probeable(row.id)
      if (row.state === 'suspect') this.#startSuspicion(row, from, now)
      out.changed(toMember({ ...row, info }), undefined)
      return false
    }
    if (this.#learnInfo(e, inc, info)) out.changed(toMember({ ...e, info }), e.state)
    if (rec.state === 'left') {
      this.setFinal(rec.id, 'left', inc, now, out)
      return false
    }
    if (e.state === 'alive' && outranks(inc, 'suspect', e)) return this.setSuspect(rec.id, inc, this.#host.selfId, now, out) !== undefined
    this.setSuspect(rec.id, inc, from, now, out)
    return false
  }

  /** Suspicions whose time is up at `now`: [id, incarnation, did we accuse it ourselves]. */
  expired(now: number): [PeerId, number, boolean][] {
    const out: [PeerId, number, boolean][] = []
    for (const id of this.suspects) {
      const e = this.entries.get(id)
      if (e?.suspicion === undefined) { this.suspects.delete(id); continue }
      if (now >= e.suspicion.deadline()) out.push([id, e.inc, e.suspicion.accusers.has(this.#host.selfId)])
    }
    return out
  }

  /** The earliest suspicion deadline (Infinity if none). */
  nextDeadline(): number {
    let t = Number.POSITIVE_INFINITY
    for (const id of this.suspects) {
      const s = this.entries.get(id)?.suspicion
      if (s !== undefined) t = Math.min(t, s.deadline())
    }
    return t
  }

  /** Move every suspicion timer `gap` ms later (we were stalled). */
  shift(gap: number): void {
    for (const id of this.suspects) {
      const s = this.entries.get(id)?.suspicion
      if (s !== undefined) s.start += gap
    }
  }

  /** Forget dead and left members, and detail-less ghosts, older than `reapAfterMs`. */
  reap(now: number, reapAfterMs: number): void {
    for (const [id, e] of this.entries) {
      const gone = e.state === 'dead' || e.state === 'left' || e.info === undefined
      if (gone && now - e.since >= reapAfterMs) {
        this.entries.delete(id)
        this.suspects.delete(id)
        this.#liveDirty = true
      }
    }
  }

  /** The row for `id`, or undefined after creating a detail-less "ghost" row holding the claim. */
  #rowOrGhost(id: PeerId, state: MemberState, inc: number, now: number): Entry | undefined {
    const e = this.entries.get(id)
    if (e !== undefined) return e
    this.entries.set(id, { id, state, inc, since: now, info: undefined, infoInc: -1, suspicion: undefined })
    return undefined
  }

  #setState(e: Entry, state: MemberState, inc: number, now: number): void {
    if (e.state !== state) e.since = now
    e.state = state
    e.inc = inc
    this.#liveDirty = true
    if (state !== 'suspect') {
      e.suspicion = undefined
      this.suspects.delete(e.id)
    }
  }

  /** Take newer details from a claim; true if what we show changed. */
  #learnInfo(e: Entry, inc: number, info: Info): boolean {
    if (inc <= e.infoInc) return false
    const changed = e.info === undefined || !sameInfo(e.info, info)
    if (e.info === undefined) this.#liveDirty = true
    e.info = info
    e.infoInc = inc
    return changed
  }

  #startSuspicion(e: Entry, accuser: PeerId | undefined, now: number): void {
    const n = this.liveCount()
    const cfg = this.#host.config
    e.suspicion = new Suspicion(now, expectedConfirmations(n, cfg), suspicionBounds(n, cfg), accuser)
    this.suspects.add(e.id)
  }
}
