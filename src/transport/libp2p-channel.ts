/**
 * The sending end of direct messages: one long-lived outbound stream per (peer, protocol),
 * carrying a sequence of frames (libp2p-direct.ts). Opening a stream costs a multistream-select
 * round trip (≈ 380 bytes both ways); a frame on an open stream costs its yamux and noise
 * headers only.
 *
 * Each channel has a FIFO queue and a single writer (the pump), so frames go out in order and
 * sends that arrive while the stream is opening wait for that one opening. The pump:
 * - opens a stream when the channel has none, or the one it had closed (reset by the receiver,
 *   connection gone); a failed open fails every send waiting on it;
 * - respects backpressure: before a write it waits for 'drain' when the stream needs it, and a
 *   send resolves once its frame has left the stream's write buffer. A stream stuck longer than
 *   `stallMs` is reset and the frame retried on a fresh stream;
 * - retries a frame once on a fresh stream when writing it failed (the stream died under it).
 *   A frame that went out just before the peer died is lost: TCP cannot tell, and neither can
 *   this. Membership and Raft tolerate loss (they have their own acks and retries).
 *
 * The queue is bounded (frames and bytes, per channel): when full, the OLDEST waiting send is
 * dropped and rejects with a SkeinError 'send-failed' saying so. The newest message is the one
 * worth sending: a newer probe or heartbeat supersedes an older one.
 */
import type { Stream } from '@libp2p/interface'
import type { Logger } from '../core/logger.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'

/** Opens a stream to `peer` for `protocol` (dialing `address` if there is no connection). */
export type OpenStream = (peer: string, protocol: string, address: string | undefined, signal: AbortSignal) => Promise<Stream>

/** Limits and hooks of DirectChannels. */
export interface ChannelsInit {
  open: OpenStream
  log: Logger
  /** Most sends waiting in one channel's queue. */
  maxQueued: number
  /** Most bytes waiting in one channel's queue (at least one frame is always let in). */
  maxQueuedBytes: number
  /** How long opening a stream may take (dial included). */
  openTimeoutMs: number
  /** How long a write may wait for the stream to drain before the stream is reset. */
  stallMs: number
}

/** Counters of DirectChannels. */
export interface ChannelStats {
  /** Outbound streams opened since start. */
  streamsOpened: number
  /** Sends dropped because their channel's queue was full. */
  dropped: number
  /** Channels with an open stream now. */
  openChannels: number
}

interface Pending {
  frame: Uint8Array
  address: string | undefined
  attempts: number
  settle(err?: unknown): void
}

interface Channel {
  readonly key: string
  readonly peer: string
  readonly protocol: string
  readonly abort: AbortController
  stream: Stream | undefined
  queue: Pending[]
  queuedBytes: number
  pumping: boolean
  closed: boolean
}

/** A stream a frame can still be written to. */
function writable(stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable'
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** Resolve on `event`, reject if the stream closes first or after `ms`. */
function waitFor(stream: Stream, event: 'idle' | 'drain', ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer)
      stream.removeEventListener(event, onEvent)
      stream.removeEventListener('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onEvent = (): void => done()
    const onClose = (): void => done(new Error(`stream ${stream.status} while waiting for '${event}'`))
    const timer = setTimeout(() => done(new Error(`stream stalled: no '${event}' within ${ms} ms`)), ms)
    stream.addEventListener(event, onEvent)
    stream.addEventListener('close', onClose)
  })
}

/** The outbound direct-message channels of one transport. */
export class DirectChannels {
  readonly #init: ChannelsInit
  readonly #channels = new Map<string, Channel>()
  #streamsOpened = 0
  #dropped = 0

  constructor(init: ChannelsInit) {
    this.#init = init
  }

  /** Queue one encoded frame for `peer`; resolves once written, rejects with the failure. */
  send(peer: string, protocol: string, frame: Uint8Array, opts: { address?: string | undefined; signal: AbortSignal }): Promise<void> {
    opts.signal.throwIfAborted()
    const key = `${peer} ${protocol}`
    let ch = this.#channels.get(key)
    if (ch === undefined) {
      ch = { key, peer, protocol, abort: new AbortController(), stream: undefined, queue: [], queuedBytes: 0, pumping: false, closed: false }
      this.#channels.set(key, ch)
    }
    const channel = ch
    return new Promise<void>((resolve, reject) => {
      let settled = false
      const item: Pending = {
        frame,
        address: opts.address,
        attempts: 0,
        settle: (err?: unknown): void => {
          if (settled) return
          settled = true
          opts.signal.removeEventListener('abort', onAbort)
          if (err === undefined) resolve()
          else reject(err)
        },
      }
      const onAbort = (): void => {
        this.#unqueue(channel, item)
        item.settle(opts.signal.reason)
      }
      opts.signal.addEventListener('abort', onAbort, { once: true })
      this.#enqueue(channel, item)
      void this.#pump(channel)
    })
  }

