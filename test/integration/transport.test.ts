import { afterEach, describe, expect, it } from 'vitest'
import { SkeinError } from '../../src/core/errors.ts'
import { generateClusterKey } from '../../src/transport/libp2p-keys.ts'
import type { Libp2pTransport } from '../../src/transport/libp2p.ts'
import type { Verdict } from '../../src/transport/types.ts'
import { Fleet, addr, portOf, text, utf8, waitFor } from './transport-helpers.ts'

const PROTO = '/skein/test/1'
const fleet = new Fleet()
afterEach(() => fleet.stopAll())

/** Three transports connected to each other, all subscribed to `topic` with `validate`. */
async function trio(topic: string, validate: (data: Uint8Array) => Verdict) {
  const ts = await Promise.all([fleet.start(), fleet.start(), fleet.start()])
  const delivered = ts.map(() => [] as Array<{ from: string; data: string }>)
  ts.forEach((t, i) =>
    t.subscribe(topic, {
      validate: (_from, data) => validate(data),
      deliver: (from, data) => delivered[i]?.push({ from, data: text(data) }),
    }),
  )
  const [a, b, c] = ts as [Libp2pTransport, Libp2pTransport, Libp2pTransport]
  await Promise.all([a.dial(addr(b)), a.dial(addr(c)), b.dial(addr(c))])
  return { a, b, c, delivered }
}

/**
 * Publish probes until `cond` holds: subscriptions travel only after identify, so the first
 * publishes after a connect may find no subscriber. Returns the time to the first delivery.
 */
async function probeUntil(t: Libp2pTransport, topic: string, cond: () => boolean, ms = 5_000): Promise<number> {
  const start = Date.now()
  for (let i = 0; !cond(); i++) {
    if (Date.now() - start > ms) throw new Error(`no gossip delivery within ${ms} ms`)
    await t.publish(topic, utf8(`probe ${i}`))
    await new Promise((r) => setTimeout(r, 20))
  }
  return Date.now() - start
}

