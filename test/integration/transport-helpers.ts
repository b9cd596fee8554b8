/** Helpers for the libp2p transport tests: real transports on 127.0.0.1, stopped after each test. */
import { silentLogger } from '../../src/core/logger.ts'
import { createLibp2pTransport, type Libp2pTransport, type Libp2pTransportInit } from '../../src/transport/libp2p.ts'
import { generateClusterKey, generateIdentity } from '../../src/transport/libp2p-keys.ts'

/** Starts transports and stops them all at the end of a test. */
export class Fleet {
  readonly clusterKey = generateClusterKey()
  readonly #started: Array<{ stop(): Promise<void> }> = []

  /** A transport on 127.0.0.1 with a random port, in this fleet's cluster unless told otherwise. */
  async start(opts: Partial<Omit<Libp2pTransportInit, 'logger'>> = {}): Promise<Libp2pTransport> {
    const t = await createLibp2pTransport({
      identity: opts.identity ?? (await generateIdentity()),
      clusterKey: opts.clusterKey ?? this.clusterKey,
      listen: opts.listen ?? '127.0.0.1:0',
      logger: silentLogger(),
      gossip: { loopbackColocation: true },
      ...opts,
    })
    this.#started.push(t)
    return t
  }

  /** Something else to stop at the end (a raw node, a socket). */
  track(thing: { stop(): Promise<void> }): void {
    this.#started.push(thing)
  }

  async stopAll(): Promise<void> {
    const all = this.#started.splice(0)
    await Promise.all(all.map((t) => t.stop()))
  }
}

/** The address of a transport, as host:port. */
export function addr(t: Libp2pTransport): string {
  const a = t.listenAddresses()[0]
  if (a === undefined) throw new Error('transport has no listen address')
  return a
}

/** The port a transport listens on. */
export function portOf(t: Libp2pTransport): number {
  return Number(addr(t).split(':').at(-1))
}

/** Poll `cond` every 10 ms until it holds; fail with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Bytes of a string. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s)
}

/** A string from bytes. */
export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b)
}
