/**
 * The SWIM probe machinery of the pure membership core: randomised round-robin probing, the
 * indirect stage (ping-req through k relays, with Lifeguard nacks), serving ping-req as a relay,
 * and the effect collector. Pure like table.ts: time and randomness come from the table.
 */
import { randInt, shuffled } from '../core/rng.ts'
import type { PeerId } from '../transport/types.ts'
import { nackTimeout } from './formulas.ts'
import { isLive, toRecord, type Out } from './records.ts'
import type { MembershipTable } from './table.ts'

interface Probe {
  target: PeerId
  /** The target's incarnation when the probe started: a failure says nothing about a newer one. */
  inc: number
  seq: number
  stage: 'direct' | 'indirect'
  directDeadline: number
  endDeadline: number
  relays: Set<PeerId>
  nacks: Set<PeerId>
}

/** A ping-req this peer serves: it pinged `target` with its own seq on `requester`'s behalf. */
interface Relay {
  requester: PeerId
  origSeq: number
  target: PeerId
  nackAt: number
  expireAt: number
  nacked: boolean
}

/** Bound on concurrent ping-reqs served, so a chatty peer cannot grow our memory. */
const MAX_RELAYS = 1024

/** Probe scheduling and the direct/indirect probe state machine. */
export class Prober {
  readonly #t: MembershipTable
  /** The round-robin order (may hold stale ids; they are skipped). */
  order: PeerId[] = []
  nextProbeAt = 0
  #idx = 0
  readonly #inOrder = new Set<PeerId>()
  #priority: PeerId | undefined
  #probe: Probe | undefined
  readonly #relays = new Map<number, Relay>()
  #seq = 0

  constructor(table: MembershipTable) {
    this.#t = table
  }

