// The agent's pure decision core: for one replica slot on this host, the committed assignment (or
// none, or "unknown"), the containers observed for the slot and the restart bookkeeping go in;
// the runtime actions, the new bookkeeping and the observed rows come out. No clock, no I/O:
// the shell (service.ts) passes `now` in and executes the actions. docs/agent.md describes it.
import type { ServiceSpec } from '../model/spec.ts'
import { LABELS, type ReplicaIdentity } from '../runtime/labels.ts'
import type { ContainerInfo } from '../runtime/types.ts'
import { canAdvance } from '../scheduler/states.ts'
import type { Assignment, ObservedReplica, ReplicaHealth, ReplicaState } from '../scheduler/types.ts'

/** The label that carries the assignment's generation (the runtime's LABELS have no slot for it). */
export const GENERATION_LABEL = 'io.skein.generation'

/** Tunables of the step. */
export interface StepConfig {
  /** Grace period of a stop before the kill. */
  stopGraceMs: number
  /** A container that ran this long is stable: its restart streak is reset. */
  stableMs: number
  /** Cap of the exponential restart backoff. */
  maxBackoffMs: number
}

/** Defaults: 10 s grace, stable after 10 s, backoff capped at 5 minutes. */
export const DEFAULT_STEP_CONFIG: StepConfig = { stopGraceMs: 10_000, stableMs: 10_000, maxBackoffMs: 5 * 60_000 }

/** Restart bookkeeping and fence of one slot on this host (kept in memory by the shell). */
export interface SlotBook {
  /** The newest assignment applied for this slot (any host): the fence. */
  applied: Assignment | null
  /** The generation the counters below belong to (0: none yet). */
  generation: number
  /** The container of that generation last seen, or null. */
  containerId: string | null
  /** Last reported state for that generation (so a report only moves forward). */
  state: ReplicaState
  restarts: number
  streak: number
  streakSince: number | null
  /** Times of the restarts of this generation (bounded), for `maxAttempts` within `windowMs`. */
  restartTimes: number[]
  /** `${containerId}:${finishedAt}` of the exit already handled; null when none. */
  exitKey: string | null
  lastExit: number | null
  /** No restart before this time. */
  backoffUntil: number | null
  /** Terminal for this generation: the policy says not to restart, or the agent gave up. */
  terminal: 'stopped' | 'failed' | null
  /** Why it failed (set by the shell for an image that cannot be had, or by the policy). */
  failure: string | null
  /** `${containerId}:${startedAt}` of the run stopped for being unhealthy: its exit is a failure. */
  unhealthyRun: string | null
}

/** A runtime action. `create` means: ensure the image, create from `containerSpecFor`, then start. */
export type AgentAction =
  | { kind: 'create'; service: string; slot: number; generation: number; identity: ReplicaIdentity; image: string }
  | { kind: 'start'; service: string; slot: number; generation: number; id: string; restart: boolean; reason: string }
  | { kind: 'stop'; service: string; slot: number; generation: number; id: string; graceMs: number; reason: string }
  | { kind: 'remove'; service: string; slot: number; generation: number; id: string; reason: string }
  | { kind: 'adopt'; service: string; slot: number; generation: number; id: string }

/** Everything one step reads, for one (service, slot) on this host. */
export interface StepInput {
  cluster: string
  host: string
  service: string
  slot: number
  /** The committed assignment of the slot (whatever its host), null when the slot has none, 'unknown' when the agent has no assignment information. */
  assignment: Assignment | null | 'unknown'
  /**
   * With `assignment: 'unknown'` only: this host's assignment of the slot as this peer last applied
   * it (its own log), not known to be current. Its exited container may be started again (a
   * reboot with no peer reachable); nothing is created, stopped or removed on its word.
   */
  lastKnown?: Assignment | null
  /** Containers of this cluster and host labelled with this service and slot (any generation/revision). */
  containers: readonly ContainerInfo[]
  /** The service's spec, or null when this peer does not know it (yet). */
  spec: ServiceSpec | null
  book: SlotBook | null
  now: number
  config?: Partial<StepConfig>
}

/** What one step decides. */
export interface StepOutput {
  actions: AgentAction[]
  /** The new bookkeeping; null when the slot can be forgotten. */
  book: SlotBook | null
  /** Observed rows for this slot on this host (updatedAt = now; the shell keeps the old one when nothing else changed). */
  observed: ObservedReplica[]
}

/** A fresh bookkeeping record. */
export function emptyBook(): SlotBook {
  return { applied: null, generation: 0, containerId: null, state: 'assigned', restarts: 0, streak: 0, streakSince: null, restartTimes: [], exitKey: null, lastExit: null, backoffUntil: null, terminal: null, failure: null, unhealthyRun: null }
}

/** Is (term, index) of `a` older than that of `b`? */
export function olderThan(a: Assignment, b: Assignment): boolean {
  return a.term < b.term || (a.term === b.term && a.index < b.index)
}

/** The generation label of a container, or null when missing/malformed. */
export function generationOf(c: ContainerInfo): number | null {
  const g = c.labels[GENERATION_LABEL]
  return g !== undefined && /^\d{1,15}$/.test(g) ? Number(g) : null
}

