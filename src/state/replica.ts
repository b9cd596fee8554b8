/**
 * The pure desired-state replica: a StateStore, an HLC, and the anti-entropy protocol, driven by
 * time and messages and answering with effects (persist, send, broadcast). No timers, clock,
 * randomness of its own or I/O; the shell or the simulation (src/sim/state-cluster.ts) drives it.
 * docs/state.md describes the model and the rules for tombstones and stale replicas.
 */
import { randInt, type Rng } from '../core/rng.ts'
import type { PeerId } from '../transport/types.ts'
import { diffStamps, entryChunks, keyChunks, mismatchedBuckets, stampChunks } from './antientropy.ts'
import { compareHlc, HlcClock } from './hlc.ts'
import { BROADCAST_BUDGET_BYTES, DIRECT_BUDGET_BYTES, fromWire, isValidKey, isValidNodeId, LIMITS, toWire } from './messages.ts'
import { sameBytes, StateStore } from './store.ts'
import {
  resolveConfig,
  type BroadcastMessage, type DirectMessage, type Effect, type Entry, type ReplicaMeta, type ReplicaStats, type ReplicaStatus,
  type StateConfig, type StateReplica, type StateReplicaInit, type Write, type WriteResult,
} from './types.ts'

export type { ReplicaStats, StateReplica, StateReplicaInit, WriteResult } from './types.ts'

/** Create a replica (fresh, or restored from what the shell persisted). */
export function createStateReplica(init: StateReplicaInit): StateReplica {
  return new Replica(init)
}

class Replica implements StateReplica {
  readonly nodeId: PeerId
  readonly #cfg: StateConfig
  readonly #rng: Rng
  readonly #store: StateStore
  readonly #clock: HlcClock
  #status: ReplicaStatus
  #joiningSince: number | undefined
  #metCurrent = false
  #peers: PeerId[] = []
  #lastTick: number | undefined
  /** The latest physical time seen in any call, for meta(). */
  #lastNow: number
  #nextRoundAt: number
  #nextGcAt: number
  #nextAliveAt: number
  readonly #stats: ReplicaStats = { rounds: 0, roundsInSync: 0, entriesSent: 0, entriesMerged: 0, refused: 0, dropped: 0 }

  constructor(init: StateReplicaInit) {
    if (!isValidNodeId(init.nodeId)) throw new RangeError(`a node id must have 1..${LIMITS.node} characters`)
    this.nodeId = init.nodeId
    this.#cfg = resolveConfig(init.config)
    this.#rng = init.rng
    this.#store = new StateStore({ buckets: this.#cfg.buckets, historyLimit: this.#cfg.historyLimit })
    const r = init.restore
    for (const e of r?.entries ?? []) this.#store.merge(e)
    for (const list of r?.history ?? []) this.#store.restoreHistory(list)
    const high = this.#store.maxHlc()
    const saved = r?.meta?.clock ?? { wall: 0, logical: 0 }
    const start = high !== undefined && compareHlc(high, { ...saved, node: high.node }) > 0 ? high : saved
    this.#clock = new HlcClock(init.nodeId, { maxDriftMs: this.#cfg.maxDriftMs, start: { wall: start.wall, logical: start.logical } })
    if (r?.meta !== undefined) {
      // Away for longer than rejoinAfter: tombstones may have been collected meanwhile.
      const away = init.now - r.meta.aliveAt > this.#cfg.rejoinAfterMs
      this.#status = away ? 'joining' : r.meta.status
      this.#joiningSince = this.#status === 'joining' ? (away ? init.now : (r.meta.joiningSince ?? init.now)) : undefined
    } else {
      const fresh = r === undefined || r.entries.length === 0
      this.#status = fresh && init.founder === true ? 'current' : 'joining'
      this.#joiningSince = this.#status === 'joining' ? init.now : undefined
    }
    this.#lastNow = init.now
    this.#nextRoundAt = init.now + randInt(this.#rng, this.#cfg.antiEntropyIntervalMs)
    this.#nextGcAt = init.now + this.#cfg.gcIntervalMs
    this.#nextAliveAt = init.now
  }

