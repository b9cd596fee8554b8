/**
 * Direct messages over libp2p streams: framing and the receiving end.
 *
 * A direct-message stream is a long-lived, one-way channel from the peer that opened it: a
 * sequence of frames, each an unsigned-varint length prefix (as in it-length-prefixed) followed
 * by that many bytes. The sender keeps one such stream per (peer, protocol) open for as long as
 * it can (libp2p-channel.ts); the receiver reads frames in a loop for the life of the stream.
 *
 * The receiver checks each length prefix against the limit before it buffers any of the body,
 * holds no more than the bytes of the frame in progress, and gives a frame a deadline from its
 * first byte. Between frames the stream may stay idle for as long as the connection lives. Any
 * refusal resets the stream: the sender opens a new one on its next send.
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

/** The longest varint accepted: 5 bytes cover lengths up to 2^35, far above any sane limit. */
const MAX_VARINT_BYTES = 5

/** Why a reader refused its input. `oversized` is set when a length prefix exceeded the limit. */
export interface FrameRefusal {
  reason: string
  oversized: boolean
}

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
 * Incremental decoder of a sequence of frames. Feed chunks with push(); complete frames go to
 * the callback, in order. Memory held is the bytes received of the frame in progress, never the
 * length its prefix announces. After a refusal the reader ignores further input.
 */
export class FrameReader {
  readonly #maxBytes: number
  #length = 0
  #shift = 0
  #headerBytes = 0
  #headerDone = false
  #parts: Uint8Array[] = []
  #filled = 0
  #frames = 0
  #refused = false

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** Complete frames read so far. */
  get frames(): number {
    return this.#frames
  }

  /** True while part of a frame (a prefix byte or more) has arrived but not all of it. */
  get midFrame(): boolean {
    return this.#headerBytes > 0
  }

  /** Bytes held for the frame in progress. */
  get buffered(): number {
    return this.#filled
  }

  /** Feed the next chunk. Returns a refusal if the input is refused (oversized or malformed). */
  push(chunk: Uint8Array, onFrame: (data: Uint8Array) => void): FrameRefusal | undefined {
    if (this.#refused) return undefined
    let i = 0
    while (i < chunk.byteLength) {
      if (!this.#headerDone) {
        const b = chunk[i++] as number
        this.#length += (b & 0x7f) * 2 ** this.#shift
        this.#shift += 7
        this.#headerBytes++
        if (this.#length > this.#maxBytes) {
          return this.#refuse({ oversized: true, reason: `length prefix announces more than the limit of ${this.#maxBytes} bytes` })
        }
        if ((b & 0x80) !== 0) {
          if (this.#headerBytes >= MAX_VARINT_BYTES) return this.#refuse({ oversized: false, reason: 'malformed length prefix' })
          continue
        }
        this.#headerDone = true
      }
      const take = Math.min(this.#length - this.#filled, chunk.byteLength - i)
      if (take > 0) {
        // A copy: the chunk's buffer belongs to the stream, and the handler may keep the frame.
        this.#parts.push(chunk.slice(i, i + take))
        this.#filled += take
        i += take
      }
      if (this.#filled === this.#length) onFrame(this.#complete())
    }
    return undefined
  }

  /** The input ended cleanly. Refused if a frame is incomplete, or if the stream carried none. */
  end(): FrameRefusal | undefined {
    if (this.#refused) return undefined
    if (this.#headerBytes === 0) return this.#frames === 0 ? this.#refuse({ oversized: false, reason: 'empty stream' }) : undefined
    if (!this.#headerDone) return this.#refuse({ oversized: false, reason: 'truncated length prefix' })
    return this.#refuse({ oversized: false, reason: `truncated frame: ${this.#filled} of ${this.#length} bytes` })
  }

  #complete(): Uint8Array {
    const parts = this.#parts
    let data: Uint8Array
    if (parts.length === 1) data = parts[0] as Uint8Array
    else {
      data = new Uint8Array(this.#length)
      let at = 0
      for (const p of parts) {
        data.set(p, at)
        at += p.byteLength
      }
    }
    this.#frames++
    this.#parts = []
    this.#length = 0
    this.#shift = 0
    this.#headerBytes = 0
    this.#headerDone = false
    this.#filled = 0
    return data
  }

  #refuse(refusal: FrameRefusal): FrameRefusal {
    this.#refused = true
    this.#parts = []
    this.#filled = 0
    return refusal
  }
}

function chunkBytes(data: StreamMessageEvent['data']): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray()
}

/** What serveInbound needs: limits and where frames and refusals go. */
export interface InboundInit {
  /** Largest frame payload accepted. */
  maxBytes: number
  /** How long one frame may take to arrive, from its first byte. */
  frameTimeoutMs: number
  /** Called once per frame, in order. Must not throw. */
  onFrame(data: Uint8Array): void
  /** Called when the input is refused; the stream is reset right after. */
  onRefused(refusal: FrameRefusal): void
  /** Called once when the stream is over, with the error of an abnormal end (a reset, a dead connection). */
  onEnd?(err: Error | undefined): void
}

/**
 * Serve an inbound direct-message stream: read frames until the remote closes its end, the
 * stream is reset or the connection goes. Returns at once; everything happens in listeners,
 * which are removed when the stream closes. Never throws.
 */
export function serveInbound(stream: Stream, init: InboundInit): void {
  const reader = new FrameReader(init.maxBytes)
  let timer: ReturnType<typeof setTimeout> | undefined
  let over = false

  const finish = (err: Error | undefined): void => {
    if (over) return
    over = true
    clearTimeout(timer)
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('close', onClose)
    init.onEnd?.(err)
  }
  const refuse = (refusal: FrameRefusal): void => {
    init.onRefused(refusal)
    finish(new Error(refusal.reason))
    stream.abort(new Error(refusal.reason))
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    if (over) return
    const refusal = reader.push(chunkBytes(evt.data), init.onFrame)
    if (refusal !== undefined) {
      refuse(refusal)
      return
    }
    // A deadline for the frame in progress only: an idle stream between frames is the norm.
    if (!reader.midFrame) {
      clearTimeout(timer)
      timer = undefined
    } else if (timer === undefined) {
      timer = setTimeout(() => refuse({ oversized: false, reason: `no complete frame within ${init.frameTimeoutMs} ms` }), init.frameTimeoutMs)
      timer.unref?.()
    }
  }
  // The remote closed its end and everything it sent has been read.
  const onEnd = (): void => {
    if (over) return
    // A reset, or a connection that died, also ends the readable side (before 'close').
    if (stream.status === 'reset' || stream.status === 'aborted') {
      finish(new Error(`stream ${stream.status}`))
      return
    }
    const refusal = reader.end()
    if (refusal !== undefined) {
      refuse(refusal)
      return
    }
    finish(undefined)
    // We never write on this stream: closing our end completes the close and frees it.
    stream.close().catch((err: unknown) => stream.abort(err instanceof Error ? err : new Error(String(err))))
  }
  const onClose = (evt: StreamCloseEvent): void => {
    // After a clean close, data still queued for 'message' listeners is delivered; 'end' follows.
    if (evt.error === undefined && stream.readBufferLength > 0) return
    if (evt.error === undefined) onEnd()
    else finish(evt.error)
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  if (stream.status !== 'open' && stream.readBufferLength === 0) finish(new Error(`stream already ${stream.status}`))
  else if (stream.readableEnded && stream.readBufferLength === 0) onEnd()
}
