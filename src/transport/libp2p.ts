/**
 * The Transport of src/transport/types.ts over libp2p 3: TCP + pnet (cluster key) + noise +
 * yamux, direct messages as frames on one long-lived stream per (peer, protocol), broadcast
 * through gossipsub.
 *
 * This file and the other src/transport/libp2p*.ts files are the only ones that import libp2p.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PeerId as Libp2pPeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../core/logger.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { DirectHandler, PeerId, TopicHandler, Transport, TransportEvents, TransportStats, Verdict } from './types.ts'
import { DirectChannels } from './libp2p-channel.ts'
import { encodeFrame, serveInbound } from './libp2p-direct.ts'
import { addTopicScoring, gossipScore, toValidatorResult, TopicValidatorResult } from './libp2p-gossip.ts'
import { formatAddress, parseAddress, parseListenAddress } from './libp2p-keys.ts'
import { createLibp2pNode, type SkeinLibp2p } from './libp2p-node.ts'
import { ClusterKeyMismatchError, WireCounter, WireVersionError } from './libp2p-protector.ts'

/** Default largest message payload: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
/** How long one inbound direct message may take to arrive in full, from its first byte. */
export const DEFAULT_READ_TIMEOUT_MS = 5_000
/** How long send() and dial() may take when the caller gives no signal. */
export const DEFAULT_SEND_TIMEOUT_MS = 10_000
/**
 * Direct-message streams per protocol and connection, each way. A sender keeps one; a few more
 * cover a stream being replaced while the old one closes. Also caps what a hostile peer can make
 * us hold: at most this many frames in progress (each at most maxMessageBytes, for at most the
 * read timeout) per protocol and connection.
 */
export const DIRECT_STREAM_LIMIT = 8
/** Sends waiting in one (peer, protocol) queue, while the stream opens or is backpressured; beyond, the oldest is dropped. */
export const DIRECT_QUEUE_LIMIT = 1024
/** Bytes waiting in one (peer, protocol) queue (at least one message of maxMessageBytes always fits). */
export const DIRECT_QUEUE_BYTES = 4 * 1024 * 1024

/** Options for createLibp2pTransport. */
export interface Libp2pTransportInit {
  /** Protobuf-marshalled Ed25519 private key (generateIdentity()). */
  identity: Uint8Array
  /** The 32-byte cluster key (generateClusterKey()): peers without it cannot connect. */
  clusterKey: Uint8Array
  /** `ip:port` (or a TCP multiaddr) to listen on; port 0 picks a free port. */
  listen: string
  /** `host:port` that other peers should dial, when it differs from the listen address. */
  advertise?: string
  logger: Logger
  /** Largest direct message or gossip payload, in bytes. Default 1 MiB. */
  maxMessageBytes?: number
  /** How long one inbound direct message may take, from its first byte. Default 5 s. */
  readTimeoutMs?: number
  gossip?: {
    /**
     * Exempt loopback peers from gossipsub's IP-colocation penalty and from libp2p's inbound
     * connection limits (5 new connections per second per host, 10 pending): several agents on
     * one host (tests, demos) need it. Default true: a peer on loopback is already on this host.
     */
    loopbackColocation?: boolean
  }
}

/** Transport counters. bytesIn/bytesOut are TCP bytes when `wireBytes`, else payload bytes. */
export interface Libp2pTransportStats extends TransportStats {
  /** Payload bytes of direct messages and gossip messages (our own publishes out, deliveries in). */
  payloadBytesIn: number
  payloadBytesOut: number
  /** True when bytesIn/bytesOut count every byte on the TCP sockets (handshakes, control, pings). */
  wireBytes: boolean
  /** Outbound direct-message streams opened since start (one per peer and protocol, plus reopens). */
  directStreamsOpened: number
  /** Direct messages dropped because the queue to their peer was full. */
  directDropped: number
}

/** Open direct-message streams on the connections to one peer, by direction. */
export interface DirectStreamCount {
  inbound: number
  outbound: number
}

