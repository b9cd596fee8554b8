import { z } from 'zod'
import { AssignmentTable } from '../scheduler/assignments.ts'
import type { SchedulerCommand } from '../scheduler/types.ts'
import { decode, encode, type Decoded } from '../transport/codec.ts'
import { decodeConfChange } from './confchange.ts'
import { MAX_ENTRY_BYTES, MAX_PEER_ID_LENGTH, MAX_SNAPSHOT_BYTES } from './limits.ts'
import type { ConfChange, Entry } from './types.ts'

/**
 * The typed entries of Skein's replicated log, and the state machine they build (pure).
 *
 * A `normal` entry carries one Command, msgpack-encoded and checked by a zod schema:
 * - `placements`: the leader scheduler's decisions (SchedulerCommand, src/scheduler/types.ts), a
 *   delta applied to the assignment table (src/scheduler/assignments.ts) that every peer holds;
 * - `assignments`: the older generic "assignment set" (slot name → host per service), kept for
 *   the consensus benchmark (`peer/debug.ts`) and the consensus tests;
 * - `drain`: `skein drain` / `skein undrain` of one host (peer id): the set of drained hosts, which
 *   the scheduler moves replicas off. Cluster-wide and kept across leader changes (in the log and
 *   in snapshots, like the assignment table).
 * - `restarting`: a peer stopping gracefully (SIGTERM, not `skein leave`) announces that it will be
 *   back before `untilMs` (its wall clock): while the leader's clock is before it, the scheduler
 *   treats the host, once dead, like `onHostLoss: wait` (src/scheduler/reconcile.ts). The latest
 *   entry per host wins; `untilMs: 0` clears it.
 * `conf` entries are the core's own voter changes (confchange.ts); `empty` entries are a new
 * leader's no-op.
 *
 * Every committed entry reaches the application with its (term, index): the fencing token.
 */

/** Longest service name. */
export const MAX_SERVICE_NAME = 253
/** Most slots in one assignment set. */
export const MAX_SLOTS = 10_000
/** Longest slot name. */
export const MAX_SLOT_NAME = 128

/** A scheduling decision: slot name → host (peer id) for one service, at a revision. */
export interface AssignmentSet {
  kind: 'assignments'
  service: string
  revision: number
  slots: Record<string, string>
}

/** `skein drain HOST` (drained: true) or `skein undrain HOST` (false); `host` is a peer id. */
export interface DrainCommand {
  kind: 'drain'
  host: string
  drained: boolean
}

/** A graceful stop announced by `host` (a peer id): back before `untilMs` (epoch ms; 0 clears). */
export interface RestartingCommand {
  kind: 'restarting'
  host: string
  untilMs: number
}

/** Every command the log carries (a union: later issues add kinds). */
export type Command = AssignmentSet | SchedulerCommand | DrainCommand | RestartingCommand

/** Most slot changes in one `placements` command (the entry must also fit MAX_ENTRY_BYTES). */
export const MAX_CHANGES = 10_000
/** Highest slot number. */
export const MAX_SLOT = 1_000_000

const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const serviceName = z.string().min(1).max(MAX_SERVICE_NAME)
const peerId = z.string().min(1).max(MAX_PEER_ID_LENGTH)
const slotNumber = z.number().int().min(0).max(MAX_SLOT)

const slotChangeSchema = z.object({ service: serviceName, slot: slotNumber, host: peerId.nullable(), generation: counter, revision: counter })

const schedulerCommandSchema = z.object({ kind: z.literal('placements'), changes: z.array(slotChangeSchema).max(MAX_CHANGES) })

const assignmentSetSchema = z.object({
  kind: z.literal('assignments'),
  service: z.string().min(1).max(MAX_SERVICE_NAME),
  revision: counter,
  slots: z
    .record(z.string().min(1).max(MAX_SLOT_NAME), z.string().min(1).max(MAX_PEER_ID_LENGTH))
    .refine((s) => Object.keys(s).length <= MAX_SLOTS, `more than ${MAX_SLOTS} slots`),
})