  /** Close the channels to `peer` (all channels when omitted): their streams close, waiting sends fail. */
  async close(peer?: string, reason = 'the channel was closed'): Promise<void> {
    const closing: Array<Promise<void>> = []
    for (const ch of [...this.#channels.values()]) {
      if (peer !== undefined && ch.peer !== peer) continue
      ch.closed = true
      this.#channels.delete(ch.key)
      ch.abort.abort(new Error(reason))
      for (const item of ch.queue.splice(0)) item.settle(new SkeinError('send-failed', `cannot send ${ch.protocol} to ${ch.peer}: ${reason}`))
      ch.queuedBytes = 0
      const stream = ch.stream
      ch.stream = undefined
      if (stream !== undefined && stream.status === 'open') {
        closing.push(stream.close({ signal: AbortSignal.timeout(2_000) }).catch((err: unknown) => stream.abort(asError(err))))
      }
    }
    await Promise.all(closing)
  }

  /** Counters for stats and tests. */
  stats(): ChannelStats {
    let open = 0
    for (const ch of this.#channels.values()) if (ch.stream !== undefined && writable(ch.stream)) open++
    return { streamsOpened: this.#streamsOpened, dropped: this.#dropped, openChannels: open }
  }

  #enqueue(ch: Channel, item: Pending): void {
    ch.queue.push(item)
    ch.queuedBytes += item.frame.byteLength
    const { maxQueued, maxQueuedBytes } = this.#init
    while (ch.queue.length > 1 && (ch.queue.length > maxQueued || ch.queuedBytes > maxQueuedBytes)) {
      const oldest = ch.queue.shift() as Pending
      ch.queuedBytes -= oldest.frame.byteLength
      this.#dropped++
      oldest.settle(
        new SkeinError('send-failed', `cannot send ${ch.protocol} to ${ch.peer}: dropped, the queue to this peer is full (${maxQueued} messages or ${maxQueuedBytes} bytes)`, {
          hint: 'the peer is slow or unreachable; newer messages are kept, older ones dropped',
        }),
      )
    }
  }

  #unqueue(ch: Channel, item: Pending): void {
    const i = ch.queue.indexOf(item)
    if (i < 0) return
    ch.queue.splice(i, 1)
    ch.queuedBytes -= item.frame.byteLength
  }

  /** The single writer of a channel: runs while the queue has frames. */
  async #pump(ch: Channel): Promise<void> {
    if (ch.pumping) return
    ch.pumping = true
    try {
      while (!ch.closed && ch.queue.length > 0) {
        let stream: Stream
        try {
          stream = await this.#ready(ch, ch.queue[0]?.address)
        } catch (err) {
          // Every send waiting for this opening shares its failure.
          for (const item of ch.queue.splice(0)) item.settle(err)
          ch.queuedBytes = 0
          break
        }
        const item = ch.queue.shift()
        if (item === undefined) break
        ch.queuedBytes -= item.frame.byteLength
        try {
          await this.#write(stream, item.frame)
          item.settle()
        } catch (err) {
          this.#discard(ch, stream, asError(err))
          if (item.attempts++ === 0 && !ch.closed) {
            this.#init.log.debug({ peer: ch.peer, protocol: ch.protocol, err: errorMessage(err) }, 'direct stream failed; retrying on a fresh one')
            ch.queue.unshift(item)
            ch.queuedBytes += item.frame.byteLength
          } else {
            item.settle(err)
          }
        }
      }
    } finally {
      ch.pumping = false
      this.#forgetIfIdle(ch)
    }
  }

  /** The channel's stream, opening one if it has none that can be written to. */
  async #ready(ch: Channel, address: string | undefined): Promise<Stream> {
    const current = ch.stream
    if (current !== undefined && writable(current)) return current
    if (current !== undefined) this.#discard(ch, current, new Error(`stream ${current.status}`))
    const signal = AbortSignal.any([ch.abort.signal, AbortSignal.timeout(this.#init.openTimeoutMs)])
    const stream = await this.#init.open(ch.peer, ch.protocol, address, signal)
    this.#streamsOpened++
    if (ch.closed) {
      stream.abort(new Error('channel closed while the stream was opening'))
      throw new SkeinError('send-failed', `cannot send ${ch.protocol} to ${ch.peer}: the channel was closed`)
    }
    // The receiver never writes on this stream: drop anything it sends rather than buffer it.
    stream.addEventListener('message', () => undefined)
    stream.addEventListener('close', () => {
      if (ch.stream !== stream) return
      ch.stream = undefined
      this.#forgetIfIdle(ch)
    })
    ch.stream = stream
    return stream
  }

  /** Write one frame, waiting for the stream to drain before and to flush after. */
  async #write(stream: Stream, frame: Uint8Array): Promise<void> {
    const { stallMs } = this.#init
    // Not stream.onDrain(): in @libp2p/utils 7 its promise is never renewed once resolved, so
    // after the first drain it resolves at once even while the stream still needs draining.
    if (stream.writableNeedsDrain) await waitFor(stream, 'drain', stallMs)
    // send() returns false when the muxer is saturated: the frame then waits in the stream's
    // write buffer, and the next write waits for 'drain' above.
    stream.send(frame)
    if (stream.writeBufferLength > 0) await waitFor(stream, 'idle', stallMs)
    if (stream.status !== 'open') throw new Error(`stream ${stream.status} while writing`)
  }

  /** Drop a stream from its channel, resetting it if it is still open (stalled or failed). */
  #discard(ch: Channel, stream: Stream, err: Error): void {
    if (ch.stream === stream) ch.stream = undefined
    if (stream.status === 'open') stream.abort(err)
  }

  #forgetIfIdle(ch: Channel): void {
    if (ch.stream === undefined && ch.queue.length === 0 && !ch.pumping && this.#channels.get(ch.key) === ch) this.#channels.delete(ch.key)
  }
}