  // ---- writes -----------------------------------------------------------------------------------

  apply(writes: readonly Write[], now: number): { results: WriteResult[]; effects: Effect[] } {
    for (const w of writes) {
      if (!isValidKey(w.key)) throw new RangeError(`a key must have 1..${LIMITS.key} characters and no control characters`)
      if (w.value !== null && w.value.byteLength > LIMITS.value) throw new RangeError(`value of ${w.value.byteLength} bytes exceeds ${LIMITS.value}`)
    }
    this.#lastNow = Math.max(this.#lastNow, now)
    const out = new Out()
    const results: WriteResult[] = []
    const written: Entry[] = []
    for (const w of writes) {
      const held = this.#store.get(w.key)
      const heldLive = held !== undefined && held.value !== null
      const noop = w.value === null ? !heldLive : heldLive && held.value !== null && sameBytes(held.value, w.value)
      if (noop) {
        results.push({ key: w.key, entry: held, written: false })
        continue
      }
      const entry: Entry = { key: w.key, hlc: this.#clock.now(now), value: w.value, revision: this.#store.nextRevision(w.key) }
      this.#merge(entry, out)
      written.push(entry)
      results.push({ key: w.key, entry, written: true })
    }
    for (const chunk of entryChunks(written, BROADCAST_BUDGET_BYTES)) {
      out.net({ type: 'broadcast', msg: { t: 'write', cur: this.#cur(), entries: chunk.map(toWire) } })
    }
    return { results, effects: out.finish() }
  }

  put(key: string, value: Uint8Array, now: number): { result: WriteResult; effects: Effect[] } {
    const { results, effects } = this.apply([{ key, value }], now)
    return { result: results[0] as WriteResult, effects }
  }

  remove(key: string, now: number): { result: WriteResult; effects: Effect[] } {
    const { results, effects } = this.apply([{ key, value: null }], now)
    return { result: results[0] as WriteResult, effects }
  }

  // ---- timers -----------------------------------------------------------------------------------

  tick(now: number): Effect[] {
    this.#lastNow = Math.max(this.#lastNow, now)
    const out = new Out()
    const last = this.#lastTick
    this.#lastTick = now
    if (last !== undefined && now - last > this.#cfg.rejoinAfterMs) this.#setStatus('joining', now, out) // we were suspended
    if (this.#status === 'joining' && !this.#metCurrent && this.#joiningSince !== undefined && now - this.#joiningSince >= this.#cfg.promoteAfterMs) {
      this.#setStatus('current', now, out) // nobody current to learn from (a whole-cluster restart)
    }
    if (now >= this.#nextRoundAt) {
      this.#nextRoundAt = now + this.#cfg.antiEntropyIntervalMs
      const peers = this.#peers
      if (peers.length > 0) {
        const to = peers[randInt(this.#rng, peers.length)] as PeerId
        this.#stats.rounds++
        out.net({ type: 'send', to, msg: { t: 'root', cur: this.#cur(), root: this.#store.root() } })
      }
    }
    if (now >= this.#nextGcAt) {
      this.#nextGcAt = now + this.#cfg.gcIntervalMs
      if (this.#status === 'current') {
        for (const t of this.#store.tombstonesBefore(now - this.#cfg.tombstoneHorizonMs)) this.#drop(t.key, 'collected', out)
      }
    }
    if (now >= this.#nextAliveAt) {
      this.#nextAliveAt = now + this.#cfg.aliveEveryMs
      out.persist({ type: 'meta', meta: this.#meta(now) })
    }
    return out.finish()
  }

  nextDeadline(): number {
    return Math.min(this.#nextRoundAt, this.#nextGcAt, this.#nextAliveAt)
  }

  // ---- messages ---------------------------------------------------------------------------------

  receive(from: PeerId, msg: DirectMessage, now: number): Effect[] {
    if (from === this.nodeId) return []
    const out = new Out()
    if (msg.cur) this.#metCurrent = true
    switch (msg.t) {
      case 'root':
        if (sameBytes(msg.root, this.#store.root())) {
          out.net({ type: 'send', to: from, msg: { t: 'same', cur: this.#cur() } })
          this.#inSync(msg.cur, now, out)
        } else {
          out.net({ type: 'send', to: from, msg: { t: 'buckets', cur: this.#cur(), hashes: this.#store.bucketHashes() } })
        }
        break
      case 'same':
        this.#stats.roundsInSync++
        this.#inSync(msg.cur, now, out)
        break
      case 'buckets': {
        const diff = mismatchedBuckets(this.#store.bucketHashes(), msg.hashes)
        for (const chunk of stampChunks(this.#store, diff ?? [], DIRECT_BUDGET_BYTES)) {
          out.net({ type: 'send', to: from, msg: { t: 'stamps', cur: this.#cur(), n: this.#cfg.buckets, buckets: chunk.buckets, stamps: chunk.stamps } })
        }
        break
      }
      case 'stamps':
        this.#onStamps(from, msg, now, out)
        break
      case 'need':
        this.#onNeed(from, msg, now, out)
        break
      case 'entries':
        for (const w of msg.entries) this.#accept(from, msg.cur, fromWire(w), now, out)
        break
    }
    return out.finish()
  }

  receiveBroadcast(from: PeerId, msg: BroadcastMessage, now: number): Effect[] {
    if (from === this.nodeId) return []
    const out = new Out()
    if (msg.cur) this.#metCurrent = true
    for (const w of msg.entries) this.#accept(from, msg.cur, fromWire(w), now, out)
    return out.finish()
  }

  /** The remote listed its versions of some buckets: push what is newer here, ask for the rest. */
  #onStamps(from: PeerId, msg: Extract<DirectMessage, { t: 'stamps' }>, now: number, out: Out): void {
    if (msg.n !== this.#cfg.buckets) return // bucketed differently: its lists would look like absences
    const buckets = msg.buckets.filter((b) => b < this.#cfg.buckets)
    const diff = diffStamps(this.#store, buckets, msg.stamps)
    const push: Entry[] = []
    for (const key of diff.remoteLacks) {
      const e = this.#store.get(key)
      if (e === undefined) continue
      if (this.#dropIfStale(e, msg.cur, now, out)) continue
      push.push(e)
    }
    for (const key of diff.localNewer) {
      const e = this.#store.get(key)
      if (e !== undefined) push.push(e)
    }
    if (diff.remoteNewer.length + diff.localLacks.length > 0) {
      const stale = keyChunks(diff.remoteNewer)
      const missing = keyChunks(diff.localLacks)
      for (let i = 0; i < Math.max(stale.length, missing.length); i++) {
        out.net({ type: 'send', to: from, msg: { t: 'need', cur: this.#cur(), stale: stale[i] ?? [], missing: missing[i] ?? [] } })
      }
    }
    this.#sendEntries(from, push, out)
  }

  /** The remote asked for keys it holds older (`stale`) or not at all (`missing`). */
  #onNeed(from: PeerId, msg: Extract<DirectMessage, { t: 'need' }>, now: number, out: Out): void {
    const push: Entry[] = []
    for (const key of msg.stale) {
      const e = this.#store.get(key)
      if (e !== undefined) push.push(e)
    }
    for (const key of msg.missing) {
      const e = this.#store.get(key)
      if (e === undefined) continue
      if (this.#dropIfStale(e, msg.cur, now, out)) continue
      push.push(e)
    }
    this.#sendEntries(from, push, out)
  }

  #sendEntries(to: PeerId, entries: Entry[], out: Out): void {
    for (const chunk of entryChunks(entries, DIRECT_BUDGET_BYTES)) {
      this.#stats.entriesSent += chunk.length
      out.net({ type: 'send', to, msg: { t: 'entries', cur: this.#cur(), entries: chunk.map(toWire) } })
    }
  }

  /**
   * A joining replica that holds a settled entry (older than the horizon) which a current peer
   * lacks drops it: the peer collected the tombstone that superseded it.
   */
  #dropIfStale(e: Entry, remoteCurrent: boolean, now: number, out: Out): boolean {
    if (this.#status !== 'joining' || !remoteCurrent || !this.#settled(e, now)) return false
    this.#drop(e.key, 'stale', out)
    return true
  }

  /** Take a remote entry, unless a rule refuses it (docs/state.md, "Accepting an entry"). */
  #accept(from: PeerId, remoteCurrent: boolean, e: Entry, now: number, out: Out): void {
    if (!this.#clock.acceptable(e.hlc, now)) {
      this.#stats.refused++
      out.persist({ type: 'refused', from, key: e.key, reason: 'drift' })
      return
    }
    if (this.#status === 'current' && this.#store.get(e.key) === undefined && this.#settled(e, now) && (!remoteCurrent || e.value === null)) {
      this.#stats.refused++
      out.persist({ type: 'refused', from, key: e.key, reason: 'settled' })
      return
    }
    this.#clock.update(e.hlc, now)
    this.#merge(e, out)
  }

  #merge(e: Entry, out: Out): void {
    const r = this.#store.merge(e)
    if (r.won) {
      this.#stats.entriesMerged++
      out.persist({ type: 'changed', key: e.key, entry: e, previous: r.previous })
    }
    if (r.historyChanged) out.persist({ type: 'history', key: e.key, entries: this.#store.history(e.key) })
  }

  #drop(key: string, reason: 'collected' | 'stale', out: Out): void {
    const previous = this.#store.drop(key)
    if (previous === undefined) return
    this.#stats.dropped++
    out.persist({ type: 'dropped', key, previous, reason })
  }

  /** Equal roots with a peer: a joining replica that matches a current one is caught up. */
  #inSync(remoteCurrent: boolean, now: number, out: Out): void {
    if (remoteCurrent && this.#status === 'joining') this.#setStatus('current', now, out)
  }

  #setStatus(s: ReplicaStatus, now: number, out: Out): void {
    if (this.#status === s) return
    this.#status = s
    this.#joiningSince = s === 'joining' ? now : undefined
    if (s === 'joining') this.#metCurrent = false
    out.persist({ type: 'meta', meta: this.#meta(now) })
  }

  #settled(e: Entry, now: number): boolean {
    return e.hlc.wall < now - this.#cfg.tombstoneHorizonMs
  }

  #cur(): boolean {
    return this.#status === 'current'
  }

  #meta(now: number): ReplicaMeta {
    this.#lastNow = Math.max(this.#lastNow, now)
    const c = this.#clock.peek()
    return { status: this.#status, aliveAt: now, joiningSince: this.#joiningSince, clock: { wall: c.wall, logical: c.logical } }
  }

  // ---- reads ------------------------------------------------------------------------------------

  setPeers(peers: readonly PeerId[]): void {
    this.#peers = peers.filter((p) => p !== this.nodeId)
  }

  get(key: string): Entry | undefined {
    return this.#store.get(key)
  }

  entries(): Entry[] {
    return this.#store.entries()
  }

  live(): Entry[] {
    return this.#store.entries().filter((e) => e.value !== null)
  }

  history(key: string): Entry[] {
    return this.#store.history(key)
  }

  root(): Uint8Array {
    return this.#store.root()
  }

  digest(): { root: Uint8Array; buckets: Uint8Array } {
    return { root: this.#store.root(), buckets: this.#store.bucketHashes() }
  }

  status(): ReplicaStatus {
    return this.#status
  }

  meta(): ReplicaMeta {
    return this.#meta(this.#lastNow)
  }

  stats(): ReplicaStats {
    return { ...this.#stats }
  }
}

/** Collects effects: persistence first, then network. */
class Out {
  readonly #persist: Effect[] = []
  readonly #net: Effect[] = []

  persist(e: Effect): void {
    this.#persist.push(e)
  }

  net(e: Effect): void {
    this.#net.push(e)
  }

  finish(): Effect[] {
    return this.#persist.length === 0 ? this.#net : this.#persist.concat(this.#net)
  }
}