/** The libp2p transport, with a few extras for `status` and tests. */
export interface Libp2pTransport extends Transport {
  stats(): Libp2pTransportStats
  /** Gossipsub's score for a peer (negative after rejected messages). */
  gossipScore(peer: PeerId): number
  /** Open streams on `protocol` over the connections to `peer` (for tests and diagnostics). */
  directStreams(peer: PeerId, protocol: string): DirectStreamCount
}

/** The greeting error inside a libp2p error, if any (libp2p may wrap it in causes or AggregateErrors). */
function findCause(err: unknown, depth = 0): unknown {
  if (depth > 6 || typeof err !== 'object' || err === null) return undefined
  if (err instanceof ClusterKeyMismatchError || err instanceof WireVersionError) return err
  const nested: unknown[] = [(err as { cause?: unknown }).cause]
  const errors: unknown = (err as { errors?: unknown }).errors
  if (Array.isArray(errors)) nested.push(...(errors as unknown[]))
  for (const e of nested) {
    const found = findCause(e, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

type Listener<K extends keyof TransportEvents> = (detail: TransportEvents[K]) => void

/** Create and start a libp2p transport. Listen failures throw SkeinError ('port-in-use', 'listen-failed', 'bad-address'). */
export async function createLibp2pTransport(init: Libp2pTransportInit): Promise<Libp2pTransport> {
  const log = init.logger
  const maxBytes = init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const readTimeoutMs = init.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS
  const listenMa = parseListenAddress(init.listen)
  const advertiseMa = init.advertise === undefined ? undefined : parseAddress(init.advertise)
  const wire = new WireCounter()
  const node: SkeinLibp2p = await createLibp2pNode({
    identity: init.identity,
    clusterKey: init.clusterKey,
    listen: listenMa,
    ...(advertiseMa === undefined ? {} : { advertise: advertiseMa }),
    maxMessageBytes: maxBytes,
    loopbackColocation: init.gossip?.loopbackColocation ?? true,
    wire,
  })
  const pubsub = node.services.pubsub
  const selfId = node.peerId.toString()
  const counters = { messagesIn: 0, messagesOut: 0, payloadBytesIn: 0, payloadBytesOut: 0, rejected: 0 }
  const directHandlers = new Map<string, DirectHandler>()
  const topicHandlers = new Map<string, TopicHandler>()
  const listeners = { 'peer:connect': new Set<Listener<'peer:connect'>>(), 'peer:disconnect': new Set<Listener<'peer:disconnect'>>() }
  let stopped = false

  const emit = <K extends keyof TransportEvents>(event: K, detail: TransportEvents[K]): void => {
    for (const fn of listeners[event] as Set<Listener<K>>) {
      try {
        fn(detail)
      } catch (err) {
        log.error({ err: errorMessage(err), event }, 'transport event listener threw')
      }
    }
  }
  node.addEventListener('peer:connect', (evt) => emit('peer:connect', evt.detail.toString()))
  node.addEventListener('peer:disconnect', (evt) => emit('peer:disconnect', evt.detail.toString()))

  pubsub.addEventListener('message', (evt) => {
    const msg = evt.detail
    const handler = topicHandlers.get(msg.topic)
    if (handler === undefined || msg.type !== 'signed') return
    counters.messagesIn++
    counters.payloadBytesIn += msg.data.byteLength
    try {
      handler.deliver(msg.from.toString(), msg.data)
    } catch (err) {
      log.error({ err: errorMessage(err), topic: msg.topic }, 'gossip handler threw')
    }
  })

  const ensureRunning = (what: string): void => {
    if (stopped) throw new SkeinError('transport-stopped', `cannot ${what}: the transport is stopped`)
  }
  const checkSize = (what: string, data: Uint8Array): void => {
    if (data.byteLength > maxBytes) {
      throw new SkeinError('message-too-large', `cannot ${what}: the message has ${data.byteLength} bytes, more than the limit of ${maxBytes}`)
    }
  }
  const withTimeout = (signal: AbortSignal | undefined): AbortSignal => {
    const timeout = AbortSignal.timeout(DEFAULT_SEND_TIMEOUT_MS)
    return signal === undefined ? timeout : AbortSignal.any([signal, timeout])
  }
  /** A connection failure as a SkeinError; a refused greeting says why. */
  const connectError = (code: string, what: string, err: unknown): SkeinError => {
    if (err instanceof SkeinError) return err
    const cause = findCause(err)
    if (cause instanceof ClusterKeyMismatchError) {
      return new SkeinError('wrong-cluster-key', `${what}: the peer there has a different cluster key`, {
        hint: 'join with a token from this cluster',
        cause: err,
      })
    }
    if (cause instanceof WireVersionError) {
      return new SkeinError('wire-version', `${what}: ${cause.message}`, { hint: 'run the same skein version on every host', cause: err })
    }
    return new SkeinError(code, `${what}: ${errorMessage(err)}`, {
      ...(code === 'dial-failed' ? { hint: 'is a skein agent listening there, with the same cluster key?' } : {}),
      cause: err,
    })
  }
  const toPeerId = (peer: PeerId): Libp2pPeerId => {
    try {
      return peerIdFromString(peer)
    } catch (err) {
      throw new SkeinError('bad-peer-id', `"${peer}" is not a peer id: ${errorMessage(err)}`, { cause: err })
    }
  }

  /** A stream to `to`, reusing an open connection, else dialing `address`, else the peer store. */
  const openStream = async (to: PeerId, protocol: string, address: string | undefined, signal: AbortSignal): Promise<Stream> => {
    const peer = toPeerId(to)
    // libp2p 3 ignores `negotiateFully: false`: every new stream costs a multistream-select round trip.
    const streamOpts = { signal, maxOutboundStreams: DIRECT_STREAM_LIMIT }
    const open = node.getConnections(peer).find((c) => c.status === 'open')
    if (open !== undefined) return open.newStream(protocol, streamOpts)
    if (address !== undefined) {
      const conn = await node.dial(parseAddress(address, to), { signal })
      return conn.newStream(protocol, streamOpts)
    }
    return node.dialProtocol(peer, protocol, streamOpts)
  }
  const channels = new DirectChannels({
    open: openStream,
    log,
    maxQueued: DIRECT_QUEUE_LIMIT,
    maxQueuedBytes: Math.max(DIRECT_QUEUE_BYTES, maxBytes + 8),
    openTimeoutMs: DEFAULT_SEND_TIMEOUT_MS,
    stallMs: DEFAULT_SEND_TIMEOUT_MS,
  })

  /** An inbound direct-message stream: frames until the sender closes it or the connection goes. */
  const onInbound = (protocol: string, stream: Stream, connection: Connection): void => {
    // The authenticated (noise) identity of the connection: every frame on the stream is from it.
    const from = connection.remotePeer.toString()
    serveInbound(stream, {
      maxBytes,
      frameTimeoutMs: readTimeoutMs,
      onFrame(data) {
        counters.messagesIn++
        counters.payloadBytesIn += data.byteLength
        const handler = directHandlers.get(protocol)
        if (handler === undefined) return
        try {
          handler(from, data)
        } catch (err) {
          log.error({ err: errorMessage(err), from, protocol }, 'direct message handler threw')
        }
      },
      onRefused(refusal) {
        counters.rejected++
        log.debug({ from, protocol, reason: refusal.reason }, 'direct message refused; stream reset')
      },
      onEnd(err) {
        if (err !== undefined) log.debug({ from, protocol, err: err.message }, 'direct message stream ended')
      },
    })
  }

  const transport: Libp2pTransport = {
    selfId,

    listenAddresses(): string[] {
      if (advertiseMa !== undefined) return [formatAddress(advertiseMa)]
      const all = [...new Set(node.getMultiaddrs().map((ma: Multiaddr) => formatAddress(ma)))]
      // Addresses other hosts can dial come first; loopback last.
      const loopback = (a: string): boolean => a.startsWith('127.') || a.startsWith('[::1]')
      return [...all.filter((a) => !loopback(a)), ...all.filter(loopback)]
    },

    async send(to, protocol, data, opts = {}): Promise<void> {
      ensureRunning('send')
      checkSize('send', data)
      toPeerId(to)
      try {
        await channels.send(to, protocol, encodeFrame(data), { address: opts.address, signal: withTimeout(opts.signal) })
      } catch (err) {
        throw connectError('send-failed', `cannot send ${protocol} to ${to}`, err)
      }
      counters.messagesOut++
      counters.payloadBytesOut += data.byteLength
    },

    handle(protocol, handler): void {
      ensureRunning('handle')
      if (directHandlers.has(protocol)) throw new SkeinError('duplicate-handler', `a handler for ${protocol} is already registered`)
      directHandlers.set(protocol, handler)
      node
        .handle(protocol, (stream, connection) => onInbound(protocol, stream, connection), {
          maxInboundStreams: DIRECT_STREAM_LIMIT,
          maxOutboundStreams: DIRECT_STREAM_LIMIT,
        })
        .catch((err: unknown) => log.error({ err: errorMessage(err), protocol }, 'cannot register protocol handler'))
    },

    async publish(topic, data): Promise<void> {
      ensureRunning('publish')
      checkSize('publish', data)
      try {
        await pubsub.publish(topic, data)
      } catch (err) {
        throw new SkeinError('publish-failed', `cannot publish on ${topic}: ${errorMessage(err)}`, { cause: err })
      }
      counters.messagesOut++
      counters.payloadBytesOut += data.byteLength
    },

    subscribe(topic, handler): void {
      ensureRunning('subscribe')
      if (topicHandlers.has(topic)) throw new SkeinError('duplicate-handler', `a handler for topic ${topic} is already registered`)
      topicHandlers.set(topic, handler)
      if (!addTopicScoring(pubsub, topic)) log.warn({ topic }, 'gossipsub does not expose score params: invalid messages will not be penalised')
      pubsub.topicValidators.set(topic, (_propagator, msg) => {
        if (msg.type !== 'signed' || msg.data.byteLength > maxBytes) {
          counters.rejected++
          return TopicValidatorResult.Reject
        }
        let verdict: Verdict
        try {
          verdict = handler.validate(msg.from.toString(), msg.data)
        } catch (err) {
          log.error({ err: errorMessage(err), topic }, 'gossip validator threw; ignoring the message')
          verdict = 'ignore'
        }
        if (verdict === 'reject') counters.rejected++
        return toValidatorResult(verdict)
      })
      pubsub.subscribe(topic)
    },

    async dial(address, opts = {}): Promise<PeerId> {
      ensureRunning('dial')
      const ma = parseAddress(address)
      try {
        const conn = await node.dial(ma, { signal: withTimeout(opts.signal) })
        return conn.remotePeer.toString()
      } catch (err) {
        throw connectError('dial-failed', `cannot connect to ${address}`, err)
      }
    },

    async hangUp(peer): Promise<void> {
      if (stopped) return
      const id = toPeerId(peer)
      await channels.close(peer, 'hung up on the peer')
      await node.hangUp(id)
    },

    connectedPeers(): PeerId[] {
      return node.getPeers().map((p) => p.toString())
    },

    on(event, listener): void {
      ;(listeners[event] as Set<typeof listener>).add(listener)
    },

    stats(): Libp2pTransportStats {
      const w = wire.totals()
      const wireBytes = wire.complete
      const direct = channels.stats()
      return {
        bytesIn: wireBytes ? w.bytesIn : counters.payloadBytesIn,
        bytesOut: wireBytes ? w.bytesOut : counters.payloadBytesOut,
        messagesIn: counters.messagesIn,
        messagesOut: counters.messagesOut,
        rejected: counters.rejected,
        payloadBytesIn: counters.payloadBytesIn,
        payloadBytesOut: counters.payloadBytesOut,
        wireBytes,
        directStreamsOpened: direct.streamsOpened,
        directDropped: direct.dropped,
      }
    },

    gossipScore(peer: PeerId): number {
      return gossipScore(pubsub, peer)
    },

    directStreams(peer, protocol): DirectStreamCount {
      const count = { inbound: 0, outbound: 0 }
      for (const conn of node.getConnections(toPeerId(peer))) {
        for (const s of conn.streams) if (s.protocol === protocol && s.status === 'open') count[s.direction]++
      }
      return count
    },

    async stop(): Promise<void> {
      if (stopped) return
      stopped = true
      await channels.close(undefined, 'the transport is stopped')
      await node.stop()
    },
  }
  return transport
}