const ACTIVE_DOCKER: ReadonlySet<string> = new Set(['running', 'restarting', 'paused'])
const isUp = (c: ContainerInfo) => ACTIVE_DOCKER.has(c.state)
/** One run of a container. */
const runKey = (c: ContainerInfo) => `${c.id}:${c.startedAt ?? 'never'}`

/** Is the container the copy the assignment names (service, slot, host, revision and generation labels)? */
export function sameCopy(c: ContainerInfo, a: Assignment): boolean {
  return c.labels[LABELS.service] === a.service && c.labels[LABELS.slot] === String(a.slot) && c.labels[LABELS.host] === a.host &&
    c.labels[LABELS.revision] === String(a.revision) && generationOf(c) === a.generation
}

/** Best of several matching copies: running first, then the latest start, then the id. */
function best(cs: ContainerInfo[]): ContainerInfo | undefined {
  return [...cs].sort((x, y) => Number(isUp(y)) - Number(isUp(x)) || (y.startedAt ?? -1) - (x.startedAt ?? -1) || x.id.localeCompare(y.id))[0]
}

function row(i: StepInput, generation: number, state: ReplicaState, c: ContainerInfo | undefined, b: SlotBook | null): ObservedReplica {
  return {
    service: i.service, slot: i.slot, host: i.host, generation, state,
    health: c !== undefined && isUp(c) ? (c.health as ReplicaHealth) : 'none',
    containerId: c?.id ?? null, startedAt: c?.startedAt ?? null,
    exitCode: c !== undefined && !isUp(c) ? (c.exitCode ?? b?.lastExit ?? null) : null,
    restarts: b?.restarts ?? 0, streak: b?.streak ?? 0, streakSince: b?.streakSince ?? null, updatedAt: i.now,
  }
}

/** Rows for containers with no assignment to judge them by: reported as they run. */
function asTheyRun(i: StepInput, containers: readonly ContainerInfo[], book: SlotBook | null): ObservedReplica[] {
  return containers.map((c) => {
    const g = generationOf(c) ?? 0
    const b = book !== null && book.generation === g ? book : null
    return row(i, g, isUp(c) ? 'running' : c.state === 'created' ? 'preparing' : (b?.state ?? 'starting'), c, b)
  })
}

/** Moves `b.state` forward to `to` when allowed; returns the resulting state. */
function advance(b: SlotBook, to: ReplicaState): ReplicaState {
  if (canAdvance(b.state, to)) b.state = to
  return b.state
}

/** The restart delay after `streak` restarts: delay × 2^streak, capped. */
export function backoffMs(delayMs: number, streak: number, capMs: number): number {
  return Math.min(capMs, delayMs * 2 ** Math.min(streak, 30))
}

/**
 * One reconcile step for one slot. Level-triggered and idempotent: the same input gives the same
 * output, and executing the actions moves the world towards the committed assignment.
 */
