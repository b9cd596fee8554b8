/**
 * The pure SWIM/Lifeguard membership core. It owns the table and the probe schedule; it takes
 * time and messages in and returns effects (sends, broadcasts, change notices) out. No timers,
 * no clock, no randomness of its own, no I/O: the shell (service.ts) or the simulation drive it.
 * docs/membership.md describes the protocol.
 */
import type { Rng } from '../core/rng.ts'
import type { PeerId } from '../transport/types.ts'
import { Claims, type ClaimsHost } from './claims.ts'
import { clampAwareness, pushPullInterval, scaleByAwareness } from './formulas.ts'
import { Prober } from './probe.ts'
import { aliveUpdate, infoOf, isLive, MAX_PUSH_PULL_MEMBERS, Out, sameInfo, toRecord, type Entry, type Info } from './records.ts'
import {
  DEFAULT_MEMBERSHIP_CONFIG,
  type BroadcastMessage, type DirectMessage, type Effect, type Member, type MemberInfo, type MemberRecord,
  type MemberState, type MembershipConfig,
} from './types.ts'

/** Options for createMembership. `incarnation` is the persisted one + 1 for a restarted peer. */
export interface MembershipInit {
  self: MemberInfo
  incarnation: number
  config?: Partial<MembershipConfig>
  rng: Rng
  now: number
}

/** What updateSelf may change; each call bumps the incarnation. */
export interface SelfChange {
  name?: string
  address?: string
  labels?: Record<string, string>
}

/** The membership core's surface. Every method returns the effects the shell must carry out. */
export interface Membership {
  /** Drive timers. Call it at least every probeInterval / 2; a longer gap counts as a local stall. */
  tick(now: number): Effect[]
  /** A direct message from the authenticated peer `from` (already checked with checkSender). */
  receive(from: PeerId, msg: DirectMessage, now: number): Effect[]
  /** A gossip message published by `from` (already checked with checkSender). */
  receiveBroadcast(from: PeerId, msg: BroadcastMessage, now: number): Effect[]
  /** Exchange full state with a seed the shell has dialled. */
  join(seedId: PeerId, seedAddress: string, now: number): Effect[]
  /** Leave for good (this incarnation): broadcast `left` and stop probing. */
  leave(now: number): Effect[]
  /** Change what this peer says of itself; bumps the incarnation and broadcasts it. */
  updateSelf(change: SelfChange, now: number): Effect[]
  /** The shell could not deliver to `to`. It may hasten the current probe; it never declares death. */
  sendFailed(to: PeerId, now: number): Effect[]
  /** Every member with known details, self included, sorted by id. */
  members(): Member[]
  member(id: PeerId): Member | undefined
  self(): Member
  /** Lifeguard local-health score, 0 (healthy) to awarenessMax − 1. */
  awareness(): number
  incarnation(): number
  /** The earliest time at which tick() has work to do, for shells that schedule by deadline. */
  nextDeadline(): number
}

/** Create a membership core. */
export function createMembership(init: MembershipInit): Membership {
  return new MembershipTable(init)
}

/** The implementation behind createMembership (exported for tests that want the class). */
export class MembershipTable implements Membership, ClaimsHost {
  readonly config: MembershipConfig
  readonly rng: Rng
  readonly selfId: PeerId
  readonly claims: Claims
  #selfInfo: Info
  #inc: number
  #selfState: 'alive' | 'left' = 'alive'
  #selfSince: number
  #awareness = 0
  #nextPushPullAt: number
  #nextReapAt: number
  #lastTick: number | undefined
  #announcePending = false
  readonly #prober: Prober

  constructor(init: MembershipInit) {
    this.config = { ...DEFAULT_MEMBERSHIP_CONFIG, ...init.config }
    this.rng = init.rng
    this.selfId = init.self.id
    this.#selfInfo = infoOf(init.self)
    this.#inc = Math.max(0, Math.floor(init.incarnation))
    this.#selfSince = init.now
    this.claims = new Claims(this)
    this.#prober = new Prober(this)
    this.#prober.nextProbeAt = init.now + Math.floor(this.rng.next() * this.config.probeIntervalMs)
    this.#nextPushPullAt = init.now + Math.floor(this.rng.next() * this.config.pushPullIntervalMs)
    this.#nextReapAt = init.now + this.#reapEvery()
  }

  // ---- public surface -------------------------------------------------------------------------