  /** Advance the current probe, start the next one when due, and serve relay timeouts. */
  tick(now: number, out: Out): void {
    const p = this.#probe
    if (p !== undefined) {
      const e = this.#t.entries.get(p.target)
      if (e === undefined || !isLive(e.state)) {
        this.#probe = undefined
      } else {
        if (p.stage === 'direct' && now >= p.directDeadline) this.#indirect(p, out)
        if (now >= p.endDeadline) this.#failed(p, now, out)
      }
    }
    if (this.#probe === undefined && now >= this.nextProbeAt) this.#start(now, out)
    for (const [seq, r] of this.#relays) {
      if (!r.nacked && now >= r.nackAt) this.#nack(r, out)
      if (now >= r.expireAt) this.#relays.delete(seq)
    }
  }

  /** An ack: completes our probe, or is relayed back to whoever asked us to probe. */
  onAck(from: PeerId, seq: number, now: number, out: Out): void {
    const t = this.#t
    const p = this.#probe
    if (p !== undefined && seq === p.seq && (from === p.target || p.relays.has(from))) {
      this.#probe = undefined
      if (from === p.target) t.adjustAwareness(-1)
      else this.hint(p.target, now, out)
      return
    }
    const r = this.#relays.get(seq)
    if (r !== undefined && from === r.target) {
      this.#relays.delete(seq)
      out.send(r.requester, t.addressOf(r.requester), { t: 'ack', seq: r.origSeq, from: t.selfId })
    }
  }

  /**
   * `id` answers us, yet we hold it suspect: it may have missed the gossip (a partition drops
   * messages), so tell it directly with a one-row push-pull, at most once per probe interval.
   */
  hint(id: PeerId, now: number, out: Out): void {
    const e = this.#t.entries.get(id)
    const s = e?.suspicion
    if (e?.info === undefined || e.state !== 'suspect' || s === undefined) return
    if (now - s.lastHint < this.#t.config.probeIntervalMs) return
    s.lastHint = now
    out.send(id, e.info.address, { t: 'push-pull', from: this.#t.selfId, reply: true, members: [toRecord({ ...e, info: e.info })] })
  }

  /** A relay says it could not reach our target: it is alive, so our own links are fine. */
  onNack(from: PeerId, seq: number): void {
    const p = this.#probe
    if (p !== undefined && seq === p.seq && p.relays.has(from)) p.nacks.add(from)
  }

  /** Serve a ping-req: ping the target with our own seq and relay its ack (or a nack). */
  onPingReq(from: PeerId, seq: number, target: PeerId, address: string, now: number, out: Out): void {
    const t = this.#t
    if (this.#relays.size >= MAX_RELAYS) return
    const mySeq = this.#nextSeq()
    const cfg = t.config
    this.#relays.set(mySeq, {
      requester: from, origSeq: seq, target,
      nackAt: now + nackTimeout(cfg.probeTimeoutMs),
      expireAt: now + cfg.probeIntervalMs * Math.max(1, cfg.awarenessMax),
      nacked: false,
    })
    // Prefer the address the target announced itself over the one the requester gave.
    out.send(target, t.addressOf(target) || address, { t: 'ping', seq: mySeq, from: t.selfId })
  }

  /** The shell could not reach `to`: skip to the indirect stage, or nack at once as a relay. */
  onSendFailed(to: PeerId, _now: number, out: Out): void {
    const p = this.#probe
    if (p !== undefined && p.target === to && p.stage === 'direct') this.#indirect(p, out)
    for (const r of this.#relays.values()) if (r.target === to && !r.nacked) this.#nack(r, out)
  }

  /** A member became probe-worthy: put it at a random place in the round-robin. */
  insert(id: PeerId): void {
    if (this.#inOrder.has(id)) return
    const pos = randInt(this.#t.rng, this.order.length + 1)
    this.order.splice(pos, 0, id)
    if (pos < this.#idx) this.#idx++
    this.#inOrder.add(id)
  }

  /** Forget any probe in flight (on leave). */
  abandon(): void {
    this.#probe = undefined
    this.#priority = undefined
    this.#relays.clear()
  }

  /** We were stalled for `gap` ms: move our pending deadlines by as much. */
  shift(gap: number): void {
    const p = this.#probe
    if (p !== undefined) {
      p.directDeadline += gap
      p.endDeadline += gap
    }
    for (const r of this.#relays.values()) {
      r.nackAt += gap
      r.expireAt += gap
    }
  }

  /** The earliest time the prober has something to do. */
  nextDeadline(): number {
    const p = this.#probe
    let t = p === undefined ? this.nextProbeAt : p.stage === 'direct' ? p.directDeadline : p.endDeadline
    for (const r of this.#relays.values()) t = Math.min(t, r.nacked ? r.expireAt : r.nackAt)
    return t
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= Number.MAX_SAFE_INTEGER ? 1 : this.#seq + 1
    return this.#seq
  }

  #nack(r: Relay, out: Out): void {
    r.nacked = true
    out.send(r.requester, this.#t.addressOf(r.requester), { t: 'nack', seq: r.origSeq, from: this.#t.selfId })
  }

  #live(id: PeerId): boolean {
    const e = this.#t.entries.get(id)
    return e?.info !== undefined && isLive(e.state)
  }

  #nextTarget(): PeerId | undefined {
    const pri = this.#priority
    this.#priority = undefined
    if (pri !== undefined && this.#live(pri)) return pri
    const bound = this.order.length
    for (let i = 0; i <= bound; i++) {
      if (this.#idx >= this.order.length) {
        const ids = [...this.#t.entries.keys()].filter((id) => this.#live(id))
        this.order = shuffled(this.#t.rng, ids)
        this.#idx = 0
        this.#inOrder.clear()
        for (const id of this.order) this.#inOrder.add(id)
        if (this.order.length === 0) return undefined
      }
      const id = this.order[this.#idx++]
      if (id !== undefined && this.#live(id)) return id
    }
    return undefined
  }

  #start(now: number, out: Out): void {
    const t = this.#t
    const interval = t.scaled(t.config.probeIntervalMs)
    this.nextProbeAt = now + interval
    const target = this.#nextTarget()
    if (target === undefined) return
    const timeout = t.scaled(t.config.probeTimeoutMs)
    const seq = this.#nextSeq()
    this.#probe = {
      target, inc: t.entries.get(target)?.inc ?? 0, seq, stage: 'direct',
      directDeadline: now + timeout,
      endDeadline: now + Math.max(interval, 2 * timeout),
      relays: new Set(), nacks: new Set(),
    }
    out.send(target, t.addressOf(target), { t: 'ping', seq, from: t.selfId })
  }

  #indirect(p: Probe, out: Out): void {
    const t = this.#t
    p.stage = 'indirect'
    const address = t.addressOf(p.target)
    for (const r of t.pick(t.config.indirectChecks, new Set([p.target]), ['alive'])) {
      p.relays.add(r)
      out.send(r, t.addressOf(r), { t: 'ping-req', seq: p.seq, from: t.selfId, target: p.target, address })
    }
  }

  #failed(p: Probe, now: number, out: Out): void {
    const t = this.#t
    this.#probe = undefined
    // Lifeguard: relays that did not even nack suggest that the trouble is on our side.
    const expected = p.relays.size
    t.adjustAwareness(expected > 0 ? expected - p.nacks.size : 1)
    const e = t.entries.get(p.target)
    // Gone, or refuted (or restarted) while we probed: the next probe will look again.
    if (e === undefined || !isLive(e.state) || e.inc !== p.inc) return
    const inc = e.inc
    if (t.setSuspect(p.target, inc, t.selfId, now, out) !== undefined) {
      out.broadcast({ kind: 'suspect', id: p.target, inc, from: t.selfId })
    }
    // An accuser keeps probing its suspect until the suspicion ends: should the member come
    // back (a partition heals), it hears of the suspicion from us and can refute in time.
    if (e.state === 'suspect' && e.suspicion?.accusers.has(t.selfId) === true) this.#priority = p.target
  }
}