describe('libp2p transport: direct messages', () => {
  it('delivers with the authenticated sender as `from`, dialing the given address', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    const got: Array<{ from: string; data: string }> = []
    b.handle(PROTO, (from, data) => got.push({ from, data: text(data) }))
    expect(a.connectedPeers()).toEqual([])
    await a.send(b.selfId, PROTO, utf8('hello'), { address: addr(b) })
    await waitFor('delivery', () => got.length === 1)
    expect(got[0]).toEqual({ from: a.selfId, data: 'hello' })
    expect(a.connectedPeers()).toEqual([b.selfId])
    // The connection is reused, and b can answer over it without an address.
    const back: string[] = []
    a.handle(PROTO, (from) => back.push(from))
    await b.send(a.selfId, PROTO, utf8('hi'))
    await waitFor('reply', () => back.length === 1)
    expect(back).toEqual([b.selfId])
  })

  it('carries bursts, empty and maximum-size payloads', async () => {
    const [a, b] = await Promise.all([fleet.start({ maxMessageBytes: 64 * 1024 }), fleet.start({ maxMessageBytes: 64 * 1024 })])
    const sizes: number[] = []
    b.handle(PROTO, (_from, data) => sizes.push(data.byteLength))
    await a.dial(addr(b))
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.send(b.selfId, PROTO, new Uint8Array(i))))
    await a.send(b.selfId, PROTO, new Uint8Array(64 * 1024))
    await waitFor('301 deliveries', () => sizes.length === 301)
    expect(Math.max(...sizes)).toBe(64 * 1024)
    expect(b.stats()).toMatchObject({ messagesIn: 301, rejected: 0 })
    expect(a.stats().messagesOut).toBe(301)
  })

  it('refuses to send more than maxMessageBytes', async () => {
    const [a, b] = await Promise.all([fleet.start({ maxMessageBytes: 1000 }), fleet.start()])
    await expect(a.send(b.selfId, PROTO, new Uint8Array(1001), { address: addr(b) })).rejects.toMatchObject({ code: 'message-too-large' })
  })

  it('rejects a send to a protocol the peer does not handle', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    await expect(a.send(b.selfId, '/skein/nope/1', utf8('x'), { address: addr(b) })).rejects.toMatchObject({ code: 'send-failed' })
  })

  it('rejects a send to an unknown peer with no address', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    const peer = b.selfId
    await b.stop()
    await expect(a.send(peer, PROTO, utf8('x'), { signal: AbortSignal.timeout(2_000) })).rejects.toBeInstanceOf(SkeinError)
  })

  it('reports connects and disconnects, and hangs up', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    const events: string[] = []
    b.on('peer:connect', (p) => events.push(`connect ${p === a.selfId}`))
    b.on('peer:disconnect', (p) => events.push(`disconnect ${p === a.selfId}`))
    expect(await a.dial(addr(b))).toBe(b.selfId)
    await waitFor('connect event', () => events.length === 1)
    expect(b.connectedPeers()).toEqual([a.selfId])
    await a.hangUp(b.selfId)
    await waitFor('disconnect event', () => events.length === 2)
    expect(events).toEqual(['connect true', 'disconnect true'])
    expect(b.connectedPeers()).toEqual([])
  })

  it('counts wire bytes and payload bytes', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    b.handle(PROTO, () => undefined)
    await a.dial(addr(b))
    await waitFor('identify settles', () => a.stats().bytesOut > 0)
    const before = a.stats()
    const n = 200
    for (let i = 0; i < n; i++) await a.send(b.selfId, PROTO, new Uint8Array(100))
    await waitFor('all delivered', () => b.stats().messagesIn === n)
    const after = a.stats()
    expect(after.wireBytes).toBe(true)
    expect(after.payloadBytesOut - before.payloadBytesOut).toBe(100 * n)
    const perMessage = (after.bytesOut - before.bytesOut) / n
    // One stream per message: yamux open/close, multistream header, noise tag. Well under 1 KiB.
    expect(perMessage).toBeGreaterThan(100)
    expect(perMessage).toBeLessThan(600)
  })
})

describe('libp2p transport: gossip', () => {
  it('delivers a publish to every other subscriber, with the author as `from`', async () => {
    const { a, delivered } = await trio('t', () => 'accept')
    await probeUntil(a, 't', () => delivered[1]?.length !== 0 && delivered[2]?.length !== 0)
    await a.publish('t', utf8('last'))
    await waitFor('last message everywhere', () => [1, 2].every((i) => delivered[i]?.some((m) => m.data === 'last')))
    expect(delivered[0]).toEqual([])
    expect(delivered[1]?.every((m) => m.from === a.selfId)).toBe(true)
    expect(delivered[2]?.every((m) => m.from === a.selfId)).toBe(true)
  })

  it('a rejecting validator stops delivery and lowers the sender score', async () => {
    const { a, b, c, delivered } = await trio('t', (d) => (text(d).startsWith('bad') ? 'reject' : 'accept'))
    await probeUntil(a, 't', () => delivered[1]?.length !== 0 && delivered[2]?.length !== 0)
    await a.publish('t', utf8('bad 1'))
    await a.publish('t', utf8('good 1'))
    await waitFor('good message everywhere', () => [1, 2].every((i) => delivered[i]?.some((m) => m.data === 'good 1')))
    for (const i of [1, 2]) expect(delivered[i]?.some((m) => m.data.startsWith('bad'))).toBe(false)
    await waitFor('rejections counted', () => b.stats().rejected >= 1 && c.stats().rejected >= 1)
    await waitFor('a penalised at b', () => b.gossipScore(a.selfId) < 0)
    expect(c.gossipScore(b.selfId)).toBeGreaterThanOrEqual(0)
  })

  it('three rejected messages graylist the sender: its later messages are ignored', async () => {
    const { a, b, c, delivered } = await trio('t', (d) => (text(d).startsWith('bad') ? 'reject' : 'accept'))
    await probeUntil(a, 't', () => delivered[1]?.length !== 0 && delivered[2]?.length !== 0)
    for (let i = 0; i < 3; i++) await a.publish('t', utf8(`bad ${i}`))
    await waitFor('a graylisted at b and c', () => b.gossipScore(a.selfId) < -80 && c.gossipScore(a.selfId) < -80)
    // gossipsub keeps accepting, for up to 1 s, from a peer it last saw with a score >= 0.
    await new Promise((r) => setTimeout(r, 1_100))
    await a.publish('t', utf8('good after'))
    // b and c still hear each other...
    await probeUntil(b, 't', () => delivered[2]?.some((m) => m.from === b.selfId) === true)
    await new Promise((r) => setTimeout(r, 300))
    // ...but not a.
    expect(delivered[1]?.some((m) => m.data === 'good after')).toBe(false)
    expect(delivered[2]?.some((m) => m.data === 'good after')).toBe(false)
  })

  it('publishing with no subscribers resolves', async () => {
    const a = await fleet.start()
    await a.publish('nobody', utf8('x'))
    expect(a.stats().messagesOut).toBe(1)
  })
})

