// The agent shell: runs the level-triggered reconcile loop of step.ts against a ContainerRuntime,
// publishes this host's observed rows on OBSERVED_TOPIC and merges the other hosts'. It owns the
// timers and the I/O; every decision is step()'s. It never throws out of its loops: runtime errors
// are logged and retried on the next round. It also runs the http/tcp health probes (probes.ts) and
// reports image pulls. docs/agent.md describes it.
import type { Clock } from '../core/clock.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { ServiceSpec } from '../model/spec.ts'
import { containerSpecFor, hostSelector, LABELS } from '../runtime/labels.ts'
import { RUNTIME_ERROR_CODES, type ContainerInfo, type ContainerRuntime } from '../runtime/types.ts'
import { slotKey, type Assignment, type ObservedReplica } from '../scheduler/types.ts'
import { validatedTopic, type TopicCounters } from '../transport/topic.ts'
import type { Transport } from '../transport/types.ts'
import { allRows, checkSender, decodeObserved, encodeObserved, mergeObserved, nextVersion, OBSERVED_TOPIC, sortRows, type ObservedTable } from './observed.ts'
import { isProbeCheck } from './probe.ts'
import { createProber, type ProbeTarget } from './probes.ts'
import { createPuller } from './pulls.ts'
import { GENERATION_LABEL, generationOf, step, type AgentAction, type SlotBook, type StepConfig } from './step.ts'

/** Something the agent did or saw, for `skein events`. */
export interface AgentEvent {
  time: number
  kind:
    | 'placed' | 'adopted' | 'started' | 'restarted' | 'exited' | 'stopped' | 'removed' | 'failed' | 'engine-down' | 'engine-up'
    | 'healthy' | 'unhealthy' | 'pulling' | 'pulled' | 'pull-failed'
  service?: string
  slot?: number
  generation?: number
  containerId?: string
  /** Human-readable detail (for pulls: the image, duration and size). */
  reason?: string
  /** Pull events: the image. */
  image?: string
  /** `pulled` / `pull-failed`: how long the pull took. */
  durationMs?: number
  /** `pulled`: bytes downloaded, when the engine announced layer sizes. */
  bytes?: number
}

/** Configuration of the agent service. */
export interface AgentConfig {
  hostId: string
  clusterId: string
  /** Periodic reconcile (default 2 s). */
  reconcileIntervalMs?: number
  /** Anti-entropy republish of this host's rows (default 10 s). */
  publishIntervalMs?: number
  /** Delay of the republish after a peer connects (default 1 s). */
  connectPublishDelayMs?: number
  /** Delay before resubscribing to runtime events after the stream ends (default 1 s). */
  eventsRetryMs?: number
  /** Events kept in the ring buffer (default 1000). */
  eventCapacity?: number
  /** Slots whose actions run side by side (default 8). */
  parallelism?: number
  /** Health probes (http/tcp checks) in flight at most (default 16). */
  probeParallelism?: number
  step?: Partial<StepConfig>
}

/** What the agent service needs. */
export interface AgentDeps {
  runtime: ContainerRuntime
  clock: Clock
  logger: Logger
  transport: Transport
  /** The committed assignments (all hosts), or 'unknown' while this peer has no applied log state. */
  assignments: () => readonly Assignment[] | 'unknown'
  /**
   * While `assignments` is 'unknown': the assignments this peer applied before (from its own log on
   * disk), not known to be current. Only used to start again this host's own exited containers
   * after a reboot with no peer reachable (docs/agent.md, static stability).
   */
  lastKnown?: () => readonly Assignment[]
  /** The desired spec of a service by name. */
  services: (name: string) => ServiceSpec | undefined
  /** Called when the observed table may have changed (this host's rows or another host's); e.g. to poke the scheduler. */
  onObserved?: () => void
}

/** The running agent. */
export interface AgentService {
  /** Subscribes, starts the loops and runs a first round. */
  start(): void
  /** Assignments (or services) changed: reconcile soon. */
  notify(): void
  /** Runs one reconcile round now (waits for a round already running first). */
  reconcileNow(): Promise<void>
  /** Runs the health probes that are due now and waits for them (they also run on their own timer). */
  probeNow(): Promise<void>
  /** Observed replicas of every host (this one's and those received). */
  observed(): ObservedReplica[]
  /** The most recent events, oldest first. */
  events(): AgentEvent[]
  /** Calls `listener` for every new event (for `skein events -f`); returns the unsubscribe function. */
  onEvent(listener: (e: AgentEvent) => void): () => void
  /** Counters for status and tests. */
  stats(): { rounds: number; actionErrors: number; engineUp: boolean; published: number } & TopicCounters
  stop(): Promise<void>
}


