import { applyConfChange, decodeConfChange } from './confchange.ts'
import type { RaftStorage } from './storage.ts'
import type { ConfState, Entry, Snapshot } from './types.ts'

/** A configuration and the index of the entry (or snapshot) that introduced it. */
export interface ConfAt {
  index: number
  conf: ConfState
}

/**
 * The core's view of its log: what is in stable storage, plus the "unstable" tail (entries, or
 * a snapshot received from the leader) that the shell has not yet persisted. The log is
 * storage[firstIndex .. offset-1] followed by the unstable entries from `offset`; stored entries
 * at or after `offset` are stale and will be overwritten when the unstable ones are persisted.
 *
 * It also tracks the configurations in the log (thesis §4.1: a peer always uses the latest
 * configuration in its log, committed or not, and falls back when that entry is truncated).
 */
export class RaftLog {
  readonly storage: RaftStorage
  /** Highest index known to be committed. */
  committed: number
  /** Highest index the application has applied (after advance). */
  applied: number
  #snapshot: Snapshot | undefined
  #entries: Entry[] = []
  #offset: number
  /** The snapshot's configuration, then one per conf entry in the log, by index. */
  #confs: ConfAt[]

  /** `conf` is the configuration as of the storage's snapshot (index firstIndex()-1). */
  constructor(storage: RaftStorage, conf: ConfState, committed: number, applied: number) {
    this.storage = storage
    this.committed = committed
    this.applied = applied
    this.#offset = storage.lastIndex() + 1
    this.#confs = [{ index: storage.firstIndex() - 1, conf }]
    this.#trackConfs(storage.entries(storage.firstIndex(), storage.lastIndex() + 1))
  }

