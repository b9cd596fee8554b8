/**
 * The desired-state shell: it drives the pure replica (replica.ts) with timers at its next
 * deadline, the transport (direct anti-entropy on STATE_PROTOCOL, gossip on STATE_TOPIC) and the
 * SQLite storage (storage-sqlite.ts). Effects are carried out in order: the persistence effects
 * of each call in one fsynced transaction first, then listeners, then sends and publishes. So
 * nothing is acknowledged or sent before it is durable. Nothing thrown in a handler or timer
 * escapes; a failed write stops the service (`onFatal`): a peer that cannot persist must not
 * acknowledge or spread writes.
 */
import type { Clock } from '../core/clock.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import { deadlineTimer } from '../core/deadline-timer.ts'
import type { Member } from '../membership/types.ts'
import { encode } from '../transport/codec.ts'
import { validatedTopic, type ShellCounters } from '../transport/topic.ts'
import type { PeerId, Transport } from '../transport/types.ts'
import { checkBroadcast, decodeBroadcast, decodeDirect, MAX_BROADCAST_BYTES, MAX_DIRECT_BYTES } from './messages.ts'
import { createStateReplica } from './replica.ts'
import { openSqliteStateStorage } from './storage-sqlite.ts'
import {
  resolveConfig, STATE_PROTOCOL, STATE_TOPIC,
  type BroadcastMessage, type DirectMessage, type Effect, type Entry, type ReplicaStats, type ReplicaStatus, type StateConfig, type StateReplica, type Write, type WriteResult,
} from './types.ts'
import type { Store } from '../storage/store.ts'

/** Options of the service. */
export interface StateServiceInit {
  selfId: PeerId
  /** This peer founds a new cluster (fresh data dir, no --join): a fresh replica starts `current`. */
  founder: boolean
  config?: Partial<StateConfig>
}

/** What the membership seam must offer: alive members, and change notifications. */
export interface StateMembership {
  members(): Member[]
  on(event: 'change', listener: (m: Member) => void): void
  off(event: 'change', listener: (m: Member) => void): void
}

/** What the service needs. */
export interface StateServiceComponents {
  transport: Transport
  store: Store
  clock: Clock
  rng: Rng
  logger: Logger
  membership: StateMembership
  /** Called once if a write to the store fails (the service has stopped). */
  onFatal?: (err: unknown) => void
}

/** A change of the winning entry of a key (after it is durable). `entry` undefined: the key is gone. */
export interface StateChange {
  key: string
  entry: Entry | undefined
  previous: Entry | undefined
}

/** Counters for `status` and tests. */
export interface StateServiceStats extends ReplicaStats, ShellCounters {
  tooLarge: number
}

/** The desired-state service. */
export interface StateService {
  start(): void
  stop(): Promise<void>
  /**
   * Write a batch atomically (all or nothing): resolves with each write's result once the batch is
   * durable in this peer's store; then it is gossiped. Rejects with SkeinError 'bad-request' for
   * an invalid key or value (nothing stored), 'state-stopped' when the service is not running.
   */
  apply(writes: readonly Write[]): Promise<WriteResult[]>
  get(key: string): Entry | undefined
  live(): Entry[]
  entries(): Entry[]
  history(key: string): Entry[]
  /** The root digest as hex: equal on two peers ⇔ identical stores. */
  rootHex(): string
  status(): ReplicaStatus
  stats(): StateServiceStats
  on(event: 'change', listener: (c: StateChange) => void): void
  off(event: 'change', listener: (c: StateChange) => void): void
}