export function step(i: StepInput): StepOutput {
  const cfg = { ...DEFAULT_STEP_CONFIG, ...i.config }
  const ident = (c: ContainerInfo) => ({ service: i.service, slot: i.slot, generation: generationOf(c) ?? 0, id: c.id })
  // The service's own grace period; the agent's default when the spec is not known (a removed service).
  const grace = i.spec?.stopGracePeriodMs ?? cfg.stopGraceMs

  // Static stability: without assignment information nothing is created, stopped or removed. A
  // container of the slot's last known assignment here that exited (a reboot) is started again
  // through the restart policy; the rest is reported as it runs.
  if (i.assignment === 'unknown') {
    const last = i.lastKnown ?? null
    const own = last !== null && last.host === i.host ? i.containers.filter((c) => sameCopy(c, last)) : []
    if (last !== null && own.length > 0 && i.spec !== null) {
      const r = step({ ...i, assignment: last, lastKnown: null, containers: own })
      const rest = asTheyRun(i, i.containers.filter((c) => !own.includes(c)), null)
      return { actions: r.actions.filter((x) => x.kind === 'start' || x.kind === 'adopt'), book: r.book, observed: [...r.observed, ...rest] }
    }
    return { actions: [], book: i.book, observed: asTheyRun(i, i.containers, i.book) }
  }

  // Fencing: an assignment older than the newest applied for this slot is ignored.
  const prev = i.book?.applied ?? null
  let a: Assignment | null = i.assignment
  if (a !== null && prev !== null && olderThan(a, prev)) a = prev
  const mine = a !== null && a.host === i.host ? a : null

  const actions: AgentAction[] = []
  const observed: ObservedReplica[] = []
  const keepers = mine === null ? [] : i.containers.filter((c) => sameCopy(c, mine))
  const keep = best(keepers)

  // Stop and remove every copy no committed assignment claims (and duplicates of the kept one).
  for (const c of i.containers) {
    if (c === keep) continue
    const why = mine === null ? (a === null ? 'slot unassigned' : `slot moved to ${a.host}`) : keepers.includes(c) ? 'duplicate copy' : 'not the assigned generation or revision'
    if (isUp(c)) actions.push({ kind: 'stop', ...ident(c), graceMs: grace, reason: why })
    actions.push({ kind: 'remove', ...ident(c), reason: why })
    if (!keepers.includes(c)) observed.push(row(i, generationOf(c) ?? 0, 'orphaned', c, null))
  }

  if (mine === null) {
    const book = i.containers.length === 0 && a === null ? null : { ...(i.book ?? emptyBook()), applied: a }
    return { actions, book, observed }
  }

  // Bookkeeping for the assigned generation (a new generation starts a new record).
  const b: SlotBook = i.book !== null && i.book.generation === mine.generation ? { ...i.book, restartTimes: [...i.book.restartTimes] } : { ...emptyBook(), generation: mine.generation }
  b.applied = mine
  const out = (state: ReplicaState, c: ContainerInfo | undefined) => {
    observed.push(row(i, mine.generation, advance(b, state), c, b))
    return { actions, book: b, observed }
  }
  const policy = i.spec?.restart

  if (keep === undefined) {
    if (b.terminal !== null) return out(b.terminal, undefined)
    if (i.spec === null) return out('assigned', undefined)
    const identity: ReplicaIdentity = { cluster: i.cluster, service: i.service, slot: String(i.slot), revision: mine.revision, host: i.host, term: mine.term, index: mine.index }
    if (b.containerId !== null) b.restarts += 1 // the container vanished: recreating it counts as a restart
    b.containerId = null
    actions.push({ kind: 'create', service: i.service, slot: i.slot, generation: mine.generation, identity, image: i.spec.image })
    return out('preparing', undefined)
  }

  const adopted = b.containerId !== keep.id
  b.containerId = keep.id
  if (isUp(keep)) {
    if (adopted) actions.push({ kind: 'adopt', ...ident(keep) })
    if (keep.health === 'unhealthy') {
      // Unhealthy (the engine's check or the agent's probe) is a failure: stop it now; its exit then
      // goes through the restart policy below. Under `condition: none` it keeps running, reported unhealthy.
      if (policy !== undefined && policy.condition !== 'none') {
        b.unhealthyRun = runKey(keep)
        actions.push({ kind: 'stop', ...ident(keep), graceMs: grace, reason: `unhealthy; restart policy ${policy.condition}` })
      }
      return out('running', keep)
    }
    if (keep.startedAt !== null && i.now - keep.startedAt >= cfg.stableMs) {
      b.streak = 0
      b.streakSince = null
    }
    b.backoffUntil = null
    return out('running', keep)
  }
  if (keep.state === 'created') {
    actions.push({ kind: 'start', ...ident(keep), restart: false, reason: 'created' })
    return out('starting', keep)
  }

  // Exited (or dead): apply the restart policy once per exit, then restart after the backoff.
  const exitAt = keep.finishedAt ?? i.now
  const key = `${keep.id}:${keep.finishedAt ?? 'unknown'}`
  const unhealthy = b.unhealthyRun === runKey(keep)
  const code = keep.exitCode ?? 1
  const why = unhealthy ? 'stopped for being unhealthy' : `exited with code ${code}`
  // An exit is judged once, and only with the spec at hand: an exit seen while the spec is unknown
  // (a service removed and applied again) is judged when the spec returns.
  if (b.exitKey !== key && b.terminal === null && policy !== undefined) {
    b.exitKey = key
    b.lastExit = keep.exitCode
    if (b.streakSince === null) b.streakSince = exitAt
    const failed = unhealthy || code !== 0
    if (policy.condition === 'none' || (policy.condition === 'on-failure' && !failed)) {
      b.terminal = failed ? 'failed' : 'stopped'
      if (b.terminal === 'failed') b.failure = `${why}; restart condition none`
    } else {
      const attempts = policy.windowMs > 0 ? b.restartTimes.filter((t) => i.now - t < policy.windowMs).length : b.restarts
      if (policy.maxAttempts > 0 && attempts >= policy.maxAttempts) {
        b.terminal = 'failed'
        b.failure = `${why} after ${attempts} restarts (maxAttempts ${policy.maxAttempts})`
      } else {
        b.backoffUntil = exitAt + backoffMs(policy.delayMs, b.streak, cfg.maxBackoffMs)
      }
    }
  }
  if (b.terminal !== null) return out(b.terminal, keep)
  if (policy === undefined || b.backoffUntil === null) return out(b.state === 'assigned' ? 'starting' : b.state, keep)
  if (i.now < b.backoffUntil) return out(b.state === 'assigned' ? 'starting' : b.state, keep)

  b.restarts += 1
  b.streak += 1
  b.restartTimes.push(i.now)
  if (b.restartTimes.length > 64) b.restartTimes.shift()
  b.backoffUntil = null
  actions.push({ kind: 'start', ...ident(keep), restart: true, reason: `${unhealthy ? why : `exited with code ${keep.exitCode ?? 'unknown'}`}; restart ${b.restarts} (policy ${policy.condition})` })
  return out('running', keep)
}
