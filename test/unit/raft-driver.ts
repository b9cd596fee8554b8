/**
 * A hand-driven Raft cluster for scenario tests: nothing moves unless the test says so. Messages
 * wait in an outbox until the test delivers or drops them; each peer's shell persists, sends and
 * applies its Ready batches in `flush`. Crashes lose only what was never flushed.
 */
import { MemoryRaftStorage } from '../../src/consensus/memory-storage.ts'
import { createRaft, type Raft, type RaftConfig } from '../../src/consensus/raft.ts'
import { bootstrap } from '../../src/consensus/storage.ts'
import type { Entry, RaftMessage } from '../../src/consensus/types.ts'
import { seededRng } from '../../src/core/rng.ts'

export type Options = Partial<Omit<RaftConfig, 'id' | 'storage' | 'rng'>>

export class Driver {
  readonly storages = new Map<string, MemoryRaftStorage>()
  readonly rafts = new Map<string, Raft>()
  /** Committed entries each peer's application received, in order (reset by a restart). */
  readonly applied = new Map<string, Entry[]>()
  /** Messages sent and not yet delivered or dropped. */
  outbox: RaftMessage[] = []
  readonly opts: Options
  #seed: number

  constructor(ids: string[], voters: string[], opts: Options = {}, seed = 1) {
    this.opts = opts
    this.#seed = seed
    for (const id of ids) {
      const storage = new MemoryRaftStorage()
      if (voters.includes(id)) bootstrap(storage, voters)
      this.storages.set(id, storage)
      this.restart(id)
    }
  }

  raft(id: string): Raft {
    const r = this.rafts.get(id)
    if (r === undefined) throw new Error(`${id} is down`)
    return r
  }

  storage(id: string): MemoryRaftStorage {
    return this.storages.get(id) as MemoryRaftStorage
  }

  /** Handle every peer's Ready batches: persist, queue the messages, apply, advance. */
  flush(): void {
    for (const [id, raft] of this.rafts) {
      const st = this.storage(id)
      while (raft.hasReady()) {
        const rd = raft.ready()
        if (rd.snapshot !== undefined) st.applySnapshot(rd.snapshot)
        st.append(rd.entries)
        if (rd.hardState !== undefined) st.setHardState(rd.hardState)
        this.outbox.push(...rd.messages)
        this.applied.get(id)?.push(...rd.committed)
        raft.advance(rd)
      }
    }
  }

  /** Deliver (in order) the queued messages matching `pred`, flushing after each. Returns how many. */
  deliver(pred: (m: RaftMessage) => boolean = () => true): number {
    this.flush()
    const now = this.outbox.filter(pred)
    this.outbox = this.outbox.filter((m) => !pred(m))
    for (const m of now) {
      this.rafts.get(m.to)?.step(m)
      this.flush()
    }
    return now.length
  }

  /** Deliver matching messages until none is left (dropping those to crashed peers). */
  settle(pred: (m: RaftMessage) => boolean = () => true, maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) if (this.deliver(pred) === 0) return
    throw new Error('the cluster did not settle')
  }

  /** Drop the queued messages matching `pred`. */
  drop(pred: (m: RaftMessage) => boolean = () => true): void {
    this.flush()
    this.outbox = this.outbox.filter((m) => !pred(m))
  }

  tick(id: string, n = 1): void {
    for (let i = 0; i < n; i++) this.raft(id).tick()
    this.flush()
  }

  /** Tick `id` until it starts a (pre-)campaign. */
  campaign(id: string): void {
    const raft = this.raft(id)
    for (let i = 0; i < 1000 && raft.status().role === 'follower'; i++) raft.tick()
    this.flush()
  }

  /** Lose the core and everything not flushed; messages to it are dropped. */
  crash(id: string): void {
    this.rafts.delete(id)
    this.outbox = this.outbox.filter((m) => m.to !== id)
  }

  /** Rebuild the core from its storage. */
  restart(id: string, applied?: number): void {
    this.rafts.set(id, createRaft({ id, storage: this.storage(id), rng: seededRng(this.#seed++), applied, ...this.opts }))
    this.applied.set(id, [])
    this.flush()
  }

  /** Payloads of the normal entries `id` applied since its last restart. */
  data(id: string): string[] {
    return (this.applied.get(id) ?? []).filter((e) => e.type === 'normal').map((e) => new TextDecoder().decode(e.data))
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
