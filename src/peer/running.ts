/**
 * The running flow of one peer (docs/agent.md, docs/replicas.md "How decisions flow"): the Docker
 * runtime, the agent (runs this host's share of the committed assignments) and the leader-only
 * scheduler, wired to consensus, desired state and membership; plus the views of `skein ps` and
 * the running/desired counts of `skein services`, and the peer-query protocol (query*.ts) that
 * gathers logs and events from every host, forwards drains and asks the leader's explanation.
 */
import type { ReplicaCounts, ReplicaView } from '../api/replicas.ts'
import type { DrainView, EventView, LogItemView, LogsOptions } from '../api/running.ts'
import { lastKnownGate } from '../agent/last-known.ts'
import type { Clock } from '../core/clock.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { createAgentService, type AgentService } from '../agent/service.ts'
import type { ConsensusService } from '../consensus/service-types.ts'
import type { Member } from '../membership/types.ts'
import { decodeService, type ServiceSpec } from '../model/index.ts'
import { createDockerRuntime } from '../runtime/docker.ts'
import type { ContainerRuntime } from '../runtime/types.ts'
import { createSchedulerService, type SchedulerService } from '../scheduler/service.ts'
import type { Assignment, ObservedReplica } from '../scheduler/types.ts'
import type { StateService } from '../state/service.ts'
import type { Transport } from '../transport/types.ts'
import { SeqRing, eventToWire, nextCounter, randomCounter, type Answer, type Query } from './query.ts'
import { clusterEvents, createExplainSource, drainViaLeader, explainToItems, followClusterEvents, type ClusterEventContext } from './query-cluster.ts'
import { createLogSessions, hostLogs } from './query-logs.ts'
import { clusterLogs } from './query-logs-gather.ts'
import { attachQueryShell, cryptoRandom, type QueryShell } from './query-shell.ts'
import { announceRestart, commitRestarting, createClusterEvents, proposeDrain } from './running-extras.ts'

/** What the running flow needs from the peer. */
export interface RunningComponents {
  selfId: string
  clusterId: string
  transport: Transport
  consensus: ConsensusService
  state: StateService
  membership: {
    members(): Member[]
    on(event: 'change', fn: () => void): void
    off(event: 'change', fn: () => void): void
  }
  /** A peer id's node name (the id itself if unknown). */
  nameOf(id: string): string
  clock: Clock
  logger: Logger
  /** The container runtime (default: Docker at DOCKER_HOST, else /var/run/docker.sock). */
  runtime?: ContainerRuntime
  /** Uniform in [0, 1): where follow-session numbers and request ids start (default: crypto). */
  random?: () => number
}

/** The agent and the scheduler of one peer. */
export interface Running {
  /** Start the agent, then the scheduler (after consensus and desired state are running). */
  start(): void
  /** End the follows (`endFollows`), stop the scheduler, then the agent. */
  stop(): Promise<void>
  /**
   * End every open follow (`logs -f`, `events -f`: their iterators return), so that the API server
   * can close without waiting for those streams; later follows end at once. Part of stop().
   */
  endFollows(): void
  /** `skein ps`: every replica of every service (or of one); call refreshExplain() first for the leader's explanation. */
  replicas(service?: string): ReplicaView[]
  /** `skein services`: running and desired replicas of a service. */
  counts(spec: ServiceSpec): ReplicaCounts
  /** On a follower, ask the leader for its explanation of pending replicas unless asked lately (short timeout). */
  refreshExplain(): Promise<void>
  /** `skein drain` / `undrain` (the flag is a committed log entry; a follower forwards it to the leader). */
  drain(host: string, drained: boolean): Promise<DrainView>
  /**
   * A graceful stop (not a leave): have the leader commit that this host is back within `graceMs`,
   * so that its replicas wait for it (bounded wait; no leader or no answer is logged, never thrown).
   */
  announceRestart(graceMs: number): Promise<void>
  /** `skein events`: this peer's events (its agent, the committed log, its membership view) and every live host's agent events, oldest first. */
  events(): Promise<EventView[]>
  /** This peer's own events as they happen. */
  onEvent(fn: (e: EventView) => void): () => void
  /** `skein events -f`: events(), then new ones from every live host, until `signal` aborts. */
  followEvents(signal: AbortSignal): AsyncIterable<EventView>
  /** `skein logs`: the service's replicas on every host that runs one. */
  logs(service: string, opts: LogsOptions): AsyncIterable<LogItemView>
  readonly agent: AgentService
  readonly scheduler: SchedulerService
  readonly queries: QueryShell
}

