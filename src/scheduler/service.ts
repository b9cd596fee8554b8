/**
 * The scheduler shell (leader-only). A supervisor follows the consensus leadership events: when
 * this peer wins leadership it creates a leader session, and disposes it when leadership is lost.
 * The session runs reconcile rounds (debounced, on changes of desired state, membership, observed
 * state and committed assignments, and at least every `intervalMs`) and proposes ONE
 * `placements` command per round, waiting for it to be applied before the next round. A session
 * runs no round before this peer has applied everything up to its own term's first entry, so it
 * never decides from a table that misses a previous leader's committed decisions. The log entry's
 * term is the term the decision was made in (reconcile and propose run in one synchronous step
 * while this peer leads that term). Nothing thrown in a round or a timer escapes.
 */
import type { Clock } from '../core/clock.ts'
import { errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Member } from '../membership/types.ts'
import { decodeService, type ServiceSpec } from '../model/index.ts'
import type { Entry } from '../state/types.ts'
import type { ConsensusService } from '../consensus/service-types.ts'
import { encodeCommand, MAX_CHANGES } from '../consensus/commands.ts'
import { MAX_ENTRY_BYTES } from '../consensus/limits.ts'
import { toCommand } from './commit.ts'
import { reconcile } from './reconcile.ts'
import type { Capacity, NodeInfo, ObservedReplica, Pending, SchedulerCommand, SchedulerConfig, SchedulerInput } from './types.ts'

/** What the scheduler needs from its surroundings (the peer wiring passes these in). */
export interface SchedulerServiceComponents {
  consensus: Pick<ConsensusService, 'on' | 'off' | 'status' | 'proposeAndWait' | 'table'>
  /** The desired-state store: live entries hold canonical ServiceSpec bytes. */
  state: { live(): Entry[]; on(event: 'change', fn: () => void): void; off(event: 'change', fn: () => void): void }
  membership: { members(): Member[]; on(event: 'change', fn: () => void): void; off(event: 'change', fn: () => void): void }
  /** Observed replicas of every host (the agents' gossip); call `poke()` when it changes. */
  observed(): ObservedReplica[]
  /** Is the host drained (`skein drain`)? */
  drained(hostId: string): boolean
  /** Until when (epoch ms) a host announced a graceful restart (committed `restarting` entry), if it did. */
  restartingUntil?(hostId: string): number | undefined
  /** A host's capacity when known (default: unknown). */
  capacity?(hostId: string): Capacity
  clock: Clock
  logger: Logger
}

/** Options. */
export interface SchedulerServiceInit {
  /** Debounce of triggered rounds (default 50 ms). */
  debounceMs?: number
  /** A round at least this often while leading (default 1000 ms). */
  intervalMs?: number
  /** How long to wait for a proposed command to be applied (default 5000 ms). */
  commitTimeoutMs?: number
  config?: Partial<SchedulerConfig>
}

/** The latest round's explanation (for `skein ps` / `skein services`). Empty when not leading. */
export interface SchedulerExplain {
  leading: boolean
  /** Leader term of the round, or null. */
  term: number | null
  /** Time of the round, or null when no round ran yet. */
  at: number | null
  explain: Record<string, string>
  pending: Pending[]
}

/** Counters for status and tests. */
export interface SchedulerStats {
  sessions: number
  rounds: number
  proposed: number
  committed: number
  failed: number
  errors: number
}

/** The scheduler service. */
export interface SchedulerService {
  /** Follow leadership (and start a session at once if this peer already leads). */
  start(): void
  /** Stop following leadership; disposes the session. */
  stop(): void
  /** Ask for a round soon (e.g. when observed state changed). No-op when not leading. */
  poke(): void
  explain(): SchedulerExplain
  /** True while a leader session exists. */
  leading(): boolean
  stats(): SchedulerStats
}

interface Session {
  term: number
  dispose(): void
  poke(): void
  explain(): SchedulerExplain
}

/** Largest number of leading changes that fit in one entry (the rest goes in the next rounds). */
export function fitCommand(cmd: SchedulerCommand, maxBytes = MAX_ENTRY_BYTES - 1024): SchedulerCommand {
  let n = Math.min(cmd.changes.length, MAX_CHANGES)
  let out: SchedulerCommand = n === cmd.changes.length ? cmd : { kind: 'placements', changes: cmd.changes.slice(0, n) }
  while (n > 1 && encodeCommand(out).byteLength > maxBytes) {
    n = Math.ceil(n / 2)
    out = { kind: 'placements', changes: cmd.changes.slice(0, n) }
  }
  return out
}

