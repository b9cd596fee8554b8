// From a reconcile output to the log and back: the proposed typed entry, and how applying it
// changes the committed assignments (used by the tests and the simulation as the "commit").
import { cmpStr } from './cluster.ts'
import type { Assignment, SchedulerCommand, SchedulerOutput, SlotChange } from './types.ts'

/** The log entry for a round's decisions (stale-copy stops need none), or null when nothing changes. */
export function toCommand(out: SchedulerOutput): SchedulerCommand | null {
  const changes: SlotChange[] = []
  for (const s of out.stop) if (s.unassign) changes.push({ service: s.service, slot: s.slot, host: null, generation: s.generation, revision: 0 })
  for (const m of out.move) changes.push({ service: m.service, slot: m.slot, host: m.to, generation: m.generation, revision: m.revision })
  for (const p of out.place) changes.push({ service: p.service, slot: p.slot, host: p.host, generation: p.generation, revision: p.revision })
  return changes.length === 0 ? null : { kind: 'placements', changes }
}

/** The committed assignments after applying a command at log position (term, index); sorted by service, slot. */
export function applyCommand(assignments: readonly Assignment[], cmd: SchedulerCommand, at: { term: number; index: number }): Assignment[] {
  const key = (service: string, slot: number): string => `${service}\u0000${slot}`
  const m = new Map<string, Assignment>()
  for (const a of assignments) m.set(key(a.service, a.slot), a)
  for (const c of cmd.changes) {
    const k = key(c.service, c.slot)
    if (c.host === null) {
      // A delete only removes the generation it names: an older decision cannot undo a newer one.
      if (m.get(k)?.generation === c.generation) m.delete(k)
    } else {
      m.set(k, { service: c.service, slot: c.slot, host: c.host, revision: c.revision, generation: c.generation, term: at.term, index: at.index })
    }
  }
  return [...m.values()].sort((a, b) => cmpStr(a.service, b.service) || a.slot - b.slot)
}

/** Shorthand: apply a whole reconcile output at (term, index). */
export function applyDecisions(assignments: readonly Assignment[], out: SchedulerOutput, at: { term: number; index: number }): Assignment[] {
  const cmd = toCommand(out)
  return cmd === null ? [...assignments] : applyCommand(assignments, cmd, at)
}
