import { errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Decoded, SenderCheck } from './codec.ts'
import type { PeerId, TopicHandler, Verdict } from './types.ts'

/** Counters a validated topic keeps: messages that failed decoding or the sender check. */
export interface TopicCounters {
  invalid: number
  forged: number
}

/** The message counters every protocol shell keeps (direct and gossip, in and out). */
export interface ShellCounters extends TopicCounters {
  received: number
  broadcastsReceived: number
  sent: number
  sendFailures: number
  published: number
}

/**
 * A gossip topic handler that decodes and checks each message once: in the validator (so that a
 * bad message is rejected and its sender penalised before it is forwarded), then hands the decoded
 * value to `deliver`. Nothing thrown by the caller's functions escapes into the transport.
 */
export function validatedTopic<T extends object>(opts: {
  /** What the messages are, for logs: "membership broadcast". */
  what: string
  decode: (data: Uint8Array) => Decoded<T>
  /** Whether `from` may have sent this message (the signed publisher is `from`). */
  check: (from: PeerId, msg: T) => SenderCheck
  counters: TopicCounters
  log: Logger
  deliver: (from: PeerId, msg: T) => void
}): TopicHandler {
  const { what, log, counters } = opts
  // The transport validates, then delivers the same bytes: keep the decoded value in between.
  const validated = new WeakMap<Uint8Array, T>()

  const validate = (from: PeerId, data: Uint8Array): Verdict => {
    const d = opts.decode(data)
    if (!d.ok) {
      counters.invalid++
      log.debug({ from, reason: d.reason }, `rejected an invalid ${what}`)
      return 'reject'
    }
    const check = opts.check(from, d.value)
    if (!check.ok) {
      counters.forged++
      log.warn({ from, reason: check.reason }, `rejected a forged ${what}`)
      return 'reject'
    }
    validated.set(data, d.value)
    return 'accept'
  }

  return {
    validate(from, data) {
      try {
        return validate(from, data)
      } catch (err) {
        log.error({ err: errorMessage(err) }, `${what} validator failed`)
        return 'ignore'
      }
    },
    deliver(from, data) {
      try {
        let msg = validated.get(data)
        if (msg === undefined && validate(from, data) === 'accept') msg = validated.get(data)
        validated.delete(data)
        if (msg !== undefined) opts.deliver(from, msg)
      } catch (err) {
        log.error({ err: errorMessage(err) }, `${what} delivery failed`)
      }
    },
  }
}
