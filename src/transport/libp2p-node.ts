/**
 * The libp2p node behind the transport: TCP, the pnet protector (cluster key), noise, yamux,
 * identify, ping and gossipsub. Turns listen failures into errors a person can act on.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Multiaddr } from '@multiformats/multiaddr'
import { SkeinError } from '../core/errors.ts'
import { createGossip, type GossipSub } from './libp2p-gossip.ts'
import { formatAddress, identityKey, pnetKeyFile } from './libp2p-keys.ts'
import { skeinProtector, type WireCounter } from './libp2p-protector.ts'

/** The services of a Skein libp2p node. */
export interface SkeinServices {
  [key: string]: unknown
  identify: unknown
  ping: unknown
  pubsub: GossipSub
}

/** A started Skein libp2p node. */
export type SkeinLibp2p = Libp2p<SkeinServices>

/** Options for createLibp2pNode. */
export interface Libp2pNodeInit {
  identity: Uint8Array
  clusterKey: Uint8Array
  listen: Multiaddr
  advertise?: Multiaddr
  maxMessageBytes: number
  /** Loopback is exempt from colocation scoring and inbound rate limits (single-host clusters). */
  loopbackColocation: boolean
  /** Told about every connection's socket, for byte counts. */
  wire: WireCounter
}

/** Streams a new connection may open before the accepting side is ready (see createLibp2pNode). */
export const EARLY_STREAMS = 256

const LOOPBACK_NETS = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']

/** Create and start the node. Listen failures become SkeinErrors ('port-in-use', 'listen-failed'). */
export async function createLibp2pNode(init: Libp2pNodeInit): Promise<SkeinLibp2p> {
  const node = await createLibp2p<SkeinServices>({
    start: false,
    privateKey: identityKey(init.identity),
    addresses: {
      listen: [init.listen.toString()],
      ...(init.advertise === undefined ? {} : { announce: [init.advertise.toString()] }),
    },
    transports: [tcp()],
    connectionProtector: skeinProtector({ psk: pnetKeyFile(init.clusterKey), wire: init.wire }),
    connectionEncrypters: [noise()],
    // The accepting side adds its stream listener only after its upgrade finishes; streams the
    // dialer opens before that are "early", and more than maxEarlyStreams (default 10) aborts the
    // whole connection. Direct messages open one stream per protocol (libp2p-channel.ts), but
    // identify, ping, gossipsub and those together right after a dial can pass 10; keep headroom.
    streamMuxers: [yamux({ maxEarlyStreams: EARLY_STREAMS })],
    connectionManager: {
      // A handshake on a LAN takes milliseconds: fail a stalled one sooner than the default 10 s.
      dialTimeout: 5_000,
      addressDialTimeout: 5_000,
      inboundUpgradeTimeout: 5_000,
      ...(init.loopbackColocation ? { allow: LOOPBACK_NETS } : {}),
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: createGossip({ maxMessageBytes: init.maxMessageBytes, loopbackColocation: init.loopbackColocation }),
    },
  })
  try {
    await node.start()
  } catch (err) {
    await Promise.resolve(node.stop()).catch(() => undefined)
    throw listenError(init.listen, err)
  }
  return node
}

const ERRNO = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES|EPERM)\b/

/** The errno code of a listen failure: libp2p folds the socket errors into its message text. */
function errnoCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const code: unknown = (e as { code?: unknown }).code
    if (typeof code === 'string' && ERRNO.test(code)) return code
    const found = ERRNO.exec(e instanceof Error ? e.message : String(e))
    if (found !== null) return found[1]
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** The most specific line of an error message (libp2p's are long and multi-line). */
function shortMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  const inner = /Error: ([^\n]+)/.exec(text)
  return (inner?.[1] ?? text.split('\n')[0] ?? text).trim()
}

/** A failure to start listening, as a SkeinError. */
export function listenError(listen: Multiaddr, err: unknown): SkeinError {
  const where = formatAddress(listen)
  const code = errnoCode(err)
  switch (code) {
    case 'EADDRINUSE':
      return new SkeinError('port-in-use', `cannot listen on ${where}: the port is in use`, {
        hint: 'is another skein agent running? choose another with --listen',
        cause: err,
      })
    case 'EADDRNOTAVAIL':
      return new SkeinError('listen-failed', `cannot listen on ${where}: no network interface has that address`, {
        hint: 'use 0.0.0.0:PORT to listen on all interfaces',
        cause: err,
      })
    case 'EACCES':
    case 'EPERM':
      return new SkeinError('listen-failed', `cannot listen on ${where}: permission denied`, {
        hint: 'ports below 1024 need privileges; choose another with --listen',
        cause: err,
      })
    default:
      return new SkeinError('listen-failed', `cannot listen on ${where}: ${shortMessage(err)}`, { cause: err })
  }
}