  #trackConfs(entries: Entry[]): void {
    for (const e of entries) {
      if (e.type !== 'conf') continue
      const change = decodeConfChange(e.data)
      const prev = this.conf()
      // An undecodable change is ignored identically by every peer: the configuration stays.
      this.#confs.push({ index: e.index, conf: change === undefined ? prev : applyConfChange(prev, change) })
    }
  }

  /** The latest configuration in the log: the one this peer uses. */
  conf(): ConfState {
    return (this.#confs[this.#confs.length - 1] as ConfAt).conf
  }

  /** Index of the entry that introduced the latest configuration. */
  confIndex(): number {
    return (this.#confs[this.#confs.length - 1] as ConfAt).index
  }

  /** The configuration the latest one replaced, if the log still holds the change. */
  previousConf(): ConfState | undefined {
    return this.#confs[this.#confs.length - 2]?.conf
  }

  /** The configuration in force just after entry `index`. */
  confAt(index: number): ConfState {
    let found = this.#confs[0] as ConfAt
    for (const c of this.#confs) if (c.index <= index) found = c
    return found.conf
  }

  /** Storage was compacted up to `index`: forget the configurations before it. */
  compacted(index: number): void {
    const conf = this.confAt(index)
    this.#confs = [{ index, conf }, ...this.#confs.filter((c) => c.index > index)]
  }

  firstIndex(): number {
    return this.#snapshot !== undefined ? this.#snapshot.index + 1 : this.storage.firstIndex()
  }

  lastIndex(): number {
    if (this.#entries.length > 0) return this.#offset + this.#entries.length - 1
    if (this.#snapshot !== undefined) return this.#snapshot.index
    return this.storage.lastIndex()
  }

  /** Term of entry i; undefined when compacted away or beyond the last index. */
  term(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined
    if (this.#entries.length > 0 && i >= this.#offset) return this.#entries[i - this.#offset]?.term
    if (this.#snapshot !== undefined) return i === this.#snapshot.index ? this.#snapshot.term : undefined
    return this.storage.term(i)
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** Entries [lo, hi); the caller keeps firstIndex() <= lo <= hi <= lastIndex()+1. */
  slice(lo: number, hi: number): Entry[] {
    if (lo >= hi) return []
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1) {
      throw new RangeError(`log slice [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`)
    }
    let out: Entry[] = []
    if (lo < this.#offset) out = this.storage.entries(lo, Math.min(hi, this.#offset))
    if (hi > this.#offset) {
      const from = Math.max(lo, this.#offset) - this.#offset
      out = out.concat(this.#entries.slice(from, hi - this.#offset))
    }
    return out
  }

  /**
   * Up to maxCount entries from lo, cut after maxBytes of data (at least one entry).
   * undefined when lo has been compacted away.
   */
  entriesFrom(lo: number, maxCount: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined
    const last = this.lastIndex()
    if (lo > last) return []
    const ents = this.slice(lo, Math.min(last + 1, lo + maxCount))
    let bytes = 0
    for (let k = 0; k < ents.length; k++) {
      bytes += (ents[k] as Entry).data.byteLength
      if (k > 0 && bytes > maxBytes) return ents.slice(0, k)
    }
    return ents
  }

  /** Raft's up-to-date check (§5.4.1): is a log ending at (lastIndex, lastTerm) at least as recent as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm()
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex())
  }

  /**
   * Follower side of AppendEntries: if (prevIndex, prevTerm) matches, append the entries that
   * are new or conflicting and advance the commit index. Returns the last index now known to
   * match the leader, or undefined when prevIndex does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: Entry[]): number | undefined {
    if (this.term(prevIndex) !== prevTerm) return undefined
    const lastNew = prevIndex + entries.length
    const conflict = this.findConflict(entries)
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new Error(`raft: entry ${conflict} conflicts with the committed prefix (commit ${this.committed})`)
      }
      this.append(entries.slice(conflict - prevIndex - 1))
    }
    this.commitTo(Math.min(commit, lastNew))
    return lastNew
  }

  /** Index of the first entry whose term differs from ours (or that we lack); 0 when all match. */
  findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (this.term(e.index) !== e.term) return e.index
    }
    return 0
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: where a log ending with
   * `term` at `index` may agree with ours. Term 0 means unknown (compacted).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = Math.min(index, this.lastIndex()); i > 0; i--) {
      const t = this.term(i)
      if (t === undefined) return { index: i, term: 0 }
      if (t <= term) return { index: i, term: t }
    }
    return { index: 0, term: 0 }
  }

  /** Append entries (contiguous, starting at most at lastIndex()+1) to the unstable tail. */
  append(entries: Entry[]): number {
    const first = entries[0]
    if (first === undefined) return this.lastIndex()
    if (first.index - 1 < this.committed) {
      throw new Error(`raft: append at ${first.index} would overwrite committed entries (commit ${this.committed})`)
    }
    if (first.index > this.lastIndex() + 1) throw new Error(`raft: append at ${first.index} leaves a gap after ${this.lastIndex()}`)
    if (first.index === this.#offset + this.#entries.length) {
      this.#entries = this.#entries.concat(entries)
    } else if (first.index <= this.#offset) {
      this.#offset = first.index
      this.#entries = entries.slice()
    } else {
      this.#entries = this.#entries.slice(0, first.index - this.#offset).concat(entries)
    }
    // Configurations from truncated entries are gone; the new entries may bring others.
    while (this.#confs.length > 1 && this.confIndex() >= first.index) this.#confs.pop()
    this.#trackConfs(entries)
    return this.lastIndex()
  }

  commitTo(index: number): void {
    if (index <= this.committed) return
    if (index > this.lastIndex()) throw new Error(`raft: commit ${index} is beyond the last index ${this.lastIndex()}`)
    this.committed = index
  }

  /** Leader rule (§5.4.2): commit up to `index` only if that entry is from the current term. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index)
      return true
    }
    return false
  }

  /** Committed entries not yet applied (none while a snapshot is pending), at most maxCount. */
  nextCommitted(maxCount: number): Entry[] {
    if (this.#snapshot !== undefined) return []
    const lo = Math.max(this.applied + 1, this.firstIndex())
    const hi = Math.min(this.committed + 1, lo + maxCount)
    return lo < hi ? this.slice(lo, hi) : []
  }

  hasNextCommitted(): boolean {
    return this.#snapshot === undefined && this.committed > Math.max(this.applied, this.firstIndex() - 1)
  }

  appliedTo(index: number): void {
    if (index > this.applied) this.applied = Math.min(index, this.committed)
  }

  hasUnstableEntries(): boolean {
    return this.#entries.length > 0
  }

  /** Unstable entries the shell must persist. */
  unstableEntries(): Entry[] {
    return this.#entries.slice()
  }

  /** A snapshot received from the leader and not yet persisted. */
  pendingSnapshot(): Snapshot | undefined {
    return this.#snapshot
  }

  /** The highest index known to be in stable storage and in this log. */
  persistedIndex(): number {
    if (this.#snapshot !== undefined) return 0
    return this.#offset - 1
  }

  /** The shell persisted the entries up to (index, term): drop them from the unstable tail. */
  stableTo(index: number, term: number): boolean {
    if (index < this.#offset || index >= this.#offset + this.#entries.length) return false
    if (this.#entries[index - this.#offset]?.term !== term) return false
    this.#entries = this.#entries.slice(index + 1 - this.#offset)
    this.#offset = index + 1
    return true
  }

  /** The shell persisted the pending snapshot at `index`. */
  stableSnapTo(index: number): boolean {
    if (this.#snapshot === undefined || this.#snapshot.index !== index) return false
    this.#snapshot = undefined
    return true
  }

  /** Replace the log by a snapshot from the leader (persisted by the shell via Ready). */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.index
    this.#snapshot = snapshot
    this.#entries = []
    this.#offset = snapshot.index + 1
    this.#confs = [{ index: snapshot.index, conf: snapshot.conf }]
  }

  /** The snapshot to send to a follower that needs compacted entries. */
  snapshot(): Snapshot {
    return this.#snapshot ?? this.storage.snapshot()
  }
}
