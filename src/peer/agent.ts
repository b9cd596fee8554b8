import type { LevelWithSilent } from 'pino'
import { createApiClient } from '../api/client.ts'
import { createApiServer } from '../api/server.ts'
import type { PeerApi, RemoveVoterView, TransportStatsView } from '../api/types.ts'
import { createConsensusService, type ConsensusService } from '../consensus/service.ts'
import { openSqliteRaftStorage } from '../consensus/storage-sqlite.ts'
import { resolveRaftTiming } from '../consensus/timing.ts'
import { systemClock, type Clock } from '../core/clock.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import { createLogger, type Logger } from '../core/logger.ts'
import { systemRng, type Rng } from '../core/rng.ts'
import { VERSION } from '../core/version.ts'
import { createMembershipService } from '../membership/service.ts'
import type { Member, MemberInfo } from '../membership/types.ts'
import { createStateService, type StateService } from '../state/service.ts'
import { openSqliteStateStorage } from '../state/storage-sqlite.ts'
import { createFilteredTransport, type FilteredTransport } from '../transport/filter.ts'
import { createLibp2pTransport } from '../transport/libp2p.ts'
import { generateClusterKey, generateIdentity, peerIdOfIdentity } from '../transport/libp2p-keys.ts'
import type { Transport } from '../transport/types.ts'
import { chooseAdvertise, joinLoop, listenError } from './agent-support.ts'
import { DEFAULT_API, DEFAULT_LISTEN, initOrLoad, readApiInfo, removeApiInfo, saveMembership, writeApiInfo, type KeyFunctions, type PersistedMembership, type RaftTimingSettings } from './datadir.ts'
import { debugPropose } from './debug.ts'
import { createDesiredStateApi } from './desired.ts'
import { createRunning } from './running.ts'
import { DEFAULT_RESTART_GRACE_MS } from './running-extras.ts'
import { buildStatus, toNodeViews } from './views.ts'

/** The agent's flags, as parsed by `skein agent`. Undefined means "not given": the data dir's value or the default applies. */
export interface AgentOptions {
  dataDir: string
  listen?: string
  advertise?: string
  api?: string
  join?: string[]
  token?: string
  name?: string
  labels?: Record<string, string>
  logLevel?: LevelWithSilent
  /** Most Raft voters (an odd number from 1 to 9; default 5; remembered). */
  voters?: number
  /** Raft timing flags (remembered). */
  raftTiming?: RaftTimingSettings
  /** How long this host's replicas wait for it after a graceful stop (ms; 0: not announced; default 30 s; remembered). */
  restartGraceMs?: number
  /** Serve POST /v1/debug/propose (benchmarks). */
  debugApi?: boolean
}

/** The default of `--voters`. */
export const DEFAULT_MAX_VOTERS = 5

/** Overrides for tests and embedding. Everything has a production default. */
export interface AgentDeps {
  logger?: Logger
  keys?: KeyFunctions
  createTransport?: (init: { identity: Uint8Array; clusterKey: Uint8Array; listen: string; advertise?: string; logger: Logger }) => Promise<Transport>
  clock?: Clock
  rng?: Rng
  /** Install SIGINT/SIGTERM handlers (default true). */
  handleSignals?: boolean
  /** Stop (gracefully, without leaving) when this aborts. */
  signal?: AbortSignal
  /** Called once everything has started. */
  onReady?: (info: { peerId: string; address: string; apiAddress: string; joinToken: string }) => void
}

interface Step {
  name: string
  stop: () => Promise<void> | void
}

/**
 * The composition root: run one peer until it is told to stop (SIGINT/SIGTERM or `signal`: a
 * graceful stop, the peer stays a member and others will see it dead; it first has the leader
 * commit a `restarting` entry, so that its replicas wait `--restart-grace` for it) or to leave
 * (POST /v1/leave: broadcast "left", then stop; no announcement). Resolves when everything has
 * stopped.
 *
 * Start order: data dir + store (+ Raft and desired-state checks) → transport (wrapped in the
 * debug traffic filter with --debug-api) → membership → desired state → consensus → agent +
 * scheduler (src/peer/running.ts; Docker at DOCKER_HOST) → API → api.json → (re)join in the
 * background. Stop order is the reverse (the scheduler stops before consensus).
 */
