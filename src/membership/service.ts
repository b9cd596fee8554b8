/**
 * The membership shell: it wires the pure core (table.ts) to the transport, the clock and the
 * logger. It decodes and checks every message (messages.ts), turns time into tick() calls at the
 * core's next deadline, carries out the core's effects, and persists the incarnation and known
 * peers. Nothing thrown in a handler or timer escapes: it is caught and logged.
 */
import type { Clock } from '../core/clock.ts'
import { errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import { deadlineTimer } from '../core/deadline-timer.ts'
import { encode } from '../transport/codec.ts'
import { validatedTopic, type ShellCounters } from '../transport/topic.ts'
import type { PeerId, Transport } from '../transport/types.ts'
import { checkSender, decodeBroadcast, decodeDirect, MAX_BROADCAST_BYTES, MAX_DIRECT_BYTES } from './messages.ts'
import { createMembership, type Membership, type SelfChange } from './table.ts'
import {
  DEFAULT_MEMBERSHIP_CONFIG, MEMBERSHIP_PROTOCOL, MEMBERSHIP_TOPIC,
  type BroadcastMessage, type DirectMessage, type Effect, type Member, type MemberInfo, type MemberState, type MembershipConfig,
} from './types.ts'

/** What the service persists: the incarnation (restart with it + 1) and peers to rejoin through. */
export interface PersistedMembershipState {
  incarnation: number
  peers: { id: string; address: string }[]
}

/** Options of the service. `incarnation` is the persisted one + 1 (0 on first start). */
export interface MembershipServiceInit {
  self: MemberInfo
  incarnation: number
  config?: Partial<MembershipConfig>
  /** How long join() waits for a seed's push-pull answer (default 5 s). */
  joinTimeoutMs?: number
  /** How long leave() lets the `left` broadcast spread before probing stops (default 300 ms). */
  leaveGraceMs?: number
}

/** What the service needs. */
export interface MembershipServiceComponents {
  transport: Transport
  clock: Clock
  rng: Rng
  logger: Logger
  persist?: (s: PersistedMembershipState) => void
}

/** The outcome of join(): addresses whose peer answered with its state, and the failures. */
export interface JoinResult {
  joined: string[]
  failed: { address: string; error: string }[]
}

/** Counters for `status` and tests. */
export interface MembershipStats extends ShellCounters {
  members: Record<MemberState, number>
  incarnation: number
  awareness: number
}

/** A change listener: `previous` is undefined when the member first appears. */
export type ChangeListener = (member: Member, previous: MemberState | undefined) => void

/** The membership service. */
export interface MembershipService {
  start(): void
  stop(): Promise<void>
  /** Dial each address, exchange state with the peer found there; resolves when each answered or failed. */
  join(addresses: string[], opts?: { signal?: AbortSignal }): Promise<JoinResult>
  /** Broadcast `left`, let it spread briefly, then stop probing. */
  leave(): Promise<void>
  /** Change this peer's name, address or labels (bumps the incarnation and broadcasts). */
  updateSelf(change: SelfChange): void
  members(): Member[]
  member(id: PeerId): Member | undefined
  self(): Member
  on(event: 'change', listener: ChangeListener): void
  off(event: 'change', listener: ChangeListener): void
  stats(): MembershipStats
}

const PERSIST_DEBOUNCE_MS = 1_000
const PUSH_PULL_SEND_TIMEOUT_MS = 5_000
const PROBE_SEND_TIMEOUT_MS = 1_000

/** Create the membership service. Call start() once the transport is running. */
export function createMembershipService(init: MembershipServiceInit, components: MembershipServiceComponents): MembershipService {
  const { transport, clock, logger } = components
  const config: MembershipConfig = { ...DEFAULT_MEMBERSHIP_CONFIG, ...init.config }
  const log = logger.child({ component: 'membership' })
  const core: Membership = createMembership({ self: init.self, incarnation: init.incarnation, config, rng: components.rng, now: clock.now() })
  const selfId = init.self.id
  const listeners = new Set<ChangeListener>()
  const counters = { received: 0, broadcastsReceived: 0, invalid: 0, forged: 0, sent: 0, sendFailures: 0, published: 0 }
  const joinWaiters = new Map<PeerId, Set<(answered: boolean) => void>>()
  const maxWait = Math.max(5, Math.floor(config.probeIntervalMs / 2))
  let registered = false
  let running = false
  const timer = deadlineTimer(clock, () => onTimer())
  let persistTimer: NodeJS.Timeout | undefined
  let persistedInc = -1

  const safely = (what: string, fn: () => void): void => {
    try {
      fn()
    } catch (err) {
      log.error({ err: errorMessage(err) }, `membership ${what} failed`)
    }
  }

  const schedule = (): void => {
    if (!running) return
    const now = clock.now()
    timer.arm(Math.min(Math.max(core.nextDeadline(), now + 1), now + maxWait))
  }

  function onTimer(): void {
    if (!running) return
    safely('tick', () => run(core.tick(clock.now())))
    schedule()
  }

  const persistNow = (): void => {
    if (persistTimer !== undefined) clearTimeout(persistTimer)
    persistTimer = undefined
    if (components.persist === undefined) return
    const peers = core.members().filter((m) => m.id !== selfId && (m.state === 'alive' || m.state === 'suspect')).map((m) => ({ id: m.id, address: m.address }))
    persistedInc = core.incarnation()
    safely('persist', () => components.persist?.({ incarnation: persistedInc, peers }))
  }

  const persistSoon = (): void => {
    if (components.persist === undefined || persistTimer !== undefined) return
    persistTimer = setTimeout(() => safely('persist', persistNow), PERSIST_DEBOUNCE_MS)
    persistTimer.unref()
  }

  const sendFailed = (to: PeerId): void => {
    if (running) safely('sendFailed', () => run(core.sendFailed(to, clock.now())))
  }

  const send = (to: PeerId, address: string, msg: DirectMessage): void => {
    let data = encode(msg)
    if (data.byteLength > MAX_DIRECT_BYTES && msg.t === 'push-pull') {
      // Too many members for one message: send as many rows as fit (self first, live ones next).
      let rows = msg.members
      while (data.byteLength > MAX_DIRECT_BYTES && rows.length > 1) {
        rows = rows.slice(0, Math.max(1, Math.floor(rows.length * (MAX_DIRECT_BYTES / data.byteLength) * 0.9)))
        data = encode({ ...msg, members: rows })
      }
      log.warn({ to, rows: rows.length, of: msg.members.length }, 'push-pull trimmed to fit the message size limit')
    }
    if (data.byteLength > MAX_DIRECT_BYTES) {
      log.warn({ to, t: msg.t, bytes: data.byteLength }, 'membership message too large; not sent')
      return
    }
    const timeoutMs = msg.t === 'push-pull' ? PUSH_PULL_SEND_TIMEOUT_MS : PROBE_SEND_TIMEOUT_MS
    transport.send(to, MEMBERSHIP_PROTOCOL, data, { ...(address === '' ? {} : { address }), signal: AbortSignal.timeout(timeoutMs) }).then(
      () => { counters.sent++ },
      (err: unknown) => {
        counters.sendFailures++
        log.debug({ to, t: msg.t, err: errorMessage(err) }, 'membership send failed')
        sendFailed(to)
      },
    )
  }

  const publish = (msg: BroadcastMessage): void => {
    const data = encode(msg)
    if (data.byteLength > MAX_BROADCAST_BYTES && msg.updates.length > 1) {
      const half = Math.ceil(msg.updates.length / 2)
      publish({ ...msg, updates: msg.updates.slice(0, half) })
      publish({ ...msg, updates: msg.updates.slice(half) })
      return
    }
    counters.published++
    transport.publish(MEMBERSHIP_TOPIC, data).catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'membership publish failed'))
  }

  const changed = (m: Member, previous: MemberState | undefined): void => {
    if (m.id === selfId) {
      if (m.incarnation !== persistedInc) persistNow()
      if (m.state === 'left') log.info({ incarnation: m.incarnation }, 'this peer left the cluster')
      else log.info({ incarnation: m.incarnation }, `this peer now speaks with incarnation ${m.incarnation}`)
    } else if (previous === undefined) {
      log.info({ id: m.id, name: m.name, address: m.address, state: m.state }, `member ${m.name} (${m.id}) appeared as ${m.state}`)
    } else if (previous !== m.state) {
      log.info({ id: m.id, name: m.name, from: previous, state: m.state, incarnation: m.incarnation }, `member ${m.name} is now ${m.state}`)
    } else {
      log.debug({ id: m.id, name: m.name, incarnation: m.incarnation }, `member ${m.name} updated`)
    }
    if (m.id !== selfId) persistSoon()
    for (const fn of listeners) {
      try {
        fn(m, previous)
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'membership change listener threw')
      }
    }
  }

  function run(effects: Effect[]): void {
    for (const e of effects) {
      safely(e.type, () => {
        if (e.type === 'send') send(e.to, e.address, e.msg)
        else if (e.type === 'broadcast') publish(e.msg)
        else changed(e.member, e.previous)
      })
    }
    schedule()
  }

  const onDirect = (from: PeerId, data: Uint8Array): void => {
    if (!running) return
    const d = decodeDirect(data)
    if (!d.ok) {
      counters.invalid++
      log.debug({ from, reason: d.reason }, 'dropped an invalid membership message')
      return
    }
    const check = checkSender(from, d.value)
    if (!check.ok) {
      counters.forged++
      log.warn({ from, reason: check.reason }, 'dropped a forged membership message')
      return
    }
    counters.received++
    const msg = d.value
    run(core.receive(from, msg, clock.now()))
    if (msg.t === 'push-pull' && msg.reply) {
      const waiters = joinWaiters.get(from)
      joinWaiters.delete(from)
      for (const w of waiters ?? []) w(true)
    }
  }

  const onBroadcast = (from: PeerId, msg: BroadcastMessage): void => {
    if (!running || from === selfId) return
    counters.broadcastsReceived++
    run(core.receiveBroadcast(from, msg, clock.now()))
  }

  const waitForAnswer = (peer: PeerId, timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> =>
    new Promise((resolve) => {
      let done = false
      const finish = (ok: boolean): void => {
        if (done) return
        done = true
        clearTimeout(t)
        signal?.removeEventListener('abort', onAbort)
        joinWaiters.get(peer)?.delete(onAnswer)
        resolve(ok)
      }
      const onAnswer = (answered: boolean): void => finish(answered)
      const onAbort = (): void => finish(false)
      const t = setTimeout(() => finish(false), timeoutMs)
      t.unref()
      signal?.addEventListener('abort', onAbort, { once: true })
      let set = joinWaiters.get(peer)
      if (set === undefined) joinWaiters.set(peer, (set = new Set()))
      set.add(onAnswer)
    })

  const joinOne = async (address: string, signal: AbortSignal | undefined): Promise<string | undefined> => {
    const peer = await transport.dial(address, signal === undefined ? {} : { signal })
    if (peer === selfId) return 'that address is this peer itself'
    if (!running) return 'membership is not running'
    const answered = waitForAnswer(peer, init.joinTimeoutMs ?? 5_000, signal)
    safely('join', () => run(core.join(peer, address, clock.now())))
    return (await answered) ? undefined : `${peer} did not answer with its state in time`
  }

  return {
    start(): void {
      if (running) return
      running = true
      if (!registered) {
        registered = true
        transport.handle(MEMBERSHIP_PROTOCOL, (from, data) => safely('receive', () => onDirect(from, data)))
        transport.subscribe(
          MEMBERSHIP_TOPIC,
          validatedTopic({ what: 'membership broadcast', decode: decodeBroadcast, check: checkSender, counters, log, deliver: onBroadcast }),
        )
      }
      persistNow()
      log.info({ id: selfId, name: init.self.name, address: init.self.address, incarnation: core.incarnation() }, 'membership started')
      schedule()
    },

    async stop(): Promise<void> {
      if (!running) return
      running = false
      timer.cancel()
      if (persistTimer !== undefined) persistNow()
      for (const set of joinWaiters.values()) for (const w of [...set]) w(false)
      joinWaiters.clear()
    },

    async join(addresses: string[], opts: { signal?: AbortSignal } = {}): Promise<JoinResult> {
      const result: JoinResult = { joined: [], failed: [] }
      await Promise.all(addresses.map(async (address) => {
        try {
          const error = await joinOne(address, opts.signal)
          if (error === undefined) result.joined.push(address)
          else result.failed.push({ address, error })
        } catch (err) {
          result.failed.push({ address, error: errorMessage(err) })
        }
      }))
      return result
    },

    async leave(): Promise<void> {
      if (!running) return
      safely('leave', () => run(core.leave(clock.now())))
      persistNow()
      await new Promise<void>((resolve) => setTimeout(resolve, init.leaveGraceMs ?? 300))
    },

    updateSelf(change: SelfChange): void {
      safely('updateSelf', () => run(core.updateSelf(change, clock.now())))
    },

    members: () => core.members(),
    member: (id) => core.member(id),
    self: () => core.self(),
    on(_event: 'change', listener: ChangeListener): void {
      listeners.add(listener)
    },
    off(_event: 'change', listener: ChangeListener): void {
      listeners.delete(listener)
    },
    stats(): MembershipStats {
      const members: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 }
      for (const m of core.members()) members[m.state]++
      return { members, incarnation: core.incarnation(), awareness: core.awareness(), ...counters }
    },
  }
}
