// The applied assignment table (pure): every peer, voter or not, applies every committed
// SchedulerCommand to it in log order. The agents read their host's share from it; the leader's
// scheduler reads all of it. It is part of the Raft snapshot (consensus/commands.ts), so log
// compaction keeps it.
import { cmpStr } from './cluster.ts'
import { applyCommand } from './commit.ts'
import { slotKey, type Assignment, type SchedulerCommand } from './types.ts'

/** A (term, index) position in the log. */
export interface TablePosition {
  term: number
  index: number
}

/** The outcome of applying one command. `duplicate`: re-delivery of an applied position; `stale-*`: older than the newest applied. */
export type TableApplyResult =
  | { ok: true; changed: number }
  | { ok: false; reason: 'duplicate' | 'stale-term' | 'stale-index'; newest: TablePosition }

/** The table as plain data, for the Raft snapshot. */
export interface TableSnapshot {
  /** Position of the newest applied SchedulerCommand ({0, 0} when none). */
  term: number
  index: number
  assignments: Assignment[]
}

/** Read-only view of the table (what the consensus service hands out). */
export interface AssignmentView {
  /** Every committed assignment, sorted by service, then slot. */
  all(): readonly Assignment[]
  /** The assignments of one host, sorted by service, then slot. */
  forHost(hostId: string): readonly Assignment[]
  /** The assignment of one slot, if any. */
  get(service: string, slot: number): Assignment | undefined
  /** Position of the newest applied SchedulerCommand. */
  position(): TablePosition
  /** Number of assignments. */
  readonly size: number
  /** The table as plain data (a copy). */
  snapshot(): TableSnapshot
}


/**
 * The committed assignments, built from SchedulerCommands applied in log order. Application is
 * fenced by (term, index): a command at or before the newest applied position is skipped, so a
 * re-delivered entry (after a restart, or a snapshot that already covers it) is not applied twice
 * and no decision from an older term lands after a newer one. Deletes only remove the generation
 * they name (applyCommand), so an old decision cannot undo a newer one either.
 */
export class AssignmentTable implements AssignmentView {
  #list: Assignment[] = []
  #bySlot = new Map<string, Assignment>()
  #byHost: Map<string, Assignment[]> | undefined
  #pos: TablePosition = { term: 0, index: 0 }

  /** A table holding `snap` (assignments are re-sorted and de-duplicated by slot, newest generation wins). */
  static restore(snap: TableSnapshot): AssignmentTable {
    const t = new AssignmentTable()
    const m = new Map<string, Assignment>()
    for (const a of snap.assignments) {
      const k = slotKey(a.service, a.slot)
      const prev = m.get(k)
      if (prev === undefined || prev.generation < a.generation) m.set(k, { ...a })
    }
    t.#set([...m.values()].sort((a, b) => cmpStr(a.service, b.service) || a.slot - b.slot))
    t.#pos = { term: snap.term, index: snap.index }
    return t
  }

  /** Would a command at `at` be applied? (strictly after the newest applied position) */
  check(at: TablePosition): TableApplyResult {
    const p = this.#pos
    if (at.term < p.term) return { ok: false, reason: 'stale-term', newest: this.position() }
    if (at.term === p.term && at.index < p.index) return { ok: false, reason: 'stale-index', newest: this.position() }
    if (at.term === p.term && at.index === p.index) return { ok: false, reason: 'duplicate', newest: this.position() }
    return { ok: true, changed: 0 }
  }

  /** Apply a committed command at log position `at` (see the class comment for what is refused). */
  apply(cmd: SchedulerCommand, at: TablePosition): TableApplyResult {
    const c = this.check(at)
    if (!c.ok) return c
    this.#set(applyCommand(this.#list, cmd, at))
    this.#pos = { term: at.term, index: at.index }
    return { ok: true, changed: cmd.changes.length }
  }

  all(): readonly Assignment[] {
    return this.#list
  }

  forHost(hostId: string): readonly Assignment[] {
    if (this.#byHost === undefined) {
      const m = new Map<string, Assignment[]>()
      for (const a of this.#list) {
        const l = m.get(a.host)
        if (l === undefined) m.set(a.host, [a])
        else l.push(a)
      }
      this.#byHost = m
    }
    return this.#byHost.get(hostId) ?? []
  }

  get(service: string, slot: number): Assignment | undefined {
    return this.#bySlot.get(slotKey(service, slot))
  }

  position(): TablePosition {
    return { ...this.#pos }
  }

  get size(): number {
    return this.#list.length
  }

  /** The table as plain data (a copy). */
  snapshot(): TableSnapshot {
    return { ...this.#pos, assignments: this.#list.map((a) => ({ ...a })) }
  }

  #set(list: Assignment[]): void {
    this.#list = list
    this.#bySlot = new Map(list.map((a) => [slotKey(a.service, a.slot), a]))
    this.#byHost = undefined
  }
}
