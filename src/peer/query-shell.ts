/**
 * The shell of the peer-query protocol (query.ts has the messages): asks a peer a question and
 * waits for the whole answer (bounded: per-request timeout, at most `maxPending` questions in
 * flight), and answers the questions of others through `handler` (at most `maxServing` at a time,
 * `maxServingPerPeer` per asker; more are refused with `busy`, at most `maxBusyReplies` refusals in
 * flight, past that dropped unanswered). A malformed or forged message is dropped and counted;
 * nothing a peer sends makes this throw. Request ids start at a random number, so that an asker
 * that restarts (its peer id stays) does not take late answers to its last run's questions.
 */
import { randomBytes } from 'node:crypto'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Transport } from '../transport/types.ts'
import {
  ANSWER_KIND, AnswerAssembly, MAX_TEXT_CHARS, PEER_QUERY_PROTOCOL, chunkAnswer, chunkLogsAnswer, clip, decodeQueryMessage, encodeQueryMessage, nextCounter, randomCounter,
  type Answer, type AnswerFor, type Query, type QueryMessage,
} from './query.ts'

/** Counters of the peer-query shell (status and tests). */
export interface QueryCounters {
  /** Messages that failed decoding. */
  invalid: number
  /** Messages whose `from` is not their authenticated sender. */
  forged: number
  /** Answers to no question in flight, from another peer than the one asked, or repeated. */
  unexpected: number
  /** Questions answered (or refused with an error). */
  served: number
  /** Questions refused because too many were being answered. */
  refused: number
  /** Of those, the ones left unanswered because too many refusals were being sent already. */
  refusedSilently: number
  /** Questions asked that got no answer in time. */
  timeouts: number
  sendFailures: number
}

/** What the shell needs. */
export interface QueryShellInit {
  selfId: string
  transport: Transport
  logger: Logger
  /** The address to dial a peer at, when known. */
  addressOf(id: string): string | undefined
  /** A peer's node name, for messages. */
  nameOf(id: string): string
  /** Answer a question of `from` (this peer's own ones too). A thrown SkeinError is sent back as the error. */
  handler(from: string, q: Query): Promise<Answer> | Answer
  maxPending?: number
  maxServing?: number
  maxServingPerPeer?: number
  /** Most `busy` refusals being sent at once (default 16); past that a refused question gets no answer. */
  maxBusyReplies?: number
  /** Uniform in [0, 1): where request ids start (default: from the system's cryptographic random source). */
  random?: () => number
}

/** Uniform in [0, 1) from the system's cryptographic random source (53 bits). */
export function cryptoRandom(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 11n) / 2 ** 53
}

/** The peer-query shell. */
export interface QueryShell {
  /** Handle a message from an authenticated peer. Never throws. */
  receive(from: string, data: Uint8Array): void
  /**
   * Ask `to` (this peer itself included) and wait for the whole answer. Rejects with the peer's
   * own SkeinError, or `peer-timeout`, `peer-unreachable`, `busy`, `bad-answer`, `stopped`.
   */
  ask<K extends Query['k']>(to: string, q: Extract<Query, { k: K }>, timeoutMs: number): Promise<AnswerFor<K>>
  /** Fail every question in flight; refuse new ones. */
  stop(): void
  readonly counters: QueryCounters
}

interface Pending {
  to: string
  kind: Query['k']
  parts: AnswerAssembly
  resolve(a: Answer): void
  reject(err: Error): void
}

