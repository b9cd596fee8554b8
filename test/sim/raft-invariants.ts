/**
 * Safety invariants of Raft, checked by the simulated cluster as events happen. A violation
 * throws an Error whose message starts with the seed, so the run can be replayed.
 */
import type { Entry, HardState, RaftMessage, Snapshot } from '../../src/consensus/types.ts'

/** A replicated state machine for the simulation: the applied entries' payloads and a rolling hash. */
export interface AppState {
  index: number
  hash: number
  items: string[]
}

export function emptyApp(): AppState {
  return { index: 0, hash: 0x811c9dc5, items: [] }
}

/** Apply one committed entry to the application state. */
export function applyToApp(app: AppState, e: Entry): void {
  let h = app.hash
  const mix = (b: number): void => {
    h ^= b & 0xff
    h = Math.imul(h, 0x01000193) >>> 0
  }
  for (const n of [e.index, e.term]) for (let s = 0; s < 32; s += 8) mix(n >>> s)
  mix(e.type.charCodeAt(0))
  for (const b of e.data) mix(b)
  app.hash = h
  app.index = e.index
  if (e.type === 'normal') app.items.push(Buffer.from(e.data).toString('utf8'))
}

export function encodeApp(app: AppState): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify(app)))
}

export function decodeApp(data: Uint8Array): AppState {
  if (data.byteLength === 0) return emptyApp()
  return JSON.parse(Buffer.from(data).toString('utf8')) as AppState
}

const keyOf = (e: Entry): string => `${e.type}:${Buffer.from(e.data).toString('base64')}`

/** What a checked peer exposes. */
export interface CheckedPeer {
  id: string
  role(): string | undefined
  term(): number
  termAt(index: number): number | undefined
  firstIndex(): number
  lastIndex(): number
  /** The term in the peer's stable storage. */
  persistedTerm(): number
}

/** Global knowledge accumulated over a run, across crashes and restarts. */
export class RaftChecker {
  readonly seed: number
  /** term → the one peer that led it. */
  readonly leaders = new Map<number, string>()
  /** index → the committed entry, and the lowest term of a peer that knew it was committed. */
  readonly committed = new Map<number, { term: number; key: string; knownAt: number }>()
  /** (index, term) → the entry's payload key and the term of the entry before it. */
  readonly logMatch = new Map<string, { prevTerm: number | undefined; key: string }>()
  /** index → application hash after applying it. */
  readonly appHash = new Map<number, number>()
  /** "term/voter" → candidate, from persisted hard states and from granted votes on the wire. */
  readonly votes = new Map<string, string>()
  readonly grants = new Map<string, string>()
  readonly lastTerm = new Map<string, number>()
  /** Peers known to lead, by id → term, for leader completeness on new commits. */
  readonly #leading = new Map<string, CheckedPeer>()
  /** Counters, for reports. */
  readonly counts = { elections: 0, commits: 0, applied: 0, snapshots: 0 }

  constructor(seed: number) {
    this.seed = seed
  }

  fail(msg: string): never {
    throw new Error(`[seed ${this.seed}] raft invariant violated: ${msg} (replay: RAFT_SEED=${this.seed} npx vitest run test/sim/raft.test.ts)`)
  }

  /**
   * After any event at a peer: election safety, and leader completeness for a new leader. A
   * leadership counts once its term (and self-vote) is persisted: before that it has not acted
   * (its messages wait for the Ready), and a crash undoes it.
   */
  observe(p: CheckedPeer): void {
    const term = p.term()
    if (p.role() !== 'leader' || p.persistedTerm() !== term) {
      this.#leading.delete(p.id)
      return
    }
    const known = this.leaders.get(term)
    if (known !== undefined && known !== p.id) this.fail(`two leaders in term ${term}: ${known} and ${p.id}`)
    const wasLeading = this.#leading.get(p.id)
    this.#leading.set(p.id, p)
    if (known === undefined) {
      this.leaders.set(term, p.id)
      this.counts.elections++
    }
    if (known === undefined || wasLeading === undefined) {
      for (const [index, c] of this.committed) if (c.knownAt < term) this.#expectInLog(p, index, c.term)
    }
  }