const drainCommandSchema = z.object({ kind: z.literal('drain'), host: peerId, drained: z.boolean() })

const restartingCommandSchema = z.object({ kind: z.literal('restarting'), host: peerId, untilMs: counter })

/** The schema of a command. */
export const commandSchema = z.discriminatedUnion('kind', [assignmentSetSchema, schedulerCommandSchema, drainCommandSchema, restartingCommandSchema])

/** Encode a command for a `normal` entry. */
export function encodeCommand(cmd: Command): Uint8Array {
  return encode(cmd)
}

/** Decode and check a `normal` entry's data. Never throws. */
export function decodeCommand(data: Uint8Array): Decoded<Command> {
  return decode(commandSchema, data, MAX_ENTRY_BYTES)
}

/** A committed entry as local subscribers see it. `kind: 'invalid'` is an undecodable entry (skipped by every peer alike). */
export type CommittedEntry =
  | { term: number; index: number; kind: 'command'; command: Command }
  | { term: number; index: number; kind: 'conf'; change: ConfChange }
  | { term: number; index: number; kind: 'empty' }
  | { term: number; index: number; kind: 'invalid'; reason: string }

/** Classify a committed log entry. */
export function toCommitted(e: Entry): CommittedEntry {
  const at = { term: e.term, index: e.index }
  if (e.type === 'empty') return { ...at, kind: 'empty' }
  if (e.type === 'conf') {
    const change = decodeConfChange(e.data)
    return change === undefined ? { ...at, kind: 'invalid', reason: 'undecodable configuration change' } : { ...at, kind: 'conf', change }
  }
  const d = decodeCommand(e.data)
  return d.ok ? { ...at, kind: 'command', command: d.value } : { ...at, kind: 'invalid', reason: d.reason }
}

// ---- fencing ----

/** A (term, index) position in the log. */
export interface LogPosition {
  term: number
  index: number
}

/** The answer of a fence check. */
export type FenceResult = { ok: true } | { ok: false; reason: 'stale-term' | 'stale-index'; newest: LogPosition }

/**
 * Fencing by (term, index). The fence remembers the newest decision this peer has applied;
 * a decision older than it (an older term, or the same term at a lower index) is refused, so a
 * stale leader's instructions, or an old copy of a decision, are never acted on.
 *
 * It compares with the newest APPLIED decision, not with the highest term this peer has merely
 * seen: an entry proposed in term 5 may legitimately commit while term 7 is current (the term-7
 * leader commits it with its own entries), and must then be applied. Log order never goes back
 * in (term, index), so committed entries always pass.
 */
export class Fence {
  #mark: LogPosition

  constructor(mark: LogPosition = { term: 0, index: 0 }) {
    this.#mark = { term: mark.term, index: mark.index }
  }