  tick(now: number): Effect[] {
    const out = new Out(this.selfId)
    const last = this.#lastTick
    this.#lastTick = now
    if (this.#selfState === 'left') return out.finish()
    if (last !== undefined && now - last > this.config.probeIntervalMs) {
      // We did not run for a while (GC pause, suspended VM): that time must not count against others.
      this.#prober.shift(now - last)
      this.claims.shift(now - last)
      this.adjustAwareness(1)
    }
    this.#prober.tick(now, out)
    for (const [id, inc, accused] of this.claims.expired(now)) {
      // Only accusers announce the death; everyone else's own timer reaches the same verdict.
      if (this.claims.setFinal(id, 'dead', inc, now, out) && accused) out.broadcast({ kind: 'dead', id, inc, from: this.selfId })
    }
    if (now >= this.#nextPushPullAt) this.#pushPullRound(now, out)
    if (now >= this.#nextReapAt) {
      this.#nextReapAt = now + this.#reapEvery()
      this.claims.reap(now, this.config.reapAfterMs)
    }
    return out.finish()
  }

  receive(from: PeerId, msg: DirectMessage, now: number): Effect[] {
    const out = new Out(this.selfId)
    if (from === this.selfId) return []
    // Any message from a member we hold suspect shows it is up: tell it of the suspicion.
    this.#prober.hint(from, now, out)
    switch (msg.t) {
      case 'ping':
        out.send(from, this.addressOf(from), { t: 'ack', seq: msg.seq, from: this.selfId })
        break
      case 'ack':
        this.#prober.onAck(from, msg.seq, now, out)
        break
      case 'nack':
        this.#prober.onNack(from, msg.seq)
        break
      case 'ping-req':
        if (msg.target !== this.selfId) this.#prober.onPingReq(from, msg.seq, msg.target, msg.address, now, out)
        else out.send(from, this.addressOf(from), { t: 'ack', seq: msg.seq, from: this.selfId })
        break
      case 'push-pull':
        for (const rec of msg.members) {
          if (this.claims.merge(rec, from, now, out)) out.broadcast({ kind: 'suspect', id: rec.id, inc: rec.incarnation, from: this.selfId })
        }
        if (!msg.reply) {
          const addr = this.addressOf(from) || (msg.members.find((r) => r.id === from)?.address ?? '')
          out.send(from, addr, { t: 'push-pull', from: this.selfId, reply: true, members: this.#fullState() })
        } else if (this.#announcePending && this.#selfState === 'alive') {
          // The first answer after a join: the gossip mesh is likely up now, so say hello again.
          this.#announcePending = false
          out.broadcast(aliveUpdate(this.#self(), this.#inc))
        }
        break
    }
    return out.finish()
  }

  receiveBroadcast(from: PeerId, msg: BroadcastMessage, now: number): Effect[] {
    const out = new Out(this.selfId)
    if (from === this.selfId) return []
    for (const u of msg.updates) {
      switch (u.kind) {
        case 'alive':
          this.claims.setAlive(u.id, u.inc, infoOf(u), now, out)
          break
        case 'suspect':
          this.claims.setSuspect(u.id, u.inc, u.from, now, out)
          break
        case 'dead':
        case 'left':
          this.claims.setFinal(u.id, u.kind, u.inc, now, out)
          break
      }
    }
    return out.finish()
  }

  join(seedId: PeerId, seedAddress: string, _now: number): Effect[] {
    const out = new Out(this.selfId)
    if (seedId === this.selfId || this.#selfState === 'left') return []
    out.send(seedId, seedAddress, { t: 'push-pull', from: this.selfId, reply: false, members: this.#fullState() })
    out.broadcast(aliveUpdate(this.#self(), this.#inc))
    this.#announcePending = true
    return out.finish()
  }

  leave(now: number): Effect[] {
    const out = new Out(this.selfId)
    if (this.#selfState === 'left') return []
    this.#selfState = 'left'
    this.#selfSince = now
    this.#prober.abandon()
    out.broadcast({ kind: 'left', id: this.selfId, inc: this.#inc })
    out.changed(this.self(), 'alive')
    return out.finish()
  }

  updateSelf(change: SelfChange, _now: number): Effect[] {
    const out = new Out(this.selfId)
    if (this.#selfState === 'left') return []
    const cur = this.#selfInfo
    this.#selfInfo = infoOf({ name: change.name ?? cur.name, address: change.address ?? cur.address, labels: change.labels ?? cur.labels })
    this.#inc += 1
    out.broadcast(aliveUpdate(this.#self(), this.#inc))
    out.changed(this.self(), 'alive')
    return out.finish()
  }

  sendFailed(to: PeerId, now: number): Effect[] {
    const out = new Out(this.selfId)
    if (this.#selfState === 'alive') this.#prober.onSendFailed(to, now, out)
    return out.finish()
  }

  members(): Member[] {
    const out: Member[] = [this.self()]
    for (const id of this.claims.entries.keys()) {
      const m = this.claims.member(id)
      if (m !== undefined) out.push(m)
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  member(id: PeerId): Member | undefined {
    return id === this.selfId ? this.self() : this.claims.member(id)
  }

  self(): Member {
    return { ...this.#self(), state: this.#selfState, incarnation: this.#inc, since: this.#selfSince }
  }

  awareness(): number {
    return this.#awareness
  }

  incarnation(): number {
    return this.#inc
  }

  nextDeadline(): number {
    return Math.min(this.#prober.nextDeadline(), this.claims.nextDeadline(), this.#nextPushPullAt, this.#nextReapAt)
  }

  // ---- for the claims table and the prober ----------------------------------------------------

  /** The rows (shared with the claims table). */
  get entries(): ReadonlyMap<PeerId, Entry> {
    return this.claims.entries
  }

  aboutSelf(state: MemberState, inc: number, info: Info | undefined, out: Out): void {
    if (this.#selfState === 'left') return
    // Anything but a matching alive at our incarnation speaks of an old life, or accuses us: outbid it.
    const conflict = state === 'alive' ? inc > this.#inc || (inc === this.#inc && info !== undefined && !sameInfo(info, this.#selfInfo)) : inc >= this.#inc
    if (!conflict) return
    this.#inc = inc + 1
    this.adjustAwareness(1)
    out.broadcast(aliveUpdate(this.#self(), this.#inc))
    out.changed(this.self(), 'alive')
  }

  probeable(id: PeerId): void {
    this.#prober.insert(id)
  }

  sampleKeys(): readonly PeerId[] {
    return this.#prober.order
  }

  /** Move the awareness score by `delta`, clamped. */
  adjustAwareness(delta: number): void {
    this.#awareness = clampAwareness(this.#awareness + delta, this.config.awarenessMax)
  }

  /** A duration scaled by the current awareness. */
  scaled(ms: number): number {
    return scaleByAwareness(ms, this.#awareness)
  }

  addressOf(id: PeerId): string {
    return this.claims.addressOf(id)
  }

  liveCount(): number {
    return this.claims.liveCount()
  }

  pick(k: number, exclude: ReadonlySet<PeerId>, states: readonly MemberState[]): PeerId[] {
    return this.claims.pick(k, exclude, states)
  }

  setSuspect(id: PeerId, inc: number, accuser: PeerId, now: number, out: Out): 'started' | 'confirmed' | undefined {
    return this.claims.setSuspect(id, inc, accuser, now, out)
  }

  // ---- internals ------------------------------------------------------------------------------

  #self(): MemberInfo {
    return { id: this.selfId, ...infoOf(this.#selfInfo) }
  }

  #fullState(): MemberRecord[] {
    const self: MemberRecord = { ...this.#self(), state: this.#selfState, incarnation: this.#inc }
    const live: MemberRecord[] = []
    const gone: MemberRecord[] = []
    for (const e of this.claims.entries.values()) {
      if (e.info !== undefined) (isLive(e.state) ? live : gone).push(toRecord({ ...e, info: e.info }))
    }
    return [self, ...live, ...gone].slice(0, MAX_PUSH_PULL_MEMBERS)
  }

  #pushPullRound(now: number, out: Out): void {
    const live = this.liveCount()
    this.#nextPushPullAt = now + pushPullInterval(this.config.pushPullIntervalMs, live)
    const targets = this.pick(1, new Set(), ['alive'])
    // Now and then also one dead member, so that the two sides of a healed partition meet again.
    const dead = this.pick(1, new Set(), ['dead'])
    if (dead.length > 0) {
      let nDead = 0
      for (const e of this.claims.entries.values()) if (e.state === 'dead' && e.info !== undefined) nDead++
      if (this.rng.next() < nDead / Math.max(1, live - 1)) targets.push(...dead)
    }
    for (const id of targets) {
      out.send(id, this.addressOf(id), { t: 'push-pull', from: this.selfId, reply: false, members: this.#fullState() })
    }
  }

  #reapEvery(): number {
    return Math.min(10_000, Math.max(10, Math.floor(this.config.reapAfterMs / 4)))
  }
}
