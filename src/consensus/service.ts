/**
 * The consensus shell: it drives the pure Raft core (raft.ts) with a timer, the transport and
 * the SQLite storage, applies the committed log to the state machine (commands.ts), and runs the
 * voter policy (voters.ts) while it leads. The Ready loop is synchronous: persist (one fsynced
 * transaction) → send → apply → advance, so nothing leaves before it is durable. Nothing thrown
 * in a handler or timer escapes; a failed write stops the service (`onFatal`), since a peer that
 * cannot persist must not vote or acknowledge.
 */
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Member } from '../membership/types.ts'
import { CONSENSUS_ADMIN_PROTOCOL } from './admin.ts'
import { createAdminShell } from './admin-shell.ts'
import { applyEntry, decodeAppState, emptyAppState, encodeAppState, encodeCommand, type AppState, type Command, type CommittedEntry, type LogPosition } from './commands.ts'
import { decodeRaftMessage, encodeRaftMessage, RAFT_PROTOCOL } from './messages.ts'
import { createRaft, type Raft } from './raft.ts'
import type { ConsensusEvents, ConsensusService, ConsensusServiceComponents, ConsensusServiceInit, ConsensusStats, LeaderEvent, Waiter } from './service-types.ts'
import { forcedRemovalEntries, highestConfIndex, voterInfos, type ConsensusStatus, type VoterInfo } from './status.ts'
import { bootstrap } from './storage.ts'
import { openSqliteRaftStorage } from './storage-sqlite.ts'
import { describeRaftTiming, resolveRaftTiming } from './timing.ts'
import type { ProposeResult, Ready } from './types.ts'
import { DEFAULT_VOTER_POLICY, nextVoterChange, type VoterPolicyConfig } from './voters.ts'

export type { ConsensusStatus, VoterInfo } from './status.ts'
export type * from './service-types.ts'

const REMOVAL_TTL_MS = 60_000
const MAX_READIES_PER_FLUSH = 8