/** Create the service: opens (and checks) the storage and restores the replica now, so a corrupt store fails early. */
export function createStateService(init: StateServiceInit, components: StateServiceComponents): StateService {
  const { transport, clock, membership } = components
  const log = components.logger.child({ component: 'state' })
  const config = resolveConfig(init.config)
  const storage = openSqliteStateStorage(components.store)
  const fresh = storage.isEmpty()
  const replica: StateReplica = createStateReplica({
    nodeId: init.selfId,
    rng: components.rng,
    now: clock.now(),
    config,
    ...(fresh ? { founder: init.founder } : { restore: storage.load() }),
  })
  const listeners = new Set<(c: StateChange) => void>()
  const counters = { received: 0, broadcastsReceived: 0, invalid: 0, forged: 0, sent: 0, sendFailures: 0, published: 0, tooLarge: 0 }
  let running = false
  let failed = false
  let registered = false
  const timer = deadlineTimer(clock, () => onTimer())
  let addresses = new Map<PeerId, string>()

  const fatal = (err: unknown): void => {
    if (failed) return
    failed = true
    log.error({ err: errorMessage(err) }, 'cannot persist the desired state: the state service stops on this peer')
    void stop()
    components.onFatal?.(err)
  }

  const notify = (c: StateChange): void => {
    for (const fn of listeners) {
      try {
        fn(c)
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'state change listener threw')
      }
    }
  }

  const send = (to: PeerId, msg: DirectMessage): void => {
    const data = encode(msg)
    if (data.byteLength > MAX_DIRECT_BYTES) {
      counters.tooLarge++
      log.warn({ to, t: msg.t, bytes: data.byteLength }, 'state message too large; not sent')
      return
    }
    const address = addresses.get(to)
    transport.send(to, STATE_PROTOCOL, data, { ...(address === undefined ? {} : { address }), signal: AbortSignal.timeout(5_000) }).then(
      () => void counters.sent++,
      (err: unknown) => {
        counters.sendFailures++
        log.trace({ to, t: msg.t, err: errorMessage(err) }, 'state send failed')
      },
    )
  }

  const publish = (msg: BroadcastMessage): void => {
    const data = encode(msg)
    if (data.byteLength > MAX_BROADCAST_BYTES) {
      counters.tooLarge++
      log.warn({ bytes: data.byteLength }, 'state gossip too large; not published (anti-entropy will carry it)')
      return
    }
    counters.published++
    transport.publish(STATE_TOPIC, data).catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'state publish failed'))
  }

  /**
   * Carry out effects in order: persist (one transaction; throws if it fails), then tell the
   * listeners, then the network.
   */
  const run = (effects: readonly Effect[]): void => {
    storage.persist(effects)
    for (const e of effects) {
      if (e.type === 'changed') notify({ key: e.key, entry: e.entry, previous: e.previous })
      else if (e.type === 'dropped') notify({ key: e.key, entry: undefined, previous: e.previous })
      else if (e.type === 'refused') log.trace({ from: e.from, key: e.key, reason: e.reason }, 'refused a remote entry')
    }
    for (const e of effects) {
      if (e.type === 'send') send(e.to, e.msg)
      else if (e.type === 'broadcast') publish(e.msg)
    }
  }

  /** run() for timers and handlers: a failed write is fatal, nothing escapes. */
  const runSafely = (what: string, fn: () => Effect[]): void => {
    if (!running || failed) return
    let effects: Effect[]
    try {
      effects = fn()
    } catch (err) {
      log.warn({ err: errorMessage(err) }, `state ${what} failed`)
      return
    }
    try {
      run(effects)
    } catch (err) {
      fatal(err)
      return
    }
    schedule()
  }

  function schedule(): void {
    if (!running || failed) return
    const now = clock.now()
    timer.arm(Math.min(Math.max(replica.nextDeadline(), now + 1), now + config.antiEntropyIntervalMs))
  }

  function onTimer(): void {
    runSafely('tick', () => replica.tick(clock.now()))
    schedule()
  }

  const updatePeers = (): void => {
    const alive = membership.members().filter((m) => m.id !== init.selfId && m.state === 'alive')
    addresses = new Map(alive.map((m) => [m.id, m.address]))
    replica.setPeers(alive.map((m) => m.id).sort())
  }
  const onMemberChange = (): void => {
    try {
      updatePeers()
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'state peer update failed')
    }
  }

  const onDirect = (from: PeerId, data: Uint8Array): void => {
    if (!running || failed) return
    const d = decodeDirect(data)
    if (!d.ok) {
      counters.invalid++
      log.debug({ from, reason: d.reason }, 'dropped an invalid state message')
      return
    }
    counters.received++
    runSafely('receive', () => replica.receive(from, d.value, clock.now()))
  }

  const onBroadcast = (from: PeerId, msg: BroadcastMessage): void => {
    if (!running || failed || from === init.selfId) return
    counters.broadcastsReceived++
    runSafely('broadcast', () => replica.receiveBroadcast(from, msg, clock.now()))
  }

  async function stop(): Promise<void> {
    if (!running) return
    running = false
    timer.cancel()
    membership.off('change', onMemberChange)
  }

  return {
    start(): void {
      if (running || failed) return
      running = true
      if (!registered) {
        registered = true
        transport.handle(STATE_PROTOCOL, (from, data) => {
          try {
            onDirect(from, data)
          } catch (err) {
            log.error({ err: errorMessage(err) }, 'state receive failed')
          }
        })
        transport.subscribe(
          STATE_TOPIC,
          validatedTopic({ what: 'state broadcast', decode: decodeBroadcast, check: checkBroadcast, counters, log, deliver: onBroadcast }),
        )
      }
      membership.on('change', onMemberChange)
      updatePeers()
      log.info({ status: replica.status(), services: replica.live().length, entries: replica.entries().length, fresh, founder: init.founder }, 'desired state started')
      // The first tick emits `meta`: persist it now.
      runSafely('tick', () => replica.tick(clock.now()))
      schedule()
    },
    stop,
    apply(writes: readonly Write[]): Promise<WriteResult[]> {
      if (!running || failed) return Promise.reject(new SkeinError('state-stopped', 'the desired-state service is not running on this peer'))
      let out: { results: WriteResult[]; effects: Effect[] }
      try {
        out = replica.apply(writes, clock.now())
      } catch (err) {
        if (err instanceof RangeError) return Promise.reject(new SkeinError('bad-request', `cannot write: ${err.message}`))
        return Promise.reject(err)
      }
      try {
        run(out.effects)
      } catch (err) {
        fatal(err)
        return Promise.reject(err instanceof SkeinError ? err : new SkeinError('state-store-failed', `the write was not stored: ${errorMessage(err)}`))
      }
      schedule()
      return Promise.resolve(out.results)
    },
    get: (key) => replica.get(key),
    live: () => replica.live(),
    entries: () => replica.entries(),
    history: (key) => replica.history(key),
    rootHex: () => Buffer.from(replica.root()).toString('hex'),
    status: () => replica.status(),
    stats: () => ({ ...replica.stats(), ...counters }),
    on(_event, fn): void {
      listeners.add(fn)
    },
    off(_event, fn): void {
      listeners.delete(fn)
    },
  }
}