  #expectInLog(p: CheckedPeer, index: number, term: number): void {
    if (index < p.firstIndex()) return
    const t = p.termAt(index)
    if (t !== term) this.fail(`leader ${p.id} (term ${p.term()}) lacks committed entry ${index}@${term} (has ${t ?? 'nothing'})`)
  }

  /** A peer's persisted commit index covers `entries` (read from its storage). */
  committedEntries(p: CheckedPeer, entries: Entry[], peerTerm: number): void {
    for (const e of entries) {
      const c = this.committed.get(e.index)
      const key = keyOf(e)
      if (c === undefined) {
        this.committed.set(e.index, { term: e.term, key, knownAt: peerTerm })
        this.counts.commits++
        for (const l of this.#leading.values()) if (l.role() === 'leader' && l.term() > peerTerm) this.#expectInLog(l, e.index, e.term)
      } else if (c.term !== e.term || c.key !== key) {
        this.fail(`${p.id} committed ${e.index}@${e.term} but ${e.index}@${c.term} was committed before`)
      } else if (peerTerm < c.knownAt) {
        c.knownAt = peerTerm
      }
    }
  }

  /** Entries a peer persisted: log matching, and no committed entry of its own overwritten. */
  appended(p: CheckedPeer, entries: Entry[], prevTermOf: (index: number) => number | undefined, persistedCommit: number): void {
    const first = entries[0]
    if (first !== undefined && first.index <= persistedCommit) {
      this.fail(`${p.id} overwrote from ${first.index} although its commit index is ${persistedCommit}`)
    }
    for (const e of entries) {
      const k = `${e.index}/${e.term}`
      const prevTerm = prevTermOf(e.index - 1)
      const seen = this.logMatch.get(k)
      const key = keyOf(e)
      if (seen === undefined) this.logMatch.set(k, { prevTerm, key })
      else if (seen.key !== key) this.fail(`log matching: two different entries ${k} (at ${p.id})`)
      else if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
        this.fail(`log matching: ${k} follows term ${prevTerm} at ${p.id} but term ${seen.prevTerm} elsewhere`)
      }
    }
  }

  /** A peer installed a snapshot: it must agree with what was committed and applied. */
  snapshotInstalled(p: CheckedPeer, s: Snapshot, app: AppState): void {
    this.counts.snapshots++
    const c = this.committed.get(s.index)
    if (c !== undefined && c.term !== s.term) this.fail(`${p.id} installed snapshot ${s.index}@${s.term}; committed ${s.index}@${c.term}`)
    if (app.index !== s.index) this.fail(`snapshot ${s.index} carries application state at ${app.index}`)
    this.appStateAt(p, app)
  }

  /** The application state of a peer at an index must be the same everywhere. */
  appStateAt(p: CheckedPeer, app: AppState): void {
    const h = this.appHash.get(app.index)
    if (h === undefined) this.appHash.set(app.index, app.hash)
    else if (h !== app.hash) this.fail(`${p.id} application state at ${app.index} differs from another peer's`)
  }

  /** A committed entry handed to a peer's application. */
  applying(p: CheckedPeer, app: AppState, e: Entry): void {
    if (e.index !== app.index + 1) this.fail(`${p.id} applies ${e.index} after ${app.index}`)
    const c = this.committed.get(e.index)
    if (c !== undefined && (c.term !== e.term || c.key !== keyOf(e))) {
      this.fail(`${p.id} applies ${e.index}@${e.term}, but ${e.index}@${c.term} was committed`)
    }
    this.counts.applied++
  }

  /** A persisted hard state: terms never go back, and a vote once cast in a term never changes. */
  hardState(id: string, hs: HardState): void {
    const last = this.lastTerm.get(id) ?? 0
    if (hs.term < last) this.fail(`${id} persisted term ${hs.term} after ${last}`)
    this.lastTerm.set(id, hs.term)
    if (hs.vote === null) return
    const k = `${hs.term}/${id}`
    const v = this.votes.get(k)
    if (v === undefined) this.votes.set(k, hs.vote)
    else if (v !== hs.vote) this.fail(`${id} voted for ${v} and then ${hs.vote} in term ${hs.term}`)
  }

  /** A message leaves a peer: a granted vote is never given to two candidates in one term. */
  sent(m: RaftMessage): void {
    if (m.type !== 'vote-resp' || m.reject) return
    const k = `${m.term}/${m.from}`
    const v = this.grants.get(k)
    if (v === undefined) this.grants.set(k, m.to)
    else if (v !== m.to) this.fail(`${m.from} granted its term-${m.term} vote to ${v} and to ${m.to}`)
  }
}