/**
 * Has this peer applied log state it may act on? Not before it knows how far the current leader's
 * log goes and has applied that far: a peer that restarts holds an older prefix of the log, and
 * acting on that stale table would start copies that moved away meanwhile. The leader's last
 * index is its own `lastIndex` on the leader, and on a follower the leader's match index for
 * itself (`consensus.voters()` asks the leader). Latched once true: losing the cluster later keeps
 * the last applied assignments (static stability). `onKnown` is called when it becomes true.
 */
export function appliedStateGate(consensus: Pick<ConsensusService, 'status' | 'voters'>, onKnown: () => void, everyMs = 250): { known(): boolean; stop(): void } {
  let known = false
  let target: { term: number; index: number } | undefined
  let asking = false
  let timer: NodeJS.Timeout | undefined
  const check = (): void => {
    if (known) return
    const st = consensus.status()
    if (st.leaderId === null) return
    if (st.role === 'leader' && target?.term !== st.term) target = { term: st.term, index: st.lastIndex }
    if (st.role !== 'leader' && target?.term !== st.term && !asking) {
      asking = true
      consensus.voters().then(
        (vs) => {
          const match = vs.find((v) => v.leader)?.match
          if (typeof match === 'number' && consensus.status().term === st.term) target = { term: st.term, index: match }
        },
        () => {},
      ).finally(() => {
        asking = false
      })
    }
    if (target !== undefined && target.term === st.term && st.appliedIndex > 0 && st.appliedIndex >= target.index) {
      known = true
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      onKnown()
    }
  }
  timer = setInterval(check, everyMs)
  return {
    known: () => {
      check()
      return known
    },
    stop: () => {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
    },
  }
}