/** Creates the agent service (call start()). */
export function createAgentService(cfg: AgentConfig, deps: AgentDeps): AgentService {
  const { runtime, clock, transport } = deps
  const log = deps.logger.child({ component: 'agent' })
  const host = cfg.hostId
  const books = new Map<string, SlotBook>()
  const events: AgentEvent[] = []
  const cap = cfg.eventCapacity ?? 1000
  const counters: TopicCounters = { invalid: 0, forged: 0 }
  let table: ObservedTable = new Map()
  let mine: ObservedReplica[] = []
  let version = 0
  let published = 0
  let connectTimer: NodeJS.Timeout | undefined
  let rounds = 0
  let actionErrors = 0
  let engineUp = true
  let stopped = false
  let current: Promise<void> | null = null
  let again = false
  const timers: ReturnType<typeof setInterval>[] = []
  const abort = new AbortController()

  const listeners = new Set<(e: AgentEvent) => void>()
  const record = (e: Omit<AgentEvent, 'time'>) => {
    const ev: AgentEvent = { time: clock.now(), ...e }
    events.push(ev)
    if (events.length > cap) events.splice(0, events.length - cap)
    for (const l of listeners) {
      try {
        l(ev)
      } catch (err) {
        log.debug({ err: errorMessage(err) }, 'event listener failed')
      }
    }
  }

  const prober = createProber({ clock, logger: log, maxInFlight: cfg.probeParallelism, onChange: () => notify() })
  /** Health last reported per running container, for the healthy/unhealthy events. */
  const healthSeen = new Map<string, ContainerInfo['health']>()

  /** Probes the running containers whose service has an http/tcp check; their health is the probe's. */
  const withProbes = (containers: ContainerInfo[]): ContainerInfo[] => {
    const targets: ProbeTarget[] = []
    for (const c of containers) {
      const spec = c.state === 'running' ? deps.services(c.labels[LABELS.service] ?? '') : undefined
      if (spec === undefined || !isProbeCheck(spec.healthcheck)) continue
      targets.push({ id: c.id, startedAt: c.startedAt ?? 0, address: spec.network === 'host' ? '127.0.0.1' : c.ip, check: spec.healthcheck })
    }
    prober.sync(targets)
    return containers.map((c) => {
      const v = prober.view(c.id)
      return v === undefined ? c : { ...c, health: v.health }
    })
  }

  /** Records `healthy`/`unhealthy` when a running container's health changes to it (either kind of check). */
  const healthEvents = (containers: readonly ContainerInfo[]) => {
    const live = new Set<string>()
    for (const c of containers) {
      if (c.state !== 'running') continue
      live.add(c.id)
      if (healthSeen.get(c.id) === c.health) continue
      healthSeen.set(c.id, c.health)
      if (c.health !== 'healthy' && c.health !== 'unhealthy') continue
      const where = { service: c.labels[LABELS.service], slot: Number(c.labels[LABELS.slot]), generation: generationOf(c) ?? undefined, containerId: c.id }
      const probe = prober.view(c.id)
      const reason = probe === undefined ? 'engine healthcheck' : (probe.reason ?? 'probe succeeded')
      record({ kind: c.health, ...where, reason })
      if (c.health === 'unhealthy') log.warn({ ...where, reason }, 'container is unhealthy')
    }
    for (const id of [...healthSeen.keys()]) if (!live.has(id)) healthSeen.delete(id)
  }

  const ensureImage = createPuller({ runtime, clock, log, record, signal: abort.signal, stopped: () => stopped })

  const setEngine = (up: boolean, err?: unknown) => {
    if (up === engineUp) return
    engineUp = up
    if (up) log.info('container engine is reachable again')
    else log.warn({ err: errorMessage(err) }, 'container engine unavailable; retrying')
    record({ kind: up ? 'engine-up' : 'engine-down', reason: up ? undefined : errorMessage(err) })
  }
  const isEngineDown = (err: unknown) => err instanceof SkeinError && err.code === RUNTIME_ERROR_CODES.engineUnavailable

  const execute = async (a: AgentAction, book: SlotBook | null): Promise<void> => {
    const signal = abort.signal
    const where = { service: a.service, slot: a.slot, generation: a.generation }
    switch (a.kind) {
      case 'adopt':
        record({ kind: 'adopted', ...where, containerId: a.id })
        log.info({ ...where, id: a.id }, 'adopted a running container')
        return
      case 'create': {
        const spec = deps.services(a.service)
        if (spec === undefined) return
        record({ kind: 'placed', ...where })
        try {
          await ensureImage(a.image, where)
        } catch (err) {
          if (err instanceof SkeinError && err.code === RUNTIME_ERROR_CODES.imageUnavailable && book !== null) {
            book.terminal = 'failed'
            book.failure = err.message
            record({ kind: 'failed', ...where, reason: err.message })
          }
          throw err
        }
        const cs = containerSpecFor(spec, a.identity)
        cs.labels[GENERATION_LABEL] = String(a.generation)
        const id = await runtime.create(cs, { signal })
        // The slot's record knows its container from now on: the next round must not "adopt" it.
        if (book !== null && book.generation === a.generation) book.containerId = id
        await runtime.start(id, { signal })
        record({ kind: 'started', ...where, containerId: id })
        return
      }
      case 'start':
        await runtime.start(a.id, { signal })
        record({ kind: a.restart ? 'restarted' : 'started', ...where, containerId: a.id, reason: a.reason })
        if (a.restart) log.info({ ...where, id: a.id, reason: a.reason }, 'restarted a container')
        return
      case 'stop':
        await runtime.stop(a.id, { signal, graceMs: a.graceMs })
        record({ kind: 'stopped', ...where, containerId: a.id, reason: a.reason })
        return
      case 'remove':
        await runtime.remove(a.id, { signal })
        record({ kind: 'removed', ...where, containerId: a.id, reason: a.reason })
        log.info({ ...where, id: a.id, reason: a.reason }, 'removed a container')
        return
    }
  }

  /** One round; true when it changed something (so a follow-up round reports the result at once). */
  const round = async (): Promise<boolean> => {
    rounds++
    let containers: ContainerInfo[]
    try {
      containers = withProbes(await runtime.list({ labels: hostSelector(cfg.clusterId, host), signal: abort.signal }))
      setEngine(true)
    } catch (err) {
      if (isEngineDown(err)) setEngine(false, err)
      else log.warn({ err: errorMessage(err) }, 'listing containers failed')
      return false // keep the last observed rows: nothing is known to have changed
    }
    healthEvents(containers)
    const all = deps.assignments()
    const bySlot = new Map<string, Assignment>()
    if (all !== 'unknown') for (const a of all) bySlot.set(slotKey(a.service, a.slot), a)
    const stale = new Map<string, Assignment>()
    if (all === 'unknown') for (const a of deps.lastKnown?.() ?? []) if (a.host === host) stale.set(slotKey(a.service, a.slot), a)
    const grouped = new Map<string, ContainerInfo[]>()
    for (const c of containers) {
      const service = c.labels[LABELS.service], slot = c.labels[LABELS.slot]
      if (service === undefined || slot === undefined || !/^\d{1,9}$/.test(slot)) continue // not ours to judge
      const k = slotKey(service, Number(slot))
      grouped.set(k, [...(grouped.get(k) ?? []), c])
    }
    const keys = new Set<string>([...grouped.keys(), ...books.keys()])
    for (const [k, a] of bySlot) if (a.host === host) keys.add(k)

    const rows: ObservedReplica[] = []
    const now = clock.now()
    const work: (() => Promise<void>)[] = []
    let acted = false
    for (const k of [...keys].sort()) {
      const [service = '', slotText = '0'] = k.split('\u0000')
      const slot = Number(slotText)
      const before = books.get(k) ?? null
      const out = step({
        cluster: cfg.clusterId, host, service, slot, assignment: all === 'unknown' ? 'unknown' : (bySlot.get(k) ?? null), lastKnown: stale.get(k) ?? null,
        containers: grouped.get(k) ?? [], spec: deps.services(service) ?? null, book: before, now, config: cfg.step,
      })
      if (out.book === null) books.delete(k)
      else books.set(k, out.book)
      if (out.book !== null && before !== null && out.book.exitKey !== before.exitKey && out.book.exitKey !== null) {
        record({ kind: 'exited', service, slot, generation: out.book.generation, containerId: out.book.containerId ?? undefined, reason: `exit code ${out.book.lastExit ?? 'unknown'}` })
      }
      if (out.book !== null && out.book.terminal === 'failed' && before?.terminal !== 'failed') {
        record({ kind: 'failed', service, slot, generation: out.book.generation, reason: out.book.failure ?? 'failed' })
      }
      rows.push(...out.observed)
      if (out.actions.length === 0) continue
      // One slot's actions run in order; slots run side by side (a stop's grace blocks only its slot).
      work.push(async () => {
        for (const a of out.actions) {
          if (stopped) return
          try {
            await execute(a, out.book)
            if (a.kind !== 'adopt') acted = true
          } catch (err) {
            actionErrors++
            if (isEngineDown(err)) setEngine(false, err)
            else log.warn({ service, slot, action: a.kind, err: errorMessage(err) }, 'agent action failed; retrying next round')
            return // the rest of this slot's actions wait for the next round
          }
        }
      })
    }
    await runLimited(work, cfg.parallelism ?? 8)
    if (stopped) return false
    update(rows)
    return acted
  }

  /** Keeps a row's updatedAt when nothing else changed; publishes when anything did. */
  const update = (rows: ObservedReplica[]) => {
    const prev = new Map(mine.map((r) => [`${r.service}\u0000${r.slot}\u0000${r.generation}`, r]))
    const same = (a: ObservedReplica, b: ObservedReplica) => JSON.stringify({ ...a, updatedAt: 0 }) === JSON.stringify({ ...b, updatedAt: 0 })
    const next = sortRows(rows.map((r) => {
      const p = prev.get(`${r.service}\u0000${r.slot}\u0000${r.generation}`)
      return p !== undefined && same(p, r) ? p : r
    }))
    const changed = next.length !== mine.length || next.some((r, i) => r !== mine[i])
    mine = next
    if (changed || version === 0) publish()
  }

  const observedChanged = () => {
    try {
      deps.onObserved?.()
    } catch (err) {
      log.debug({ err: errorMessage(err) }, 'observed listener failed')
    }
  }

  const publish = () => {
    version = nextVersion(version, clock.now())
    table = mergeObserved(table, { host, version, rows: mine })
    published++
    observedChanged()
    transport.publish(OBSERVED_TOPIC, encodeObserved({ from: host, host, version, rows: mine })).catch((err: unknown) => {
      log.debug({ err: errorMessage(err) }, 'publishing observed rows failed')
    })
  }

  const reconcileNow = async (): Promise<void> => {
    if (stopped) return
    if (current !== null) {
      again = true // the running loop goes round once more, after what it is doing
      return current
    }
    current = (async () => {
      let followUps = 0
      do {
        again = false
        try {
          // A round that acted is followed at once by one that observes the result (at most twice in a row).
          if ((await round()) && followUps++ < 2) again = true
        } catch (err) {
          log.error({ err: errorMessage(err) }, 'reconcile round failed')
        }
      } while (again && !stopped)
    })().finally(() => { current = null })
    return current
  }
  const notify = () => { void reconcileNow() }

  const watchEvents = async () => {
    while (!stopped) {
      try {
        for await (const _ of runtime.events({ labels: hostSelector(cfg.clusterId, host), signal: abort.signal })) notify()
      } catch (err) {
        if (isEngineDown(err)) setEngine(false, err)
      }
      if (stopped) return
      await new Promise((r) => { const t = setTimeout(r, cfg.eventsRetryMs ?? 1000); abort.signal.addEventListener('abort', () => { clearTimeout(t); r(undefined) }, { once: true }) })
      notify()
    }
  }

  return {
    start() {
      transport.subscribe(OBSERVED_TOPIC, validatedTopic({
        what: 'observed-replicas message', decode: decodeObserved, check: checkSender, counters, log,
        deliver: (_from, msg) => {
          if (msg.host === host) return
          const before = table
          table = mergeObserved(table, msg)
          if (table !== before) observedChanged()
        },
      }))
      // A peer that (re)connects has none of our rows until the next anti-entropy round: publish
      // them soon after the connection (once gossipsub has exchanged subscriptions), debounced.
      transport.on('peer:connect', () => {
        if (stopped || connectTimer !== undefined) return
        connectTimer = setTimeout(() => {
          connectTimer = undefined
          if (!stopped && version > 0) publish()
        }, cfg.connectPublishDelayMs ?? 1000)
      })
      timers.push(setInterval(notify, cfg.reconcileIntervalMs ?? 2000))
      timers.push(setInterval(() => { if (version > 0) publish() }, cfg.publishIntervalMs ?? 10_000))
      void watchEvents()
      notify()
    },
    notify,
    reconcileNow,
    probeNow: () => prober.runDue(),
    observed: () => allRows(table),
    events: () => [...events],
    onEvent(listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    stats: () => ({ rounds, actionErrors, engineUp, published, ...counters }),
    async stop() {
      stopped = true
      for (const t of timers) clearInterval(t)
      if (connectTimer !== undefined) clearTimeout(connectTimer)
      prober.stop()
      abort.abort()
      listeners.clear()
      await current?.catch(() => undefined)
    },
  }
}


/** Runs the tasks with at most `limit` at a time. */
async function runLimited(tasks: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]?.()
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), tasks.length) }, worker))
}