/** Create the shell; the caller registers `receive` on PEER_QUERY_PROTOCOL (`attachQueryShell`). */
export function createQueryShell(init: QueryShellInit): QueryShell {
  const log = init.logger.child({ component: 'peer-query' })
  const maxPending = init.maxPending ?? 256
  const maxServing = init.maxServing ?? 32
  const maxPerPeer = init.maxServingPerPeer ?? 8
  const maxBusy = init.maxBusyReplies ?? 16
  const counters: QueryCounters = { invalid: 0, forged: 0, unexpected: 0, served: 0, refused: 0, refusedSilently: 0, timeouts: 0, sendFailures: 0 }
  const pending = new Map<number, Pending>()
  const serving = new Map<string, number>()
  let servingTotal = 0
  let busyReplies = 0
  let lastReq = randomCounter(init.random ?? cryptoRandom)
  let stopped = false

  const send = async (to: string, msg: QueryMessage): Promise<void> => {
    const address = init.addressOf(to)
    await init.transport.send(to, PEER_QUERY_PROTOCOL, encodeQueryMessage(msg), { ...(address === undefined ? {} : { address }), signal: AbortSignal.timeout(5_000) })
  }

  const sendError = (to: string, req: number, err: unknown): Promise<void> => {
    const e = err instanceof SkeinError ? err : new SkeinError('internal', `the peer failed to answer: ${errorMessage(err)}`)
    const msg: QueryMessage = { t: 'e', from: init.selfId, req, code: clip(e.code, 60), message: clip(e.message, MAX_TEXT_CHARS - 8) }
    if (e.hint !== undefined) msg.hint = clip(e.hint, MAX_TEXT_CHARS - 8)
    return send(to, msg)
  }

  const serve = async (from: string, req: number, q: Query): Promise<void> => {
    const mine = serving.get(from) ?? 0
    if (servingTotal >= maxServing || mine >= maxPerPeer) {
      counters.refused++
      // A flood of questions must not become a flood of sends: past the bound the asker times out.
      if (busyReplies >= maxBusy) {
        counters.refusedSilently++
        return
      }
      busyReplies++
      try {
        await sendError(from, req, new SkeinError('busy', `${init.nameOf(init.selfId)} is answering too many peer queries`, { hint: 'retry in a moment' }))
      } finally {
        busyReplies--
      }
      return
    }
    servingTotal++
    serving.set(from, mine + 1)
    try {
      let answer: Answer
      try {
        answer = await init.handler(from, q)
      } catch (err) {
        if (!(err instanceof SkeinError)) log.warn({ from, k: q.k, err: errorMessage(err) }, 'answering a peer query failed')
        await sendError(from, req, err)
        return
      }
      // The logs answers are sized to fit (query-logs.ts); should one not, the asker gets a note.
      const { parts, dropped } = answer.k === 'logs' && q.k === 'logs' ? chunkLogsAnswer(answer, q.service, init.nameOf(init.selfId)) : chunkAnswer(answer)
      if (dropped > 0) log.debug({ from, k: q.k, dropped }, 'an answer was cut to fit the message limits')
      for (let i = 0; i < parts.length; i++) await send(from, { t: 'a', from: init.selfId, req, part: i, last: i === parts.length - 1, a: parts[i] as Answer })
    } finally {
      counters.served++
      servingTotal--
      const left = (serving.get(from) ?? 1) - 1
      if (left <= 0) serving.delete(from)
      else serving.set(from, left)
    }
  }

  const onMessage = (from: string, msg: QueryMessage): void => {
    if (msg.t === 'q') {
      if (stopped) return
      serve(from, msg.req, msg.q).catch((err: unknown) => {
        counters.sendFailures++
        log.debug({ to: from, err: errorMessage(err) }, 'peer-query answer not sent')
      })
      return
    }
    const p = pending.get(msg.req)
    if (p === undefined || p.to !== from) {
      counters.unexpected++
      log.debug({ from, req: msg.req }, 'dropped a peer-query answer to no question in flight')
      return
    }
    if (msg.t === 'e') {
      p.reject(new SkeinError(msg.code, msg.message, msg.hint === undefined ? {} : { hint: msg.hint }))
      return
    }
    if (msg.a.k !== ANSWER_KIND[p.kind]) {
      counters.invalid++
      p.reject(new SkeinError('bad-answer', `${init.nameOf(from)} answered a ${p.kind} query with ${msg.a.k}`, { hint: 'are both peers of the same skein version?' }))
      return
    }
    if (!p.parts.add(msg.part, msg.last, msg.a)) {
      counters.unexpected++
      return
    }
    if (p.parts.done) p.resolve(p.parts.answer())
  }

  return {
    counters,
    receive(from: string, data: Uint8Array): void {
      try {
        const d = decodeQueryMessage(data)
        if (!d.ok) {
          counters.invalid++
          log.debug({ from, reason: d.reason }, 'dropped an invalid peer-query message')
          return
        }
        if (d.value.from !== from) {
          counters.forged++
          log.debug({ from, claimed: d.value.from }, 'dropped a forged peer-query message (its sender is not its author)')
          return
        }
        onMessage(from, d.value)
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'peer-query handler failed')
      }
    },

    ask<K extends Query['k']>(to: string, q: Extract<Query, { k: K }>, timeoutMs: number): Promise<AnswerFor<K>> {
      type A = AnswerFor<K>
      if (stopped) return Promise.reject(new SkeinError('stopped', 'this peer is stopping'))
      if (to === init.selfId) {
        return (async () => {
          const a = await init.handler(to, q)
          if (a.k !== ANSWER_KIND[q.k]) throw new SkeinError('bad-answer', `a ${q.k} query got ${a.k}`)
          return a as A
        })()
      }
      if (pending.size >= maxPending) {
        return Promise.reject(new SkeinError('busy', `too many peer queries in flight (${maxPending})`, { hint: 'retry in a moment' }))
      }
      const req = (lastReq = nextCounter(lastReq))
      return new Promise<A>((resolve, reject) => {
        const finish = (): void => {
          clearTimeout(timer)
          pending.delete(req)
        }
        const timer = setTimeout(() => {
          finish()
          counters.timeouts++
          reject(new SkeinError('peer-timeout', `${init.nameOf(to)} did not answer within ${timeoutMs} ms`, { hint: '`skein nodes` shows whether it is alive' }))
        }, timeoutMs)
        pending.set(req, {
          to,
          kind: q.k,
          parts: new AnswerAssembly(),
          resolve: (a) => {
            finish()
            resolve(a as A)
          },
          reject: (err) => {
            finish()
            reject(err)
          },
        })
        send(to, { t: 'q', from: init.selfId, req, q }).catch((err: unknown) => {
          counters.sendFailures++
          pending.get(req)?.reject(new SkeinError('peer-unreachable', `cannot reach ${init.nameOf(to)}: ${errorMessage(err)}`, { hint: '`skein nodes` shows whether it is alive' }))
        })
      })
    },

    stop(): void {
      stopped = true
      for (const p of [...pending.values()]) p.reject(new SkeinError('stopped', 'this peer is stopping'))
      pending.clear()
    },
  }
}

/** Create the shell and register it on the transport. */
export function attachQueryShell(init: QueryShellInit): QueryShell {
  const shell = createQueryShell(init)
  init.transport.handle(PEER_QUERY_PROTOCOL, (from, data) => shell.receive(from, data))
  return shell
}
