/**
 * The connection protector: @libp2p/pnet (XSalsa20 under the cluster key) plus two additions.
 *
 * 1. A greeting. Right after the pnet nonces, each side sends 8 bytes through the encrypted
 *    pipe: "skein" NUL and a 2-byte wire version. A peer with another cluster key decrypts them
 *    to noise and is refused at once with a clear reason. Plain pnet cannot tell: noise then
 *    reads a random frame length and stalls until the upgrade timeout (seen: 5 s in 3 of 8 tries).
 * 2. Byte counting from the TCP socket (net.Socket bytesRead / bytesWritten): every byte,
 *    handshakes and control included, at no per-chunk cost.
 */
import type { Socket } from 'node:net'
import { preSharedKey } from '@libp2p/pnet'
import type { AbortOptions, ConnectionProtector, MessageStream, StreamMessageEvent } from '@libp2p/interface'

/** The version of Skein's connection greeting; bump on an incompatible wire change. */
export const WIRE_VERSION = 2

const GREETING_PREFIX = [0x73, 0x6b, 0x65, 0x69, 0x6e, 0x00] // "skein\0"
const GREETING_BYTES = GREETING_PREFIX.length + 2
const GREETING_TIMEOUT_MS = 5_000

function greeting(): Uint8Array {
  return Uint8Array.from([...GREETING_PREFIX, WIRE_VERSION >> 8, WIRE_VERSION & 0xff])
}

/** The remote's greeting did not decrypt: it has another cluster key. */
export class ClusterKeyMismatchError extends Error {
  override name = 'ClusterKeyMismatchError'
}

/** The remote speaks another version of the Skein wire protocol. */
export class WireVersionError extends Error {
  override name = 'WireVersionError'
}

/**
 * Bytes on the wire, read from the TCP sockets. Sockets are tracked until they close; their
 * final counts are then folded into the totals.
 */
export class WireCounter {
  #closedIn = 0
  #closedOut = 0
  #untracked = 0
  readonly #open = new Set<Socket>()

  /** Track a socket until it closes. */
  track(socket: Socket): void {
    if (this.#open.has(socket)) return
    this.#open.add(socket)
    socket.once('close', () => {
      this.#open.delete(socket)
      this.#closedIn += socket.bytesRead
      this.#closedOut += socket.bytesWritten
    })
  }

  /** A connection whose socket could not be found (another transport): totals are incomplete. */
  miss(): void {
    this.#untracked++
  }

  /** True while every connection so far was tracked. */
  get complete(): boolean {
    return this.#untracked === 0
  }

  /** Totals so far. */
  totals(): { bytesIn: number; bytesOut: number } {
    let bytesIn = this.#closedIn
    let bytesOut = this.#closedOut
    for (const s of this.#open) {
      bytesIn += s.bytesRead
      bytesOut += s.bytesWritten
    }
    return { bytesIn, bytesOut }
  }
}

function socketOf(conn: MessageStream): Socket | undefined {
  // @libp2p/tcp's connection keeps its net.Socket in `socket` (not part of the interface).
  const s: unknown = (conn as { socket?: unknown }).socket
  if (typeof s === 'object' && s !== null && typeof (s as Socket).bytesRead === 'number' && typeof (s as Socket).once === 'function') {
    return s as Socket
  }
  return undefined
}

/** Read exactly `n` bytes from a message stream; anything beyond goes back to the stream. */
function readExactly(stream: MessageStream, n: number, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const got = new Uint8Array(n)
    let filled = 0
    const done = (err?: unknown): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (err === undefined) resolve(got)
      else reject(err instanceof Error ? err : new Error(String(err)))
    }
    const onMessage = (evt: StreamMessageEvent): void => {
      const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      const take = Math.min(n - filled, chunk.byteLength)
      got.set(chunk.subarray(0, take), filled)
      filled += take
      if (filled < n) return
      done()
      if (take < chunk.byteLength) stream.unshift(chunk.subarray(take))
    }
    const onClose = (): void => done(new Error(`connection closed after ${filled} of ${n} greeting bytes`))
    const onAbort = (): void => done(signal.reason)
    if (signal.aborted) {
      onAbort()
      return
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

async function greet(conn: MessageStream, options: AbortOptions | undefined): Promise<void> {
  const timeout = AbortSignal.timeout(GREETING_TIMEOUT_MS)
  const signal = options?.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  conn.send(greeting())
  const theirs = await readExactly(conn, GREETING_BYTES, signal)
  if (!GREETING_PREFIX.every((b, i) => theirs[i] === b)) {
    throw new ClusterKeyMismatchError('the remote peer has a different cluster key')
  }
  const version = ((theirs[GREETING_BYTES - 2] ?? 0) << 8) | (theirs[GREETING_BYTES - 1] ?? 0)
  if (version !== WIRE_VERSION) {
    throw new WireVersionError(`the remote peer speaks wire version ${version}; this peer speaks ${WIRE_VERSION}`)
  }
}

/** The protector factory for libp2p's `connectionProtector` option. */
export function skeinProtector(init: { psk: Uint8Array; wire: WireCounter }): () => ConnectionProtector {
  const pnet = preSharedKey({ psk: init.psk })()
  return () => ({
    async protect(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
      const socket = socketOf(conn)
      if (socket === undefined) init.wire.miss()
      else init.wire.track(socket)
      try {
        const protectedConn = await pnet.protect(conn, options)
        await greet(protectedConn, options)
        return protectedConn
      } catch (err) {
        conn.abort(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
    },
  })
}