  /** The newest applied decision. */
  mark(): LogPosition {
    return { ...this.#mark }
  }

  /** May a decision made at (term, index) be acted on? Equal positions pass (re-delivery is idempotent). */
  check(term: number, index: number): FenceResult {
    const m = this.#mark
    if (term < m.term) return { ok: false, reason: 'stale-term', newest: this.mark() }
    if (term === m.term && index < m.index) return { ok: false, reason: 'stale-index', newest: this.mark() }
    return { ok: true }
  }

  /** Record an applied decision. The mark never goes back. */
  advance(term: number, index: number): void {
    if (this.check(term, index).ok) this.#mark = { term, index }
  }
}

// ---- the applied state machine ----

/** The latest assignment set of one service, with the position that decided it. */
export interface AppliedAssignments extends LogPosition {
  revision: number
  slots: Record<string, string>
}

/** What the log has built so far (the voter configuration lives in the core and its snapshots). */
export interface AppState {
  /** Generic assignment sets (`assignments` commands). */
  assignments: Map<string, AppliedAssignments>
  /** The scheduler's committed assignments (`placements` commands). */
  table: AssignmentTable
  /** Drained hosts (peer ids), from `drain` commands. */
  drained: Set<string>
  /** Hosts (peer ids) that announced a graceful restart → until when (epoch ms), from `restarting` commands. */
  restarting: Map<string, number>
  fence: Fence
  /** Index of the last entry applied. */
  applied: number
}

/** An empty state machine. */
export function emptyAppState(): AppState {
  return { assignments: new Map(), table: new AssignmentTable(), drained: new Set(), restarting: new Map(), fence: new Fence(), applied: 0 }
}

/** Apply one committed entry (in log order); returns the entry as subscribers see it. */
export function applyEntry(state: AppState, e: Entry): CommittedEntry {
  const c = toCommitted(e)
  state.applied = Math.max(state.applied, e.index)
  if (c.kind === 'command') {
    const cmd = c.command
    if (cmd.kind === 'placements') state.table.apply(cmd, at(e))
    else if (cmd.kind === 'drain') {
      if (cmd.drained) state.drained.add(cmd.host)
      else state.drained.delete(cmd.host)
    } else if (cmd.kind === 'restarting') {
      if (cmd.untilMs > 0) state.restarting.set(cmd.host, cmd.untilMs)
      else state.restarting.delete(cmd.host)
    } else state.assignments.set(cmd.service, { revision: cmd.revision, slots: { ...cmd.slots }, term: e.term, index: e.index })
    state.fence.advance(e.term, e.index)
  }
  return c
}

const at = (e: Entry): LogPosition => ({ term: e.term, index: e.index })

const assignmentRowSchema = z.object({ service: serviceName, slot: slotNumber, host: peerId, revision: counter, generation: counter, term: counter, index: counter })

const snapshotSchema = z.object({
  // v1: before the assignment table (it then starts empty); v2: before the drained hosts (none then).
  // `restarting` was added within v3 (absent: none), so that peers of the previous version, which
  // drop the unknown field, still load snapshots during a rolling upgrade.
  v: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  assignments: z
    .array(z.object({ service: z.string().min(1).max(MAX_SERVICE_NAME), revision: counter, slots: assignmentSetSchema.shape.slots, term: counter, index: counter }))
    .max(1_000_000),
  fence: z.object({ term: counter, index: counter }),
  table: z.object({ term: counter, index: counter, assignments: z.array(assignmentRowSchema).max(1_000_000) }).optional(),
  drained: z.array(peerId).max(100_000).optional(),
  restarting: z.array(z.object({ host: peerId, untilMs: counter })).max(100_000).optional(),
})

/** The state machine as snapshot data (msgpack). */
export function encodeAppState(state: AppState): Uint8Array {
  const assignments = [...state.assignments].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([service, a]) => ({ service, ...a }))
  const restarting = [...state.restarting].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([host, untilMs]) => ({ host, untilMs }))
  return encode({ v: 3, assignments, fence: state.fence.mark(), table: state.table.snapshot(), drained: [...state.drained].sort(), restarting })
}

/** Load snapshot data (taken at `index`). Empty data is an empty state. Never throws. */
export function decodeAppState(data: Uint8Array, index: number): Decoded<AppState> {
  if (data.byteLength === 0) return { ok: true, value: { ...emptyAppState(), applied: index } }
  const d = decode(snapshotSchema, data, MAX_SNAPSHOT_BYTES)
  if (!d.ok) return d
  const assignments = new Map<string, AppliedAssignments>()
  for (const a of d.value.assignments) assignments.set(a.service, { revision: a.revision, slots: a.slots, term: a.term, index: a.index })
  const table = d.value.table === undefined ? new AssignmentTable() : AssignmentTable.restore(d.value.table)
  const restarting = new Map<string, number>()
  for (const r of d.value.restarting ?? []) if (r.untilMs > 0) restarting.set(r.host, r.untilMs)
  return { ok: true, value: { assignments, table, drained: new Set(d.value.drained ?? []), restarting, fence: new Fence(d.value.fence), applied: index } }
}
