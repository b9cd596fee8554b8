/**
 * `skein logs` on this host (docs/cli.md): the output of a service's replicas here (`hostLogs`) and
 * the follow sessions other peers poll for it (`createLogSessions`, the answering side of the
 * peer-query `logs` question). query-logs-gather.ts asks every host. Every buffer, session and
 * wait is bounded.
 */
import type { LogItemView, LogsOptions } from '../api/running.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { ContainerRuntime } from '../runtime/types.ts'
import type { ObservedReplica } from '../scheduler/types.ts'
import { BoundedQueue, MAX_LOG_ANSWER_BYTES, SeqRing, logNote, logToWire, logWireBytes, type Answer, type LogWire, type Query } from './query.ts'

type LogsQuery = Extract<Query, { k: 'logs' }>
type LogsAnswer = Extract<Answer, { k: 'logs' }>

/** Sleep `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve()
    const done = (): void => {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const t = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** A bounded queue an async generator drains: producers push, the consumer waits for items or an end. */
export class ItemQueue<T> {
  readonly #items: BoundedQueue<T>
  #wake: (() => void) | undefined

  constructor(max: number) {
    this.#items = new BoundedQueue(max)
  }

  /** Items pushed out unread because the queue was full. */
  get dropped(): number {
    return this.#items.dropped
  }

  push(...items: T[]): void {
    for (const i of items) this.#items.push(i)
    this.wake()
  }

  shift(): T | undefined {
    return this.#items.shift()
  }

  get size(): number {
    return this.#items.size
  }

