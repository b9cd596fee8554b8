/**
 * The narrow transport seam. The libp2p adapter implements it for real; the simulation has its
 * own in-memory network. Peers are named by their id (the libp2p peer id string).
 *
 * Two kinds of traffic:
 * - direct messages: one-way, to one peer, on a named protocol (SWIM probes, push-pull, Raft);
 * - broadcast: publish on a gossip topic, delivered to every subscribed peer (gossipsub).
 *
 * Payloads are opaque bytes here; each protocol owns its codec (see codec.ts).
 */
export type PeerId = string

/** What a topic validator says of a message (gossipsub's accept / reject / ignore). */
export type Verdict = 'accept' | 'reject' | 'ignore'

export interface DirectHandler {
  (from: PeerId, data: Uint8Array): void
}

export interface TopicHandler {
  /** Decide on a message before it is delivered or forwarded. 'reject' penalises the sender. */
  validate(from: PeerId, data: Uint8Array): Verdict
  /** Called for accepted messages only (including the ones this peer publishes itself? no: only remote ones). */
  deliver(from: PeerId, data: Uint8Array): void
}

export interface TransportEvents {
  /** A connection to a peer came up (after the private-network and noise handshakes). */
  'peer:connect': PeerId
  /** The last connection to a peer went away. */
  'peer:disconnect': PeerId
}

export interface Transport {
  /** This peer's id. */
  readonly selfId: PeerId
  /** The addresses this peer listens on, as `host:port`. */
  listenAddresses(): string[]
  /**
   * Send one message to a peer. `address` (`host:port` or a multiaddr) is used to dial if no
   * connection is open. Resolves when the message has been written; rejects on failure.
   */
  send(to: PeerId, protocol: string, data: Uint8Array, opts?: { address?: string; signal?: AbortSignal }): Promise<void>
  /** Receive direct messages on a protocol. One handler per protocol. */
  handle(protocol: string, handler: DirectHandler): void
  /** Publish on a gossip topic. Resolves even when no peer is subscribed yet. */
  publish(topic: string, data: Uint8Array): Promise<void>
  /** Subscribe to a gossip topic, with a validator. One handler per topic. */
  subscribe(topic: string, handler: TopicHandler): void
  /** Dial an address (`host:port` or multiaddr) and return the peer id found there. */
  dial(address: string, opts?: { signal?: AbortSignal }): Promise<PeerId>
  /** Close connections to a peer (for example one that left). */
  hangUp(peer: PeerId): Promise<void>
  /** Ids of peers with an open connection. */
  connectedPeers(): PeerId[]
  on<K extends keyof TransportEvents>(event: K, listener: (detail: TransportEvents[K]) => void): void
  /** Counters for benchmarks and `status`. */
  stats(): TransportStats
  stop(): Promise<void>
}

export interface TransportStats {
  bytesIn: number
  bytesOut: number
  messagesIn: number
  messagesOut: number
  rejected: number
}