/** Create the service: opens (and checks) the Raft storage now, so a corrupt store fails early. */
export function createConsensusService(init: ConsensusServiceInit, components: ConsensusServiceComponents): ConsensusService {
  const { transport, clock, membership } = components
  const log = components.logger.child({ component: 'consensus' })
  const selfId = init.selfId
  const timing = resolveRaftTiming(init.timing)
  const policy: VoterPolicyConfig = { ...DEFAULT_VOTER_POLICY, ...init.voters }
  const compactEvery = init.compactEvery ?? 1000
  const policyEvery = init.policyEveryTicks ?? 2
  const maxBytes = init.maxMessageBytes ?? 1024 * 1024
  const storage = openSqliteRaftStorage(components.store)
  if (init.bootstrap === true) {
    if (storage.lastIndex() === 0 && storage.hardState().term === 0) {
      storage.transaction(() => bootstrap(storage, [selfId]))
      log.info('bootstrapped a new cluster with this peer as its only voter')
    } else {
      log.warn('asked to bootstrap, but this peer already has Raft state: keeping it')
    }
  }
  const snap = storage.snapshot()
  const loaded = decodeAppState(snap.data, snap.index)
  if (!loaded.ok) {
    throw new SkeinError('raft-store-corrupt', `the Raft snapshot in ${components.store.path} cannot be read (${loaded.reason})`, { hint: 'restore the data dir from a backup, or move it aside and join this host afresh' })
  }
  let app: AppState = loaded.value
  app.fence.advance(storage.fence().term, storage.fence().index)
  let persistedFence = storage.fence()
  const makeRaft = (applied?: number): Raft =>
    createRaft({ id: selfId, storage, rng: components.rng, electionTicks: timing.electionTicks, heartbeatTicks: timing.heartbeatTicks, ...(applied === undefined ? {} : { applied }) })
  let raft = makeRaft()
  let lastConfIndex = highestConfIndex(storage, storage.lastIndex() + 1)
  let snapIndex = snap.index
  let soft = { leader: null as string | null, role: raft.status().role, term: raft.status().term }
  const removals = new Map<string, number>()
  const waiters = new Map<number, Waiter>()
  const listeners = { leader: new Set<(e: LeaderEvent) => void>(), committed: new Set<(e: CommittedEntry) => void>() }
  const counters: ConsensusStats = { received: 0, invalid: 0, forged: 0, sent: 0, sendFailures: 0, tooLarge: 0, readies: 0, snapshotsTaken: 0 }
  let running = false
  let failed = false
  let registered = false
  let ticker: NodeJS.Timeout | undefined
  let flushTimer: NodeJS.Immediate | undefined
  let ticks = 0
  let lastPolicyLog = ''
  let snapshotTooLargeLogged = false
  let addressCache = new Map<string, Member>()
  let addressCacheAt = -Infinity

  const members = (): Map<string, Member> => {
    const now = clock.now()
    if (now - addressCacheAt > timing.tickMs) {
      addressCache = new Map(membership.members().map((m) => [m.id, m]))
      addressCacheAt = now
    }
    return addressCache
  }
  const nameOf = (id: string | null): string | null => (id === null ? null : id === selfId ? membership.self().name : (members().get(id)?.name ?? id))
  const confPending = (): boolean => lastConfIndex > raft.status().commit

  const emit = <K extends keyof ConsensusEvents>(event: K, value: ConsensusEvents[K]): void => {
    for (const fn of listeners[event] as Set<(e: ConsensusEvents[K]) => void>) {
      try {
        fn(value)
      } catch (err) {
        log.error({ err: errorMessage(err), event }, 'consensus listener threw')
      }
    }
  }

  const fatal = (err: unknown): void => {
    if (failed) return
    failed = true
    log.error({ err: errorMessage(err) }, 'cannot persist Raft state: consensus stops on this peer')
    void stop()
    components.onFatal?.(err)
  }

  const send = (rd: Ready): void => {
    for (const m of rd.messages) {
      const bytes = encodeRaftMessage(m)
      if (bytes.byteLength > maxBytes) {
        counters.tooLarge++
        log.warn({ to: m.to, type: m.type, bytes: bytes.byteLength, limit: maxBytes }, 'Raft message larger than the transport allows; not sent')
        continue
      }
      const address = members().get(m.to)?.address
      transport.send(m.to, RAFT_PROTOCOL, bytes, { ...(address === undefined ? {} : { address }), signal: AbortSignal.timeout(Math.max(1000, timing.tickMs * timing.electionTicks)) }).then(
        () => void counters.sent++,
        (err: unknown) => {
          counters.sendFailures++
          log.trace({ to: m.to, type: m.type, err: errorMessage(err) }, 'Raft send failed')
        },
      )
    }
  }

  const apply = (rd: Ready): void => {
    for (const e of rd.committed) {
      const c = applyEntry(app, e)
      if (c.kind === 'invalid') log.warn({ index: e.index, term: e.term, reason: c.reason }, 'skipped an undecodable log entry')
      const w = waiters.get(e.index)
      if (w !== undefined) {
        waiters.delete(e.index)
        clearTimeout(w.timer)
        if (w.term === e.term) w.resolve({ term: e.term, index: e.index })
        else w.reject(new SkeinError('proposal-lost', `the proposal at index ${e.index} was replaced by an entry of term ${e.term} (leadership changed)`, { hint: 'retry' }))
      }
      emit('committed', c)
    }
  }

  const handle = (rd: Ready): void => {
    const mark = app.fence.mark()
    const fence = mark.term !== persistedFence.term || mark.index !== persistedFence.index ? mark : undefined
    storage.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, fence })
    if (fence !== undefined) persistedFence = fence
    if (rd.snapshot !== undefined) {
      const d = decodeAppState(rd.snapshot.data, rd.snapshot.index)
      if (!d.ok) log.error({ index: rd.snapshot.index, reason: d.reason }, 'the leader sent a snapshot this peer cannot read: starting from an empty state')
      app = d.ok ? d.value : { ...emptyAppState(), fence: app.fence, applied: rd.snapshot.index }
      snapIndex = rd.snapshot.index
      lastConfIndex = Math.max(rd.snapshot.index, highestConfIndex(storage, storage.lastIndex() + 1))
      log.info({ index: rd.snapshot.index, term: rd.snapshot.term }, 'installed a snapshot from the leader')
    }
    const first = rd.entries[0]
    if (first !== undefined) {
      if (first.index <= lastConfIndex) lastConfIndex = highestConfIndex(storage, first.index)
      for (const e of rd.entries) if (e.type === 'conf') lastConfIndex = Math.max(lastConfIndex, e.index)
    }
    send(rd)
    apply(rd)
    raft.advance(rd)
    counters.readies++
    if (rd.softState !== undefined || (rd.hardState !== undefined && rd.hardState.term !== soft.term)) {
      const next = { leader: rd.softState?.leader ?? soft.leader, role: rd.softState?.role ?? soft.role, term: rd.hardState?.term ?? soft.term }
      const changed = next.leader !== soft.leader || next.role !== soft.role
      soft = next
      if (changed) {
        log.info({ leader: next.leader, leaderName: nameOf(next.leader), term: next.term, role: next.role }, next.leader === null ? `no leader (term ${next.term}, ${next.role})` : `leader is ${nameOf(next.leader)} (term ${next.term}); this peer is ${next.role}`)
        emit('leader', { leaderId: next.leader, leader: nameOf(next.leader), term: next.term, role: next.role, isLeader: next.role === 'leader' })
      }
    }
  }

  const compact = (): void => {
    if (app.applied - snapIndex < compactEvery) return
    const data = encodeAppState(app)
    if (data.byteLength > maxBytes - 64 * 1024) {
      if (!snapshotTooLargeLogged) log.warn({ bytes: data.byteLength, limit: maxBytes }, 'the state is too large for a snapshot message: the log is not compacted')
      snapshotTooLargeLogged = true
      return
    }
    const r = raft.compact(app.applied, data)
    if (r.ok) {
      snapIndex = app.applied
      counters.snapshotsTaken++
      log.debug({ index: snapIndex, bytes: data.byteLength }, 'compacted the Raft log')
    }
  }

  function flush(): void {
    flushTimer = undefined
    if (!running || failed) return
    try {
      for (let i = 0; i < MAX_READIES_PER_FLUSH && raft.hasReady(); i++) handle(raft.ready())
      compact()
    } catch (err) {
      fatal(err)
      return
    }
    if (raft.hasReady()) scheduleFlush()
  }

  function scheduleFlush(): void {
    if (flushTimer === undefined && running) flushTimer = setImmediate(flush)
  }

  const runPolicy = (): void => {
    const st = raft.status()
    if (st.role !== 'leader' || st.progress === undefined) return
    const now = clock.now()
    for (const [id, until] of removals) if (until < now) removals.delete(id)
    const action = nextVoterChange(
      {
        self: selfId,
        voters: st.voters,
        learners: st.learners,
        progress: st.progress,
        lastIndex: st.lastIndex,
        pending: confPending(),
        transferring: st.transferringTo !== undefined,
        members: [...members().values()].map((m) => ({ id: m.id, state: m.state, since: m.since })),
        removals: [...removals.keys()],
        now,
      },
      policy,
    )
    if (action === undefined) return
    const target = action.type === 'transfer' ? action.to : action.id
    const what = `${action.type} ${nameOf(target)} (${action.reason})`
    let outcome: string
    if (action.type === 'transfer') {
      const r = raft.transferLeadership(action.to)
      outcome = r.ok ? 'started' : r.reason
    } else {
      const r = raft.proposeConfChange({ type: action.type === 'demote' ? 'add-learner' : action.type, id: action.id })
      if (r.ok) lastConfIndex = Math.max(lastConfIndex, r.index)
      outcome = r.ok ? `proposed at index ${r.index}` : r.reason
    }
    if (`${what} ${outcome}` !== lastPolicyLog) log.info({ action: action.type, id: target, outcome }, `voter change: ${what}: ${outcome}`)
    lastPolicyLog = `${what} ${outcome}`
    scheduleFlush()
  }

  const onTick = (): void => {
    if (!running || failed) return
    try {
      raft.tick()
      if (++ticks % policyEvery === 0) runPolicy()
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'consensus tick failed')
    }
    scheduleFlush()
  }

  const onMessage = (from: string, data: Uint8Array): void => {
    if (!running || failed) return
    const d = decodeRaftMessage(data)
    if (!d.ok) {
      counters.invalid++
      log.debug({ from, reason: d.reason }, 'dropped an invalid Raft message')
      return
    }
    if (d.value.from !== from || d.value.to !== selfId) {
      counters.forged++
      log.debug({ from, claimed: d.value.from, to: d.value.to }, 'dropped a Raft message not from its sender or not for this peer')
      return
    }
    counters.received++
    try {
      raft.step(d.value)
    } catch (err) {
      counters.invalid++
      log.warn({ from, type: d.value.type, err: errorMessage(err) }, 'the Raft core refused a message')
    }
    scheduleFlush()
  }

  const admin = createAdminShell({
    selfId,
    transport,
    log,
    addressOf: (id) => members().get(id)?.address,
    status: () => raft.status(),
    confPending,
    requestRemoval: (id) => void removals.set(id, clock.now() + REMOVAL_TTL_MS),
    running: () => running && !failed,
    now: () => clock.now(),
    nameOf: (id) => nameOf(id) ?? id,
    forceRemove: (id) => forceRemove(id),
  })

  /** The unsafe local removal (no leader): see docs/consensus.md, "Manual recovery". */
  const forceRemove = (id: string): void => {
    for (let i = 0; i < 1000 && raft.hasReady() && !failed; i++) flush()
    if (failed) throw new SkeinError('consensus-failed', 'consensus has stopped on this peer (a write failed)')
    const st = raft.status()
    const entries = forcedRemovalEntries({ self: selfId, voters: st.voters, learners: st.learners, id, term: storage.hardState().term + 1, lastIndex: storage.lastIndex() })
    const last = entries[entries.length - 1]
    if (last === undefined) return
    storage.persist({ entries, hardState: { term: last.term, vote: null, commit: storage.hardState().commit } })
    lastConfIndex = last.index
    raft = makeRaft(app.applied)
    log.warn({ id, name: nameOf(id), index: last.index, term: last.term }, 'FORCED removal without a leader: this peer rewrote its own configuration')
    scheduleFlush()
  }

  async function stop(): Promise<void> {
    if (!running) return
    running = false
    if (ticker !== undefined) clearInterval(ticker)
    if (flushTimer !== undefined) clearImmediate(flushTimer)
    ticker = undefined
    flushTimer = undefined
    admin.stop()
    for (const [index, w] of waiters) {
      clearTimeout(w.timer)
      w.reject(new SkeinError('consensus-stopped', `consensus stopped before index ${index} was applied`))
    }
    waiters.clear()
    const mark = app.fence.mark()
    if (!failed && (mark.term !== persistedFence.term || mark.index !== persistedFence.index)) {
      try {
        storage.persist({ entries: [], fence: mark })
        persistedFence = mark
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'could not save the fence mark')
      }
    }
  }

  const propose = (cmd: Command): ProposeResult => {
    if (!running) return { ok: false, reason: 'not-leader' }
    const r = raft.propose(encodeCommand(cmd))
    if (r.ok) scheduleFlush()
    return r
  }

  const status = (): ConsensusStatus => {
    const st = raft.status()
    return {
      id: selfId,
      term: st.term,
      role: st.role,
      leaderId: st.leader,
      leader: nameOf(st.leader),
      commitIndex: st.commit,
      appliedIndex: st.applied,
      firstIndex: st.firstIndex,
      lastIndex: st.lastIndex,
      voters: voterInfos(st, undefined, selfId, members(), membership.self()),
    }
  }

  return {
    timing,
    start(): void {
      if (running || failed) return
      running = true
      if (!registered) {
        registered = true
        transport.handle(RAFT_PROTOCOL, (from, data) => onMessage(from, data))
        transport.handle(CONSENSUS_ADMIN_PROTOCOL, (from, data) => admin.receive(from, data))
      }
      ticker = setInterval(onTick, timing.tickMs)
      const st = raft.status()
      log.info({ term: st.term, commit: st.commit, lastIndex: st.lastIndex, voters: st.voters.length, learners: st.learners.length, timing: describeRaftTiming(timing), maxVoters: policy.maxVoters }, 'consensus started')
      scheduleFlush()
    },
    stop,
    status,
    async voters(): Promise<VoterInfo[]> {
      const st = raft.status()
      const remote = st.role === 'leader' ? undefined : await admin.progress(1_000)
      return voterInfos(raft.status(), remote, selfId, members(), membership.self())
    },
    propose,
    proposeAndWait(cmd: Command, opts: { timeoutMs?: number } = {}): Promise<LogPosition> {
      const r = propose(cmd)
      if (!r.ok) {
        const leader = r.leader === undefined ? undefined : nameOf(r.leader)
        return Promise.reject(new SkeinError(r.reason, `cannot propose: ${r.reason}`, leader === undefined || leader === null ? {} : { hint: `the leader is ${leader}` }))
      }
      return new Promise<LogPosition>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (waiters.get(r.index) === waiter) waiters.delete(r.index)
          reject(new SkeinError('proposal-timeout', `index ${r.index} was not applied within ${opts.timeoutMs ?? 5000} ms`))
        }, opts.timeoutMs ?? 5000)
        const waiter: Waiter = { term: r.term, resolve, reject, timer }
        // An older proposal at this index (from an earlier term of this peer's leadership) was lost.
        const old = waiters.get(r.index)
        if (old !== undefined) {
          clearTimeout(old.timer)
          old.reject(new SkeinError('proposal-lost', `the proposal at index ${r.index} was replaced (leadership changed)`, { hint: 'retry' }))
        }
        waiters.set(r.index, waiter)
      })
    },
    removeVoter: (id, opts = {}) => admin.removeVoter(id, opts),
    leave: (opts = {}) => admin.leave(opts),
    fence: (term, index) => app.fence.check(term, index),
    assignments: () => app.assignments,
    table: () => app.table,
    drained: () => app.drained,
    restarting: () => app.restarting,
    on(event, fn): void {
      ;(listeners[event] as Set<typeof fn>).add(fn)
    },
    off(event, fn): void {
      ;(listeners[event] as Set<typeof fn>).delete(fn)
    },
    stats: () => ({ ...counters, invalid: counters.invalid + admin.counters.invalid, forged: counters.forged + admin.counters.forged }),
  }
}