/** Create the service (call `start()`). */
export function createSchedulerService(init: SchedulerServiceInit, c: SchedulerServiceComponents): SchedulerService {
  const log = c.logger.child({ component: 'scheduler' })
  const debounceMs = init.debounceMs ?? 50
  const intervalMs = init.intervalMs ?? 1000
  const commitTimeoutMs = init.commitTimeoutMs ?? 5000
  const counters: SchedulerStats = { sessions: 0, rounds: 0, proposed: 0, committed: 0, failed: 0, errors: 0 }
  const badSpecs = new Set<string>()
  let session: Session | undefined
  let running = false

  const services = (): { specs: ServiceSpec[]; revisions: Record<string, number> } => {
    const specs: ServiceSpec[] = []
    const revisions: Record<string, number> = {}
    for (const e of c.state.live()) {
      if (e.value === null) continue
      try {
        const spec = decodeService(e.value)
        specs.push(spec)
        revisions[spec.name] = e.revision
      } catch (err) {
        if (!badSpecs.has(e.key)) log.warn({ key: e.key, err: errorMessage(err) }, 'a stored service spec cannot be decoded; it is not scheduled')
        badSpecs.add(e.key)
      }
    }
    return { specs, revisions }
  }

  const nodes = (): NodeInfo[] =>
    c.membership.members().map((m) => {
      const until = c.restartingUntil?.(m.id)
      return {
        id: m.id,
        name: m.name,
        state: m.state,
        labels: m.labels,
        since: m.since,
        drained: c.drained(m.id),
        capacity: c.capacity?.(m.id) ?? { milliCpu: null, memoryBytes: null },
        ...(until === undefined ? {} : { restartingUntil: until }),
      }
    })

  const input = (): SchedulerInput => {
    const { specs, revisions } = services()
    return {
      services: specs,
      revisions,
      assignments: c.consensus.table().all(),
      observed: c.observed(),
      nodes: nodes(),
      now: c.clock.now(),
      ...(init.config === undefined ? {} : { config: init.config }),
    }
  }

  const createSession = (term: number): Session => {
    // This term's first entry (the leader's no-op) is at or before the last index now: once it
    // is applied, the table holds every decision committed by earlier leaders.
    const readyAt = c.consensus.status().lastIndex
    let disposed = false
    let timer: NodeJS.Timeout | undefined
    let due = 0
    let inFlight = false
    let dirty = false
    let last: SchedulerExplain = { leading: true, term, at: null, explain: {}, pending: [] }
    const leads = (): boolean => {
      const st = c.consensus.status()
      return st.role === 'leader' && st.term === term
    }

    const schedule = (delay: number): void => {
      if (disposed) return
      if (inFlight) {
        dirty = true
        return
      }
      // Keep a timer that fires soon enough: a stream of pokes must not starve the rounds.
      const at = performance.now() + delay
      if (timer !== undefined) {
        if (due <= at) return
        clearTimeout(timer)
      }
      due = at
      timer = setTimeout(round, delay)
    }

    const round = (): void => {
      timer = undefined
      if (disposed) return
      try {
        if (!leads()) return // the leader event that disposes this session follows
        if (c.consensus.status().appliedIndex < readyAt) {
          schedule(debounceMs)
          return
        }
        counters.rounds++
        const out = reconcile(input())
        last = { leading: true, term, at: c.clock.now(), explain: out.explain, pending: out.pending }
        const full = toCommand(out)
        if (full === null) {
          schedule(intervalMs)
          return
        }
        const cmd = fitCommand(full)
        inFlight = true
        counters.proposed++
        log.debug({ term, changes: cmd.changes.length, of: full.changes.length }, 'proposing placements')
        c.consensus.proposeAndWait(cmd, { timeoutMs: commitTimeoutMs }).then(
          (pos) => {
            counters.committed++
            log.debug({ term: pos.term, index: pos.index, changes: cmd.changes.length }, 'placements committed')
            settle(debounceMs)
          },
          (err: unknown) => {
            counters.failed++
            if (!disposed) log.info({ term, err: errorMessage(err) }, 'placements not committed; retrying in the next round')
            settle(intervalMs)
          },
        )
      } catch (err) {
        counters.errors++
        inFlight = false
        log.error({ err: errorMessage(err) }, 'scheduler round failed')
        schedule(intervalMs)
      }
    }

    const settle = (delay: number): void => {
      inFlight = false
      if (dirty) delay = Math.min(delay, debounceMs)
      dirty = false
      schedule(delay)
    }

    const poke = (): void => schedule(debounceMs)
    c.state.on('change', poke)
    c.membership.on('change', poke)
    c.consensus.on('committed', poke)
    schedule(0)
    return {
      term,
      poke,
      explain: () => ({ ...last, leading: !disposed }),
      dispose(): void {
        disposed = true
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        c.state.off('change', poke)
        c.membership.off('change', poke)
        c.consensus.off('committed', poke)
      },
    }
  }

  const follow = (e: { isLeader: boolean; term: number }): void => {
    try {
      if (session !== undefined && (!e.isLeader || e.term !== session.term)) {
        log.info({ term: session.term }, 'leadership lost: scheduler session ends')
        session.dispose()
        session = undefined
      }
      if (e.isLeader && session === undefined && running) {
        counters.sessions++
        session = createSession(e.term)
        log.info({ term: e.term }, 'leadership won: scheduler session starts')
      }
    } catch (err) {
      counters.errors++
      log.error({ err: errorMessage(err) }, 'scheduler leadership handling failed')
    }
  }

  return {
    start(): void {
      if (running) return
      running = true
      c.consensus.on('leader', follow)
      const st = c.consensus.status()
      follow({ isLeader: st.role === 'leader', term: st.term })
    },
    stop(): void {
      if (!running) return
      running = false
      c.consensus.off('leader', follow)
      session?.dispose()
      session = undefined
    },
    poke: () => session?.poke(),
    explain: () => session?.explain() ?? { leading: false, term: null, at: null, explain: {}, pending: [] },
    leading: () => session !== undefined,
    stats: () => ({ ...counters }),
  }
}