/** Wire the runtime, the agent and the scheduler (call `start()`). */
export function createRunning(c: RunningComponents): Running {
  const log = c.logger.child({ component: 'running' })
  const runtime = c.runtime ?? createDockerRuntime({ logger: c.logger.child({ component: 'docker' }) })
  const useLastKnown = lastKnownGate(() => c.consensus.status().leaderId !== null, () => c.clock.now(), () => {
    log.warn('no leader reachable for 10 s: this host starts again its own exited containers of the assignments it applied before (nothing else changes until the cluster is back)')
  })
  // Aborted by stop(): ends the clearing of a restart announcement below.
  const life = new AbortController()
  const gate = appliedStateGate(c.consensus, () => {
    log.info('applied log state is current: the agent acts on the committed assignments')
    agent.notify()
    void clearRestartAnnouncement()
  })
  /**
   * Back from a graceful stop, and current: clear this host's announcement, so that a crash later
   * within the grace is handled as a crash. The leader clears it only once it sees this host alive
   * (until then, its scheduler would move what waits); asked again every second until the grace ends.
   */
  const clearRestartAnnouncement = async (): Promise<void> => {
    while (!life.signal.aborted) {
      const until = c.consensus.restarting().get(c.selfId)
      if (until === undefined || until <= c.clock.now()) return
      try {
        await announceRestart(c.consensus, queries.ask, c.selfId, 0, c.clock.now())
        log.info('back from a graceful stop: the restart announcement is cleared')
        return
      } catch (err) {
        log.debug({ err: errorMessage(err) }, 'the restart announcement is not cleared yet; retrying in 1 s')
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000)
        life.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
      })
    }
  }
  const specs = new Map<string, { value: Uint8Array; spec: ServiceSpec | undefined }>()
  const specOf = (name: string): ServiceSpec | undefined => {
    const e = c.state.get(name)
    if (e === undefined || e.value === null) return undefined
    const cached = specs.get(name)
    if (cached !== undefined && cached.value === e.value) return cached.spec
    let spec: ServiceSpec | undefined
    try {
      spec = decodeService(e.value)
    } catch (err) {
      log.warn({ service: name, err: errorMessage(err) }, 'a stored service spec cannot be decoded; it is not run')
    }
    specs.set(name, { value: e.value, spec })
    return spec
  }

  // The agent pokes the scheduler, which reads the agent's observed rows: created one after the other.
  const ref: { scheduler?: SchedulerService } = {}
  const agent = createAgentService(
    { hostId: c.selfId, clusterId: c.clusterId },
    {
      runtime,
      clock: c.clock,
      logger: c.logger,
      transport: c.transport,
      assignments: () => (gate.known() ? c.consensus.table().all() : 'unknown'),
      // Before that, and only with no leader for 10 s, the table this peer applied from its own log.
      lastKnown: () => (useLastKnown() ? c.consensus.table().all() : []),
      services: specOf,
      onObserved: () => ref.scheduler?.poke(),
    },
  )
  const sched = createSchedulerService(
    {},
    {
      consensus: c.consensus,
      state: c.state,
      membership: c.membership,
      observed: () => agent.observed(),
      drained: (hostId) => c.consensus.drained().has(hostId),
      restartingUntil: (hostId) => c.consensus.restarting().get(hostId),
      clock: c.clock,
      logger: c.logger,
    },
  )
  ref.scheduler = sched
  const notify = (): void => agent.notify()
  const feed = createClusterEvents(c.selfId, c.nameOf, () => c.clock.now())
  // This host's agent events, numbered, for the other peers' `skein events` (peer query `events`).
  const agentEvents = new SeqRing<EventView>(1000)
  const boot = c.clock.now()
  const offAgent = agent.onEvent((e) => agentEvents.push(feed.agent(e)))

  const members = (): Member[] => {
    const ms = c.membership.members()
    return ms.some((m) => m.id === c.selfId) ? ms : [...ms, { id: c.selfId, name: c.nameOf(c.selfId), state: 'alive', address: '', labels: {}, incarnation: 0, since: 0 }]
  }
  const memberOf = (id: string): Member | undefined => c.membership.members().find((m) => m.id === id)
  const local = (service: string, opts: LogsOptions): AsyncIterable<LogItemView> =>
    hostLogs({ selfId: c.selfId, runtime, observed: () => agent.observed(), nameOf: c.nameOf }, service, opts)
  const sessions = createLogSessions({ open: local, hostName: c.nameOf(c.selfId), now: () => c.clock.now() })

  /** The answers to other peers' questions. */
  const answer = async (from: string, q: Query): Promise<Answer> => {
    switch (q.k) {
      case 'drain': {
        const d = await proposeDrain(c.consensus, members(), q.host, q.drained)
        log.info({ host: d.name, drained: d.drained, by: c.nameOf(from) }, 'a drain forwarded by a peer is committed')
        return { k: 'drain', id: d.id, name: d.name, drained: d.drained, items: [] }
      }
      case 'restarting': {
        // A peer announces (or clears) only its own restart: `from` is the authenticated sender.
        // Cleared only once this leader sees it alive: before that its replicas would move.
        if (q.untilMs === 0 && from !== c.selfId && memberOf(from)?.state !== 'alive') {
          throw new SkeinError('not-alive-yet', `${c.nameOf(c.selfId)} does not see ${c.nameOf(from)} alive yet`)
        }
        await commitRestarting(c.consensus, from, q.untilMs, c.clock.now())
        if (q.untilMs > 0) log.info({ host: c.nameOf(from), until: new Date(q.untilMs).toISOString() }, 'a peer stopping gracefully announced its restart: its replicas wait for it')
        else log.info({ host: c.nameOf(from) }, 'a peer back from a graceful stop cleared its restart announcement')
        return { k: 'ok', items: [] }
      }
      case 'explain': {
        const ex = sched.explain()
        if (!ex.leading) throw new SkeinError('not-leader', `${c.nameOf(c.selfId)} is not the leader`, { hint: 'ask the leader (`skein status` names it)' })
        return { k: 'explain', term: ex.term ?? c.consensus.status().term, items: explainToItems(ex) }
      }
      case 'events': {
        const got = agentEvents.since(q.since)
        return { k: 'events', boot, next: got.next, items: got.items.map(eventToWire) }
      }
      case 'logs':
        return await sessions.answer(from, q)
      case 'cancel':
        sessions.cancel(from, q.session)
        return { k: 'ok', items: [] }
    }
  }
  const random = c.random ?? cryptoRandom
  const queries = attachQueryShell({
    selfId: c.selfId,
    transport: c.transport,
    logger: c.logger,
    addressOf: (id) => memberOf(id)?.address,
    nameOf: c.nameOf,
    handler: answer,
    random,
  })
  // Follow sessions are numbered from a random start: the peer id outlives this process, and a
  // restarted one must not poll the sessions its last run left on other hosts.
  let sessionIds = randomCounter(random)
  // Ended by stop(): every follow this flow serves ends with it.
  const follows = new AbortController()
  const withStop = (signal: AbortSignal | undefined): AbortSignal => (signal === undefined ? follows.signal : AbortSignal.any([signal, follows.signal]))
  const explain = createExplainSource({
    selfId: c.selfId,
    local: () => sched.explain(),
    leaderId: () => c.consensus.status().leaderId,
    ask: queries.ask,
    now: () => c.clock.now(),
    onError: (err) => log.debug({ err: errorMessage(err) }, 'the leader did not explain its pending replicas'),
  })
  const eventContext: ClusterEventContext = {
    local: () => feed.events(),
    onLocal: (fn) => feed.onEvent(fn),
    remoteHosts: () => c.membership.members().filter((m) => m.id !== c.selfId && (m.state === 'alive' || m.state === 'suspect')).map((m) => ({ id: m.id, name: m.name })),
    ask: queries.ask,
    now: () => c.clock.now(),
  }
  const onCommitted = (e: Parameters<typeof feed.committed>[0]): void => feed.committed(e)
  const onMembers = (): void => feed.members(c.membership.members())

  const observedIndex = (): Map<string, ObservedReplica> => {
    const m = new Map<string, ObservedReplica>()
    for (const r of agent.observed()) m.set(`${r.service}\u0000${r.slot}\u0000${r.host}\u0000${r.generation}`, r)
    return m
  }

  const replicaOf = (a: Assignment, seen: Map<string, ObservedReplica>): ReplicaView => {
    const o = seen.get(`${a.service}\u0000${a.slot}\u0000${a.host}\u0000${a.generation}`)
    return {
      service: a.service,
      slot: a.slot,
      host: c.nameOf(a.host),
      hostId: a.host,
      state: o?.state ?? 'assigned',
      health: o?.health ?? 'none',
      containerId: o?.containerId ?? null,
      startedAt: o?.startedAt == null ? null : new Date(o.startedAt).toISOString(),
      restarts: o?.restarts ?? 0,
      exitCode: o?.exitCode ?? null,
      generation: a.generation,
      explain: null,
    }
  }

  const pendingOf = (service: string, slot: number, explain: string | null, hostId: string | null): ReplicaView => ({
    service, slot, host: hostId === null ? null : c.nameOf(hostId), hostId, state: 'pending', health: 'none',
    containerId: null, startedAt: null, restarts: 0, exitCode: null, generation: null, explain,
  })

  const replicas = (only?: string): ReplicaView[] => {
    const seen = observedIndex()
    const table = c.consensus.table()
    const ex = explain.current()
    const out: ReplicaView[] = []
    const names = c.state.live().map((e) => e.key).filter((n) => only === undefined || n === only).sort()
    for (const name of names) {
      const spec = specOf(name)
      const assigned = table.all().filter((a) => a.service === name)
      const taken = new Set(assigned.map((a) => a.slot))
      for (const a of assigned) out.push(replicaOf(a, seen))
      const why = ex.known ? (ex.explain[name] ?? null) : null
      if (spec !== undefined && spec.mode === 'replicated') {
        for (let slot = 0; slot < (spec.replicas ?? 0); slot++) if (!taken.has(slot)) out.push(pendingOf(name, slot, why, null))
      } else if (ex.known) {
        for (const p of ex.pending) if (p.service === name && !taken.has(p.slot)) out.push(pendingOf(name, p.slot, why, p.host))
      }
    }
    return out.sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1))
  }

  const counts = (spec: ServiceSpec): ReplicaCounts => {
    const seen = observedIndex()
    const assigned = c.consensus.table().all().filter((a) => a.service === spec.name)
    const running = assigned.filter((a) => seen.get(`${a.service}\u0000${a.slot}\u0000${a.host}\u0000${a.generation}`)?.state === 'running').length
    const ex = explain.current()
    return { running, desired: spec.mode === 'replicated' ? (spec.replicas ?? 0) : assigned.length, explain: ex.known ? (ex.explain[spec.name] ?? null) : null }
  }

  return {
    agent,
    scheduler: sched,
    queries,
    start(): void {
      agent.start()
      c.consensus.on('committed', notify)
      c.consensus.on('leader', notify)
      c.state.on('change', notify)
      c.consensus.on('committed', onCommitted)
      feed.members(c.membership.members())
      c.membership.on('change', onMembers)
      sched.start()
    },
    endFollows: () => follows.abort(),
    async stop(): Promise<void> {
      follows.abort()
      life.abort()
      sched.stop()
      gate.stop()
      queries.stop()
      sessions.stop()
      c.consensus.off('committed', notify)
      c.consensus.off('leader', notify)
      c.state.off('change', notify)
      c.consensus.off('committed', onCommitted)
      c.membership.off('change', onMembers)
      offAgent()
      await agent.stop()
    },
    replicas,
    counts,
    refreshExplain: () => explain.refresh(),
    drain: (host, drained) =>
      proposeDrain(c.consensus, members(), host, drained, (_leader, m) =>
        drainViaLeader(queries.ask, () => c.consensus.status().leaderId, m, drained, { selfId: c.selfId, leaderName: c.nameOf })),
    async announceRestart(graceMs: number): Promise<void> {
      if (graceMs <= 0) return
      const untilMs = c.clock.now() + graceMs
      const t0 = performance.now()
      try {
        const r = await announceRestart(c.consensus, queries.ask, c.selfId, untilMs, c.clock.now())
        log.info({ until: new Date(untilMs).toISOString(), via: r.via === 'self' ? 'this peer (the leader)' : c.nameOf(r.leaderId), ms: Math.round(performance.now() - t0) }, 'restart announced: the replicas here wait for this host until then')
      } catch (err) {
        log.warn({ err: errorMessage(err), ms: Math.round(performance.now() - t0) }, 'could not announce the restart; stopping anyway (if this host stays away longer than failure detection, its replicas may be placed elsewhere)')
      }
    },
    events: () => clusterEvents(eventContext),
    onEvent: (fn) => feed.onEvent(fn),
    followEvents: (signal) => followClusterEvents(eventContext, withStop(signal)),
    logs: (service, opts) =>
      clusterLogs({
        selfId: c.selfId,
        nameOf: c.nameOf,
        assignments: () => c.consensus.table().all(),
        hostState: (id) => (id === c.selfId ? 'alive' : memberOf(id)?.state),
        local,
        ask: queries.ask,
        newSession: () => (sessionIds = nextCounter(sessionIds)),
      }, service, opts.follow === true ? { ...opts, signal: withStop(opts.signal) } : opts),
  }
}
