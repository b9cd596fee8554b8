import { emptySnapshot, type RaftStorage } from './storage.ts'
import type { ConfState, Entry, HardState, Snapshot } from './types.ts'

/**
 * RaftStorage in memory: for tests, the simulation, and as the reference the sqlite storage
 * must behave like. Pure: no I/O. Values handed in and out are shared, not copied; callers treat
 * them as immutable.
 */
export class MemoryRaftStorage implements RaftStorage {
  #hardState: HardState = { term: 0, vote: null, commit: 0 }
  #snapshot: Snapshot = emptySnapshot()
  /** #entries[k] has index #snapshot.index + 1 + k. */
  #entries: Entry[] = []

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: { ...this.#hardState }, conf: copyConf(this.#snapshot.conf) }
  }

  entries(lo: number, hi: number): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw new RangeError(`entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`)
    }
    const base = this.#snapshot.index + 1
    return this.#entries.slice(lo - base, hi - base)
  }

  term(i: number): number | undefined {
    if (i === this.#snapshot.index) return this.#snapshot.term
    if (i < this.#snapshot.index) return undefined
    return this.#entries[i - this.#snapshot.index - 1]?.term
  }

  firstIndex(): number {
    return this.#snapshot.index + 1
  }

  lastIndex(): number {
    return this.#snapshot.index + this.#entries.length
  }

  snapshot(): Snapshot {
    return this.#snapshot
  }

  append(entries: Entry[]): void {
    const fresh = entries.filter((e) => e.index > this.#snapshot.index)
    const first = fresh[0]
    if (first === undefined) return
    if (first.index > this.lastIndex() + 1) {
      throw new RangeError(`append at ${first.index} leaves a gap after ${this.lastIndex()}`)
    }
    this.#entries = this.#entries.slice(0, first.index - this.#snapshot.index - 1).concat(fresh)
  }

  setHardState(hardState: HardState): void {
    this.#hardState = { ...hardState }
  }

  applySnapshot(snapshot: Snapshot): void {
    this.#snapshot = snapshot
    this.#entries = []
  }

  compact(snapshot: Snapshot): void {
    if (snapshot.index <= this.#snapshot.index) return
    if (snapshot.index > this.lastIndex()) {
      throw new RangeError(`compact to ${snapshot.index} beyond the last index ${this.lastIndex()}`)
    }
    this.#entries = this.#entries.slice(snapshot.index - this.#snapshot.index)
    this.#snapshot = snapshot
  }

  /** The stored hard state (for tests and the simulation). */
  hardState(): HardState {
    return { ...this.#hardState }
  }
}

function copyConf(conf: ConfState): ConfState {
  return { voters: conf.voters.slice(), learners: conf.learners.slice() }
}