export async function runAgent(options: AgentOptions, deps: AgentDeps = {}): Promise<void> {
  const startedAt = Date.now()
  const dir = options.dataDir
  const clock = deps.clock ?? systemClock
  const logger = deps.logger ?? createLogger({ level: options.logLevel ?? 'info' })
  await refuseIfRunning(dir)
  // Nothing is logged before the data dir checks: a refused start prints only its error.
  const data = await initOrLoad(dir, options, { keys: deps.keys ?? { generateIdentity, peerIdOfIdentity, generateClusterKey }, logger })
  const steps: Step[] = [{ name: 'store', stop: () => data.store.close() }]
  let maxVoters: number
  let timing
  try {
    // Refuse damaged Raft state, and bad remembered flags, before anything starts or logs.
    openSqliteRaftStorage(data.store)
    openSqliteStateStorage(data.store).load()
    timing = resolveRaftTiming(data.settings.raftTiming)
    maxVoters = checkVoters(data.settings.voters ?? DEFAULT_MAX_VOTERS)
  } catch (err) {
    data.store.close()
    throw err
  }
  let fatalError: unknown
  const stopCtl = new AbortController()
  let stopReason = 'signal' as 'signal' | 'leave' | 'error'
  const requestStop = (reason: 'signal' | 'leave'): void => {
    if (stopCtl.signal.aborted) return
    stopReason = reason
    stopCtl.abort()
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopCtl.signal.aborted) {
      logger.warn({ signal: sig }, 'second signal: exiting now')
      process.exit(130)
    }
    logger.info({ signal: sig }, 'stopping (the peer stays a member; `skein leave` leaves the cluster)')
    requestStop('signal')
  }
  const handleSignals = deps.handleSignals ?? true
  if (handleSignals) {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }
  const onAbort = (): void => requestStop('signal')
  deps.signal?.addEventListener('abort', onAbort, { once: true })

  try {
    logger.info({ dataDir: dir, peerId: data.peerId, cluster: data.clusterId, version: VERSION }, data.createdCluster ? 'created a new cluster' : 'starting')
    const listen = data.settings.listen ?? DEFAULT_LISTEN
    const createTransport = deps.createTransport ?? createLibp2pTransport
    let transport: Transport
    let filter: FilteredTransport | undefined
    try {
      transport = await createTransport({
        identity: data.identity,
        clusterKey: data.clusterKey,
        listen,
        ...(data.settings.advertise === undefined ? {} : { advertise: data.settings.advertise }),
        logger,
      })
    } catch (err) {
      throw listenError('peer', listen, err)
    }
    steps.push({ name: 'transport', stop: () => transport.stop() })
    if (options.debugApi === true) transport = filter = createFilteredTransport(transport)
    if (transport.selfId !== data.peerId) logger.warn({ transport: transport.selfId, dataDir: data.peerId }, 'the transport reports another peer id than the data dir')
    const address = data.settings.advertise ?? chooseAdvertise(listen, transport.listenAddresses())

    const self: MemberInfo = { id: transport.selfId, name: data.settings.name, address, labels: data.settings.labels }
    let lastSaved = ''
    const persist = (s: PersistedMembership): void => {
      const text = JSON.stringify(s)
      if (text === lastSaved) return
      try {
        saveMembership(data.store, s)
        lastSaved = text
      } catch (err) {
        logger.error({ err: errorMessage(err) }, 'could not save membership state')
      }
    }
    const membership = createMembershipService(
      { self, incarnation: data.incarnation },
      { transport, clock, rng: deps.rng ?? systemRng(), logger, persist },
    )
    await membership.start()
    steps.push({ name: 'membership', stop: () => membership.stop() })

    const onFatal = (err: unknown): void => {
      fatalError ??= err
      requestStop('signal')
    }
    const state: StateService = createStateService(
      { selfId: self.id, founder: data.createdCluster },
      { transport, store: data.store, clock, rng: deps.rng ?? systemRng(), logger, membership, onFatal },
    )
    state.start()
    steps.push({ name: 'state', stop: () => state.stop() })
    const nameOfPeer = (id: string): string => (id === self.id ? membership.self().name : (membership.member(id)?.name ?? id))

    const consensus: ConsensusService = createConsensusService(
      { selfId: self.id, bootstrap: data.createdCluster, timing, voters: { maxVoters } },
      {
        transport,
        store: data.store,
        clock,
        rng: deps.rng ?? systemRng(),
        logger,
        membership,
        onFatal,
      },
    )
    consensus.start()
    steps.push({ name: 'consensus', stop: () => consensus.stop() })

    // The agent runs this host's share of the committed assignments; the scheduler runs while this
    // peer leads. A Docker engine that is down is logged and retried: the peer stays up.
    const running = createRunning({ selfId: self.id, clusterId: data.clusterId, transport, consensus, state, membership, nameOf: nameOfPeer, clock, logger })
    running.start()
    steps.push({ name: 'agent+scheduler', stop: () => running.stop() })

    const desired = createDesiredStateApi(state, nameOfPeer, logger, running.counts)
    let leaving: Promise<{ left: true; id: string; name: string }> | undefined
    const allMembers = (): Member[] => {
      const ms = membership.members()
      return ms.some((m) => m.id === self.id) ? ms : [membership.self(), ...ms]
    }
    const peer: PeerApi = {
      status: () => {
        const c = consensus.status()
        const view = { leader: c.leader, leaderId: c.leaderId, term: c.term, role: c.role, commitIndex: c.commitIndex, appliedIndex: c.appliedIndex }
        return buildStatus({ self: membership.self(), members: allMembers(), clusterId: data.clusterId, startedAt, now: Date.now(), version: VERSION, pid: process.pid, transport: transportView(transport), consensus: view, state: { status: state.status(), services: state.live().length, entries: state.entries().length, digest: state.rootHex() } })
      },
      nodes: () => toNodeViews(allMembers(), self.id, consensus.drained()),
      leave: () => {
        leaving ??= (async () => {
          logger.info('leaving the cluster')
          await consensus.leave({ timeoutMs: 10_000 })
          await membership.leave()
          // Stop after this answer is sent: the API server lets in-flight requests finish.
          setImmediate(() => requestStop('leave'))
          return { left: true as const, id: self.id, name: self.name }
        })()
        return leaving
      },
      voters: () => consensus.voters(),
      removeVoter: async (nameOrId, opts): Promise<RemoveVoterView> => {
        const known = consensus.status().voters
        const matches = known.filter((v) => v.id === nameOrId || v.name === nameOrId)
        const target = matches[0]
        if (target === undefined) throw new SkeinError('not-a-voter', `no voter or learner is named ${nameOrId}`, { hint: '`skein voters` lists them' })
        if (matches.length > 1) throw new SkeinError('ambiguous', `several voters or learners are named ${nameOrId}`, { hint: 'pass the peer id instead (`skein voters --wide`)' })
        const r = await consensus.removeVoter(target.id, { force: opts.force })
        return { removed: true, id: r.id, name: target.name, forced: r.forced }
      },
      ...desired,
      // A follower shows the leader's explanation of pending replicas: asked first (short timeout, cached).
      services: async () => {
        await running.refreshExplain()
        return desired.services()
      },
      replicas: async (service) => {
        await running.refreshExplain()
        return running.replicas(service)
      },
      drain: (host, drained) => running.drain(host, drained),
      events: () => running.events(),
      onEvent: (fn) => running.onEvent(fn),
      followEvents: (signal) => running.followEvents(signal),
      logs: (service, opts) => running.logs(service, opts),
      ...(options.debugApi === true ? { debugPropose: (count: number, window: number) => debugPropose(consensus, self.id, count, window) } : {}),
      ...(filter === undefined ? {} : debugFilterApi(filter, logger)),
    }
    const api = await createApiServer({ listen: data.settings.api ?? DEFAULT_API, token: data.apiToken, peer, logger })
    steps.push({ name: 'api', stop: () => api.close() })
    // Stopped in reverse: open `logs -f` / `events -f` streams end first, so the API closes at once.
    steps.push({ name: 'follows', stop: () => running.endFollows() })
    writeApiInfo(dir, { address: api.address, pid: process.pid, startedAt: new Date(startedAt).toISOString(), version: VERSION })
    steps.push({ name: 'api.json', stop: () => removeApiInfo(dir, process.pid) })

    logger.info({ node: self.name, address, api: api.address, incarnation: data.incarnation, startupMs: Date.now() - startedAt }, 'agent running')
    const joinCommand = `skein agent --join ${address} --token ${data.joinToken}`
    logger.info({ join: joinCommand }, `to add a host to this cluster, run there: ${joinCommand}`)
    deps.onReady?.({ peerId: self.id, address, apiAddress: api.address, joinToken: data.joinToken })

    const seeds = [...new Set([...(options.join ?? []), ...data.peers.map((p) => p.address)])].filter((a) => a !== address)
    const joining = joinLoop({ membership, addresses: seeds, selfId: self.id, logger, signal: stopCtl.signal })
    steps.push({ name: 'join', stop: () => joining })

    if (!stopCtl.signal.aborted) await new Promise<void>((resolve) => stopCtl.signal.addEventListener('abort', () => resolve(), { once: true }))
    if (fatalError !== undefined) throw fatalError
    // A graceful stop is not a leave: the containers keep running and this host should be back
    // soon. Announced while everything still runs (a leader waits for the commit before it stops).
    if (stopReason === 'signal') await running.announceRestart(data.settings.restartGraceMs ?? DEFAULT_RESTART_GRACE_MS)
  } catch (err) {
    stopReason = 'error'
    throw err
  } finally {
    if (handleSignals) {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    deps.signal?.removeEventListener('abort', onAbort)
    stopCtl.abort()
    await stopAll(steps, logger)
    if (stopReason === 'error') logger.debug('start failed; what had started is stopped')
    else logger.info({ reason: stopReason }, stopReason === 'leave' ? 'left the cluster; agent stopped' : 'agent stopped')
    await new Promise<void>((resolve) => {
      try {
        logger.flush(() => resolve())
      } catch {
        resolve()
      }
    })
  }
}

