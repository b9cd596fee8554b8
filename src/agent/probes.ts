// The shell around probe.ts: runs the agent's own HTTP and TCP health probes (node:http GET with the
// status in range, node:net connect) against the containers' addresses, each with its timeout, at
// most `maxInFlight` at a time. The agent tells it which containers to probe on every round
// (`sync`); a container that is no longer listed is forgotten and its probe in flight is aborted.
import { request } from 'node:http'
import { connect } from 'node:net'
import type { Clock } from '../core/clock.ts'
import { errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { beginProbe, initialProbe, isDue, recordProbe, type ProbeCheck, type ProbeHealth, type ProbeResult, type ProbeState } from './probe.ts'

/** One running container to probe. */
export interface ProbeTarget {
  /** Container id. */
  id: string
  /** Start of this run of the container: a new run starts a new probe state. */
  startedAt: number
  /** The address to probe; null when the container has none (the probe fails). */
  address: string | null
  check: ProbeCheck
}

/** What the agent reads back for a probed container. */
export interface ProbeView {
  health: ProbeHealth
  /** Why the last probe failed, or null. */
  reason: string | null
}

/** Options of the prober. */
export interface ProberOptions {
  clock: Clock
  logger: Logger
  /** Probes in flight at most (default 16); the others wait for a free place. */
  maxInFlight?: number
  /** Called when a container's probe health changes. */
  onChange?: (id: string, view: ProbeView) => void
}

/** The prober. */
export interface Prober {
  /** The containers to probe now; the others are forgotten (their probes in flight aborted). */
  sync(targets: readonly ProbeTarget[]): void
  /** The probe health of a container being probed, or undefined. */
  view(id: string): ProbeView | undefined
  /** Runs the probes that are due (up to the limit) and waits for them and every other probe in flight. */
  runDue(): Promise<void>
  /** Probes in flight now. */
  inFlight(): number
  /** Stops the timer and aborts every probe in flight. */
  stop(): void
}

interface Entry {
  target: ProbeTarget
  key: string
  state: ProbeState
  ctrl: AbortController | null
}

/** Poll the clock at least this often (it may be a manual one that timers do not follow). */
const MAX_SLEEP_MS = 1000

/** Creates a prober; it schedules itself until stop(). */
export function createProber(opts: ProberOptions): Prober {
  const { clock } = opts
  const log = opts.logger
  const max = Math.max(1, opts.maxInFlight ?? 16)
  const entries = new Map<string, Entry>()
  const running = new Set<Promise<void>>()
  let inFlight = 0
  let timer: ReturnType<typeof setTimeout> | null = null
  let stopped = false

  const forget = (e: Entry) => {
    e.ctrl?.abort()
    entries.delete(e.target.id)
  }

  const schedule = () => {
    if (timer !== null) clearTimeout(timer)
    timer = null
    if (stopped || inFlight >= max) return // a finishing probe schedules again
    let next = Infinity
    for (const e of entries.values()) if (e.state.inFlightSince === null) next = Math.min(next, e.state.nextAt)
    if (next === Infinity) return
    timer = setTimeout(() => { timer = null; void runDue() }, Math.min(MAX_SLEEP_MS, Math.max(0, next - clock.now())))
    timer.unref()
  }

  const launch = async (e: Entry): Promise<void> => {
    inFlight++
    const ctrl = new AbortController()
    e.ctrl = ctrl
    e.state = beginProbe(e.state, clock.now())
    let result: ProbeResult
    try {
      result = await probeOnce(e.target.check, e.target.address, ctrl.signal)
    } catch (err) {
      result = { kind: 'fail', reason: errorMessage(err) }
    } finally {
      inFlight--
    }
    if (ctrl.signal.aborted || entries.get(e.target.id) !== e) return // forgotten meanwhile
    e.ctrl = null
    const before = e.state.health
    e.state = recordProbe(e.state, e.target.check, result, clock.now())
    if (result.kind !== 'ok') log.debug({ id: e.target.id, reason: e.state.lastReason, failures: e.state.failures }, 'health probe failed')
    if (e.state.health !== before) {
      try {
        opts.onChange?.(e.target.id, { health: e.state.health, reason: e.state.lastReason })
      } catch (err) {
        log.debug({ err: errorMessage(err) }, 'probe listener failed')
      }
    }
  }

  const runDue = async (): Promise<void> => {
    if (stopped) return
    const now = clock.now()
    const due = [...entries.values()].filter((e) => isDue(e.state, now)).sort((a, b) => a.state.nextAt - b.state.nextAt)
    for (const e of due) {
      if (inFlight >= max) break
      const run = launch(e).finally(() => {
        running.delete(run)
        schedule()
      })
      running.add(run)
    }
    schedule()
    await Promise.all(running)
  }

  return {
    sync(targets) {
      const keep = new Set<string>()
      for (const t of targets) {
        keep.add(t.id)
        const key = JSON.stringify([t.startedAt, t.address, t.check])
        const e = entries.get(t.id)
        if (e !== undefined && e.key === key) continue
        if (e !== undefined) forget(e) // a new run, address or check: start over
        entries.set(t.id, { target: t, key, state: initialProbe(t.check, t.startedAt), ctrl: null })
      }
      for (const e of [...entries.values()]) if (!keep.has(e.target.id)) forget(e)
      schedule()
    },
    view(id) {
      const e = entries.get(id)
      return e === undefined ? undefined : { health: e.state.health, reason: e.state.lastReason }
    },
    runDue,
    inFlight: () => inFlight,
    stop() {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      timer = null
      for (const e of [...entries.values()]) forget(e)
    },
  }
}

const hostPort = (address: string, port: number) => `${address.includes(':') ? `[${address}]` : address}:${port}`

/**
 * One probe: an HTTP GET whose status must be in [statusMin, statusMax], or a TCP connect. Never
 * throws; a probe that takes longer than `timeoutMs` gives `timeout`.
 */
export function probeOnce(check: ProbeCheck, address: string | null, signal?: AbortSignal): Promise<ProbeResult> {
  if (address === null) return Promise.resolve({ kind: 'fail', reason: 'the container has no IP address to probe (network none, or not running)' })
  const where = check.kind === 'http' ? `GET http://${hostPort(address, check.port)}${check.path}` : `tcp ${hostPort(address, check.port)}`
  return new Promise<ProbeResult>((resolve) => {
    let done = false
    const cleanups: (() => void)[] = []
    const finish = (r: ProbeResult) => {
      if (done) return
      done = true
      for (const c of cleanups) c()
      resolve(r)
    }
    const fail = (err: unknown) => finish({ kind: 'fail', reason: `${where}: ${errorMessage(err)}` })
    const timer = setTimeout(() => finish({ kind: 'timeout' }), check.timeoutMs)
    cleanups.push(() => clearTimeout(timer))
    if (signal !== undefined) {
      if (signal.aborted) return finish({ kind: 'fail', reason: `${where}: aborted` })
      const onAbort = () => finish({ kind: 'fail', reason: `${where}: aborted` })
      signal.addEventListener('abort', onAbort, { once: true })
      cleanups.push(() => signal.removeEventListener('abort', onAbort))
    }
    if (check.kind === 'tcp') {
      const socket = connect({ host: address, port: check.port })
      cleanups.push(() => socket.destroy())
      socket.once('connect', () => finish({ kind: 'ok' }))
      socket.on('error', fail)
      return
    }
    const req = request({ host: address, port: check.port, path: check.path, method: 'GET', agent: false, headers: { 'user-agent': 'skein-probe', connection: 'close' } }, (res) => {
      const status = res.statusCode ?? 0
      res.destroy() // the status is all a probe reads
      finish(status >= check.statusMin && status <= check.statusMax ? { kind: 'ok' } : { kind: 'fail', reason: `${where}: status ${status}, expected ${check.statusMin}-${check.statusMax}` })
    })
    cleanups.push(() => req.destroy())
    req.on('error', fail)
    req.end()
  })
}
