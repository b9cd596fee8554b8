import type { DirectHandler, PeerId, TopicHandler, Transport, TransportEvents } from './types.ts'

/**
 * A Transport wrapper that drops all traffic to and from chosen peers: direct messages both
 * ways (sends to a blocked peer fail) and gossip from them (ignored: neither delivered nor
 * forwarded). DEBUG ONLY: the agent uses it with `--debug-api`, to cut a loopback cluster in two
 * (POST /v1/debug/block) in tests. Block on both sides for a clean partition: a message this peer
 * publishes still reaches its gossip mesh, and the blocked side's filter drops it.
 */
export interface FilteredTransport extends Transport {
  /** Drop all traffic with these peers from now on. */
  block(peers: readonly PeerId[]): void
  /** Let traffic with these peers (all, without an argument) through again. */
  unblock(peers?: readonly PeerId[]): void
  /** The peers blocked now, sorted. */
  blocked(): PeerId[]
}

/** Wrap `inner` (which keeps running underneath; stop() stops it). */
export function createFilteredTransport(inner: Transport): FilteredTransport {
  const blocked = new Set<PeerId>()
  return {
    get selfId() {
      return inner.selfId
    },
    listenAddresses: () => inner.listenAddresses(),
    send(to, protocol, data, opts) {
      if (blocked.has(to)) {
        return Promise.reject(new Error(`debug filter: traffic to ${to} is blocked`))
      }
      return inner.send(to, protocol, data, opts)
    },
    handle(protocol: string, handler: DirectHandler) {
      inner.handle(protocol, (from, data) => {
        if (blocked.has(from)) {
            return
        }
        handler(from, data)
      })
    },
    publish: (topic, data) => inner.publish(topic, data),
    subscribe(topic: string, handler: TopicHandler) {
      inner.subscribe(topic, {
        validate: (from, data) => {
          if (blocked.has(from)) {
                return 'ignore'
          }
          return handler.validate(from, data)
        },
        deliver: (from, data) => {
          if (!blocked.has(from)) handler.deliver(from, data)
        },
      })
    },
    dial: (address, opts) => inner.dial(address, opts),
    hangUp: (peer) => inner.hangUp(peer),
    connectedPeers: () => inner.connectedPeers(),
    on<K extends keyof TransportEvents>(event: K, listener: (detail: TransportEvents[K]) => void) {
      inner.on(event, listener)
    },
    stats: () => inner.stats(),
    stop: () => inner.stop(),
    block(peers) {
      for (const p of peers) blocked.add(p)
    },
    unblock(peers) {
      if (peers === undefined) blocked.clear()
      else for (const p of peers) blocked.delete(p)
    },
    blocked: () => [...blocked].sort(),
  }
}