/** `--voters`: an odd number from 1 to 9. */
export function checkVoters(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 9 || n % 2 === 0) {
    throw new SkeinError('bad-flag', `--voters must be an odd number from 1 to 9, got ${n}`, { hint: 'an even number of voters survives no more failures than one fewer' })
  }
  return n
}

/** POST /v1/debug/block and /unblock over the traffic filter (--debug-api only). */
function debugFilterApi(filter: FilteredTransport, logger: Logger): Pick<PeerApi, 'debugBlock' | 'debugUnblock'> {
  return {
    debugBlock: (peers) => {
      filter.block(peers)
      logger.warn({ blocked: filter.blocked() }, 'debug: dropping all traffic with these peers')
      return { blocked: filter.blocked() }
    },
    debugUnblock: (peers) => {
      filter.unblock(peers)
      logger.warn({ blocked: filter.blocked() }, 'debug: traffic filter changed')
      return { blocked: filter.blocked() }
    },
  }
}

function transportView(t: Transport): TransportStatsView {
  const s = t.stats()
  return { bytesIn: s.bytesIn, bytesOut: s.bytesOut, messagesIn: s.messagesIn, messagesOut: s.messagesOut, rejected: s.rejected, connectedPeers: t.connectedPeers().length }
}

/** Stop the started steps in reverse order; one stuck or failing step does not keep the others running. */
async function stopAll(steps: Step[], logger: Logger): Promise<void> {
  for (const step of steps.reverse()) {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        Promise.resolve().then(step.stop),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out after 5s')), 5000)
        }),
      ])
    } catch (err) {
      logger.warn({ step: step.name, err: errorMessage(err) }, 'stop step failed')
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Refuse to start if another live agent already serves this data dir. */
async function refuseIfRunning(dir: string): Promise<void> {
  let info
  try {
    info = readApiInfo(dir)
  } catch {
    return
  }
  // Even with our own pid (a container's pid 1 after a restart), only a live answer counts.
  if (info === undefined || !pidAlive(info.pid)) return
  try {
    await createApiClient({ address: info.address, timeoutMs: 1000 }).health()
  } catch {
    return
  }
  throw new SkeinError('already-running', `another skein agent (pid ${info.pid}) is running with data dir ${dir}, API at ${info.address}`, {
    hint: 'stop it first, or pass another --data-dir',
  })
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return typeof err === 'object' && err !== null && 'code' in err && err.code === 'EPERM'
  }
}