describe('libp2p transport: cluster key', () => {
  it('a peer with another cluster key cannot connect, in either direction', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    const outsider = await fleet.start({ clusterKey: generateClusterKey() })
    let handled = 0
    const connects: string[] = []
    for (const t of [a, b]) {
      t.handle(PROTO, () => handled++)
      t.subscribe('t', { validate: () => 'accept', deliver: () => handled++ })
      t.on('peer:connect', (p) => connects.push(p))
    }
    outsider.handle(PROTO, () => handled++)
    await a.dial(addr(b))
    const signal = (): AbortSignal => AbortSignal.timeout(6_000)
    await expect(outsider.dial(addr(a), { signal: signal() })).rejects.toMatchObject({
      code: 'wrong-cluster-key',
      message: `cannot connect to ${addr(a)}: the peer there has a different cluster key`,
    })
    await expect(outsider.send(b.selfId, PROTO, utf8('x'), { address: addr(b), signal: signal() })).rejects.toMatchObject({ code: 'wrong-cluster-key' })
    await expect(a.dial(addr(outsider), { signal: signal() })).rejects.toMatchObject({ code: 'wrong-cluster-key' })
    await outsider.publish('t', utf8('x'))
    expect(handled).toBe(0)
    expect(connects).not.toContain(outsider.selfId)
    expect(a.connectedPeers()).toEqual([b.selfId])
    expect(b.connectedPeers()).toEqual([a.selfId])
    expect(outsider.connectedPeers()).toEqual([])
  })
})

describe('libp2p transport: addresses', () => {
  it('reads back the bound port and prefers the advertised address', async () => {
    const a = await fleet.start()
    expect(portOf(a)).toBeGreaterThan(0)
    expect(addr(a)).toBe(`127.0.0.1:${portOf(a)}`)
    const b = await fleet.start({ advertise: 'node-b.example:7946' })
    expect(b.listenAddresses()).toEqual(['node-b.example:7946'])
  })

  it('a port in use is a SkeinError with code port-in-use', async () => {
    const a = await fleet.start()
    const err = await fleet.start({ listen: addr(a) }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SkeinError)
    expect(err).toMatchObject({ code: 'port-in-use' })
    expect((err as SkeinError).oneLine()).toBe(
      `cannot listen on ${addr(a)}: the port is in use (is another skein agent running? choose another with --listen)`,
    )
  })

  it('stop is idempotent and later calls fail clearly', async () => {
    const a = await fleet.start()
    await a.stop()
    await a.stop()
    await expect(a.publish('t', utf8('x'))).rejects.toMatchObject({ code: 'transport-stopped' })
    await expect(a.send(a.selfId, PROTO, utf8('x'))).rejects.toMatchObject({ code: 'transport-stopped' })
  })
})
