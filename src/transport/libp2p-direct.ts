/**
 * Direct messages over libp2p streams: one stream carries ONE frame, an unsigned-varint length
 * prefix (as in it-length-prefixed) followed by that many bytes, then the sender closes.
 *
 * The reader checks the length prefix against the limit before it buffers anything, gives up
 * after a deadline, and never throws: it resolves to a tagged result.
 */
import type { Stream, StreamMessageEvent, StreamCloseEvent } from '@libp2p/interface'

/** The longest varint accepted: 5 bytes cover lengths up to 2^35, far above any sane limit. */
const MAX_VARINT_BYTES = 5

/** What reading one frame gave. `oversized` is set when the length prefix exceeded the limit. */
export type FrameResult = { ok: true; data: Uint8Array } | { ok: false; reason: string; oversized: boolean }

/** Bytes of the varint length prefix for a payload of `n` bytes. */
export function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

/** One frame: varint(data.length) followed by data, in one buffer (one write, one muxer frame). */
export function encodeFrame(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(data.byteLength) + data.byteLength)
  let n = data.byteLength
  let i = 0
  while (n >= 0x80) {
    out[i++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  out[i++] = n
  out.set(data, i)
  return out
}

/**
 * Incremental decoder of one frame. Feed chunks with push(); it answers with a result as soon
 * as the frame is complete, the prefix exceeds `maxBytes`, or the input is malformed.
 */
export class FrameDecoder {
  readonly #maxBytes: number
  #length = 0
  #shift = 0
  #headerBytes = 0
  #headerDone = false
  #body: Uint8Array | undefined
  #filled = 0
  #done = false

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** Feed the next chunk. Returns a result once decided, undefined while more input is needed. */
  push(chunk: Uint8Array): FrameResult | undefined {
    if (this.#done) return undefined
    let i = 0
    while (!this.#headerDone && i < chunk.byteLength) {
      const b = chunk[i++] as number
      this.#length += (b & 0x7f) * 2 ** this.#shift
      this.#shift += 7
      this.#headerBytes++
      if (this.#length > this.#maxBytes) {
        return this.#finish({ ok: false, oversized: true, reason: `length prefix announces more than the limit of ${this.#maxBytes} bytes` })
      }
      if ((b & 0x80) === 0) {
        this.#headerDone = true
        this.#body = new Uint8Array(this.#length)
      } else if (this.#headerBytes >= MAX_VARINT_BYTES) {
        return this.#finish({ ok: false, oversized: false, reason: 'malformed length prefix' })
      }
    }
    const body = this.#body
    if (body === undefined) return undefined
    const rest = chunk.byteLength - i
    const room = body.byteLength - this.#filled
    if (rest > room) return this.#finish({ ok: false, oversized: false, reason: 'trailing bytes after the frame' })
    body.set(chunk.subarray(i), this.#filled)
    this.#filled += rest
    if (this.#filled === body.byteLength) return this.#finish({ ok: true, data: body })
    return undefined
  }

  /** The input ended. A frame still incomplete here is truncated. */
  end(): FrameResult {
    if (!this.#headerDone) return this.#finish({ ok: false, oversized: false, reason: this.#headerBytes === 0 ? 'empty stream' : 'truncated length prefix' })
    return this.#finish({ ok: false, oversized: false, reason: `truncated frame: ${this.#filled} of ${this.#length} bytes` })
  }

  #finish(result: FrameResult): FrameResult {
    this.#done = true
    this.#body = undefined
    return result
  }
}

function chunkBytes(data: StreamMessageEvent['data']): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray()
}

/**
 * Read one frame from an inbound stream. Resolves (never rejects) with the payload, or with the
 * reason it was refused. The caller closes or aborts the stream afterwards.
 */
export function readFrame(stream: Stream, opts: { maxBytes: number; timeoutMs: number }): Promise<FrameResult> {
  const decoder = new FrameDecoder(opts.maxBytes)
  return new Promise<FrameResult>((resolve) => {
    let settled = false
    const settle = (result: FrameResult | undefined): void => {
      if (result === undefined || settled) return
      settled = true
      clearTimeout(timer)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('remoteCloseWrite', onEnd)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      resolve(result)
    }
    const onMessage = (evt: StreamMessageEvent): void => {
      settle(decoder.push(chunkBytes(evt.data)))
    }
    // 'remoteCloseWrite' may arrive before buffered data is emitted: wait for 'end' in that case.
    const onEnd = (): void => {
      if (stream.readBufferLength === 0) settle(decoder.end())
    }
    const onClose = (evt: StreamCloseEvent): void => {
      // Data still queued for 'message' listeners is delivered after a clean close; wait for it.
      if (evt.error === undefined && stream.readBufferLength > 0) return
      settle(evt.error === undefined ? decoder.end() : { ok: false, oversized: false, reason: `stream closed: ${evt.error.message}` })
    }
    const timer = setTimeout(() => {
      settle({ ok: false, oversized: false, reason: `no complete frame within ${opts.timeoutMs} ms` })
    }, opts.timeoutMs)
    timer.unref?.()
    stream.addEventListener('message', onMessage)
    stream.addEventListener('remoteCloseWrite', onEnd)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded && stream.readBufferLength === 0) settle(decoder.end())
  })
}

interface PeerSlots {
  active: number
  waiting: Array<() => void>
}

/**
 * At most `limit` sends in flight to each peer; the others wait their turn, in order. Keeps a
 * burst under the receiver's per-connection stream limit instead of having streams reset.
 */
export class InflightLimiter {
  readonly #limit: number
  readonly #peers = new Map<string, PeerSlots>()

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Wait for a slot to `peer`; call the returned function to give it back. */
  async acquire(peer: string, signal: AbortSignal): Promise<() => void> {
    let slots = this.#peers.get(peer)
    if (slots === undefined) {
      slots = { active: 0, waiting: [] }
      this.#peers.set(peer, slots)
    }
    const s = slots
    if (s.active < this.#limit) {
      s.active++
    } else {
      // Wait for a release to hand its slot over (active stays the same across the handover).
      signal.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = s.waiting.indexOf(wake)
          if (i >= 0) s.waiting.splice(i, 1)
          reject(signal.reason)
        }
        const wake = (): void => {
          signal.removeEventListener('abort', onAbort)
          resolve()
        }
        s.waiting.push(wake)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const next = s.waiting.shift()
      if (next !== undefined) {
        next()
        return
      }
      s.active--
      if (s.active === 0) this.#peers.delete(peer)
    }
  }
}