  wake(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /** Wait for a push, a wake() or `signal`. */
  wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted === true || this.#items.size > 0) return resolve()
      const done = (): void => {
        signal?.removeEventListener('abort', done)
        resolve()
      }
      this.#wake = done
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}

/** What the logs of this host need. */
export interface HostLogSource {
  selfId: string
  runtime: ContainerRuntime
  /** Every host's observed rows (this host's own are the ones used). */
  observed(): readonly ObservedReplica[]
  nameOf(id: string): string
  /** How often a follow looks for new containers of the service here (default 1000 ms). */
  rescanMs?: number
  /** The clock of the reopen back-off (default Date.now). */
  now?(): number
}

/** How many times in a row a follow opens again the log stream of a container that still runs. */
export const MAX_LOG_REOPENS = 5
/** Lines read again from a little back when a container's stream is opened again. */
const REREAD_LINES = 200

/** Per container a follow reads: what it followed and how its stream went. */
interface Followed {
  /** The start time of the container when its stream was opened. */
  startedAt: number | null
  open: boolean
  /** Time of the last line shown (lines up to it are skipped when the stream is opened again). */
  lastTime: number
  /** Times in a row its stream ended (or failed) while it ran; reset by a line shown. */
  ends: number
  /** Not opened again before this time. */
  retryAt: number
}

/**
 * The output of a service's replicas on THIS host, each line with its replica, interleaved as it
 * comes. Once: the last `tail` lines of each container, then the end (on abort, the lines read by
 * then). With `follow`: new lines until `signal` aborts, also of containers that appear later (a
 * replica moved here, a restart), and again of a container whose stream ended while it still runs
 * (an engine restart, an EOF): at most MAX_LOG_REOPENS times in a row, backing off.
 */
export async function* hostLogs(src: HostLogSource, service: string, opts: LogsOptions): AsyncGenerator<LogItemView> {
  const host = src.nameOf(src.selfId)
  const tail = opts.tail ?? 100
  const follow = opts.follow === true
  const signal = opts.signal
  const now = src.now ?? Date.now
  const rescanMs = src.rescanMs ?? 1000
  const queue = new ItemQueue<LogItemView>(50_000)
  const seen = new Map<string, Followed>()
  let open = 0
  const note = (slot: number, text: string): void => queue.push({ service, slot, host, kind: 'note', stream: null, time: null, text })

  const read = (row: ObservedReplica, id: string, known: Followed | undefined): void => {
    // Lines before now are not wanted with tail 0: nor when the stream is opened again.
    const state: Followed = { startedAt: row.startedAt, open: true, lastTime: known?.lastTime ?? (tail === 0 ? now() : -Infinity), ends: known?.startedAt === row.startedAt ? known.ends : 0, retryAt: 0 }
    seen.set(id, state)
    open++
    void (async () => {
      let failed: { err: unknown } | undefined
      let shown = 0
      try {
        // A container read before (it restarted, or its stream ended): from a little back, skipping lines already shown.
        for await (const l of src.runtime.logs(id, { tail: known === undefined ? tail : REREAD_LINES, follow, ...(signal === undefined ? {} : { signal }) })) {
          if (known !== undefined && l.time <= state.lastTime) continue
          state.lastTime = Math.max(state.lastTime, l.time)
          shown++
          queue.push({ service, slot: row.slot, host, kind: 'line', stream: l.stream, time: new Date(l.time).toISOString(), text: l.text })
        }
      } catch (err) {
        failed = { err }
      } finally {
        state.open = false
        open--
        if (signal?.aborted !== true) {
          if (follow) {
            if (shown > 0) state.ends = 0
            state.ends++
            state.retryAt = now() + Math.min(30_000, rescanMs * 2 ** (state.ends - 1))
            if (failed !== undefined && state.ends === 1) note(row.slot, `cannot read the logs of ${service}.${row.slot} on ${host}: ${errorMessage(failed.err)}`)
            if (state.ends > MAX_LOG_REOPENS) note(row.slot, `the log stream of ${service}.${row.slot} on ${host} ended ${state.ends} times in a row: it is read again when the replica restarts`)
          } else if (failed !== undefined) {
            note(row.slot, `cannot read the logs of ${service}.${row.slot} on ${host}: ${errorMessage(failed.err)}`)
          }
        }
        queue.wake()
      }
    })()
  }

  const scan = (): void => {
    for (const r of src.observed()) {
      if (r.host !== src.selfId || r.service !== service || r.containerId === null || r.state === 'orphaned') continue
      const s = seen.get(r.containerId)
      if (s === undefined) read(r, r.containerId, undefined)
      else if (!follow || s.open) continue
      else if (s.startedAt !== r.startedAt) read(r, r.containerId, s)
      else if (r.state === 'running' && s.ends <= MAX_LOG_REOPENS && now() >= s.retryAt) read(r, r.containerId, s)
    }
  }

  scan()
  let timer: NodeJS.Timeout | undefined
  if (follow) timer = setInterval(scan, rescanMs)
  try {
    for (;;) {
      // A follow that is stopped ends at once; a one-off read cut short gives what it read.
      if (follow && signal?.aborted === true) return
      const item = queue.shift()
      if (item !== undefined) {
        yield item
        continue
      }
      if (signal?.aborted === true || (!follow && open === 0)) return
      await queue.wait(signal)
    }
  } finally {
    clearInterval(timer)
  }
}

/** Options of the follow sessions a host keeps for other peers. */
export interface LogSessionsInit {
  /** This host's logs of a service (hostLogs). */
  open(service: string, opts: LogsOptions): AsyncIterable<LogItemView>
  /** This host's name, for notes. */
  hostName: string
  now(): number
  /** Most sessions (default 32), and per asking peer (default 8). */
  maxSessions?: number
  maxPerPeer?: number
  /** Lines a session keeps until they are polled (default 10,000)… */
  bufferItems?: number
  /** …and their most bytes, as sent (default 8 MiB). */
  bufferBytes?: number
  /** A session nobody polled for this long ends (default 15 s). */
  idleMs?: number
  /** How long a poll waits for new lines before it answers with none (default 1 s). */
  waitMs?: number
  /** Most lines in one answer (default 5,000)… */
  maxPerAnswer?: number
  /** …and their most bytes, as sent (default MAX_LOG_ANSWER_BYTES: they always fit in one answer). */
  answerBytes?: number
  /** Longest a one-off read of the logs may take (default 8 s: under the asker's 10 s timeout). */
  onceTimeoutMs?: number
  /** Most lines a one-off read keeps (default 200,000; the newest are kept). */
  onceItems?: number
}

/** The answering side of `logs` questions. */
export interface LogSessions {
  answer(from: string, q: LogsQuery): Promise<LogsAnswer>
  cancel(from: string, session: number): void
  /** Open sessions. */
  size(): number
  stop(): void
}

interface Session {
  from: string
  /** The service followed: a poll for another one (an asker that restarted and drew the same number) opens a new session. */
  service: string
  /** The lines as sent (long ones cut). */
  ring: SeqRing<LogWire>
  abort: AbortController
  lastPoll: number
  waiters: Set<() => void>
}

const sizeText = (bytes: number): string => (bytes >= 1024 * 1024 ? `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB` : `${Math.round(bytes / 1024)} KiB`)

/** Create the follow sessions of this host. */
export function createLogSessions(init: LogSessionsInit): LogSessions {
  const maxSessions = init.maxSessions ?? 32
  const maxPerPeer = init.maxPerPeer ?? 8
  const idleMs = init.idleMs ?? 15_000
  const answerBytes = init.answerBytes ?? MAX_LOG_ANSWER_BYTES
  const sessions = new Map<string, Session>()
  let sweeper: NodeJS.Timeout | undefined
  const note = (service: string, text: string): LogWire => logToWire(logNote(service, init.hostName, text))

  const end = (key: string): void => {
    const s = sessions.get(key)
    if (s === undefined) return
    sessions.delete(key)
    s.abort.abort()
    for (const w of s.waiters) w()
    if (sessions.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }
  const sweep = (): void => {
    const now = init.now()
    for (const [key, s] of sessions) if (now - s.lastPoll > idleMs) end(key)
  }

  const create = (key: string, from: string, q: LogsQuery): Session => {
    if (sessions.size >= maxSessions || [...sessions.values()].filter((s) => s.from === from).length >= maxPerPeer) {
      throw new SkeinError('busy', `${init.hostName} follows too many logs already (${sessions.size} sessions)`, { hint: 'stop another `skein logs -f`, or wait 15 s for abandoned ones to end' })
    }
    // A session asked with a cursor was lost (this peer restarted, or it expired): go on from now.
    const ring = new SeqRing<LogWire>(init.bufferItems ?? 10_000, q.since, { maxBytes: init.bufferBytes ?? 8 * 1024 * 1024, sizeOf: logWireBytes })
    const s: Session = { from, service: q.service, ring, abort: new AbortController(), lastPoll: init.now(), waiters: new Set() }
    sessions.set(key, s)
    sweeper ??= setInterval(sweep, Math.max(100, Math.floor(idleMs / 3)))
    const push = (i: LogWire): void => {
      s.ring.push(i)
      for (const w of s.waiters) w()
    }
    if (q.since > 0) push(note(q.service, `the follow session on ${init.hostName} started again: lines may be missing`))
    void (async () => {
      try {
        for await (const i of init.open(q.service, { tail: q.since > 0 ? 0 : q.tail, follow: true, signal: s.abort.signal })) push(logToWire(i))
      } catch (err) {
        if (!s.abort.signal.aborted) push(note(q.service, `cannot follow the logs on ${init.hostName}: ${errorMessage(err)}`))
      }
    })()
    return s
  }

  /** A one-off read: the newest lines that fit in one answer, with a note for what did not, or for a read cut short. */
  const once = async (q: LogsQuery): Promise<LogsAnswer> => {
    const limitMs = init.onceTimeoutMs ?? 8_000
    const signal = AbortSignal.timeout(limitMs)
    const ring = new SeqRing<LogWire>(init.onceItems ?? 200_000, 0, { maxBytes: answerBytes, sizeOf: logWireBytes })
    try {
      for await (const i of init.open(q.service, { tail: q.tail, follow: false, signal })) ring.push(logToWire(i))
    } catch (err) {
      if (!signal.aborted) throw err
    }
    const got = ring.since(0)
    const items = got.items
    if (got.dropped > 0) items.push(note(q.service, `${got.dropped} older lines on ${init.hostName} were left out: one answer holds at most ${sizeText(answerBytes)} of lines`))
    if (signal.aborted) items.push(note(q.service, `reading the logs on ${init.hostName} took more than ${limitMs / 1000} s: only the lines read by then are shown`))
    return { k: 'logs', next: 0, items }
  }

  return {
    async answer(from, q) {
      if (!q.follow) return await once(q)
      const key = `${from}\u0000${q.session}`
      let s = sessions.get(key)
      if (s !== undefined && s.service !== q.service) {
        end(key)
        s = undefined
      }
      s ??= create(key, from, q)
      s.lastPoll = init.now()
      const max = init.maxPerAnswer ?? 5_000
      // At most what fits in one answer, so that `next` is the last line sent: the rest waits for the next poll.
      const take = (ring: SeqRing<LogWire>) => ring.since(q.since, max, answerBytes)
      let got = take(s.ring)
      if (got.items.length === 0) {
        const waiters = s.waiters
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(t)
            waiters.delete(done)
            resolve()
          }
          const t = setTimeout(done, init.waitMs ?? 1_000)
          waiters.add(done)
        })
        got = take(s.ring)
      }
      s.lastPoll = init.now()
      const items = got.items
      if (got.dropped > 0) items.unshift(note(q.service, `${got.dropped} lines on ${init.hostName} were dropped: the reader fell behind`))
      return { k: 'logs', next: got.next, items }
    },
    cancel(from, session) {
      end(`${from}\u0000${session}`)
    },
    size: () => sessions.size,
    stop() {
      for (const key of [...sessions.keys()]) end(key)
    },
  }
}
