import { afterEach, describe, expect, it } from 'vitest'
import { SkeinError } from '../../src/core/errors.ts'
import { generateClusterKey, generateIdentity } from '../../src/transport/libp2p-keys.ts'
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

  it('carries bursts, empty and maximum-size payloads, over one stream opened once', async () => {
    const [a, b] = await Promise.all([fleet.start({ maxMessageBytes: 64 * 1024 }), fleet.start({ maxMessageBytes: 64 * 1024 })])
    const sizes: number[] = []
    b.handle(PROTO, (_from, data) => sizes.push(data.byteLength))
    await a.dial(addr(b))
    // 300 sends at once, before any stream exists: they all wait for the same opening.
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.send(b.selfId, PROTO, new Uint8Array(i))))
    await a.send(b.selfId, PROTO, new Uint8Array(64 * 1024))
    await waitFor('301 deliveries', () => sizes.length === 301)
    expect(sizes.slice(0, 300)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(Math.max(...sizes)).toBe(64 * 1024)
    expect(b.stats()).toMatchObject({ messagesIn: 301, rejected: 0 })
    expect(a.stats()).toMatchObject({ messagesOut: 301, directStreamsOpened: 1, directDropped: 0 })
    expect(a.directStreams(b.selfId, PROTO)).toEqual({ inbound: 0, outbound: 1 })
    expect(b.directStreams(a.selfId, PROTO)).toEqual({ inbound: 1, outbound: 0 })
  })

  it('large messages under backpressure arrive whole and in order; past the queue bound the oldest are dropped', async () => {
    const [a, b] = await Promise.all([fleet.start(), fleet.start()])
    const got: Array<{ first: number; last: number; size: number }> = []
    b.handle(PROTO, (_from, d) => got.push({ first: d[0] ?? -1, last: d[d.byteLength - 1] ?? -1, size: d.byteLength }))
    await a.dial(addr(b))
    const filled = (size: number, i: number): Uint8Array => new Uint8Array(size).fill(i)
    // 3 MiB at once, far beyond yamux's 256 KiB stream window: sends wait for drains.
    const quarter = 256 * 1024
    await Promise.all(Array.from({ length: 12 }, (_, i) => a.send(b.selfId, PROTO, filled(quarter, i))))
    await waitFor('12 large deliveries', () => got.length === 12, 10_000)
    expect(got).toEqual(Array.from({ length: 12 }, (_, i) => ({ first: i, last: i, size: quarter })))
    // 8 MiB at once is over the 4 MiB queue bound: the oldest sends are dropped, the rest arrive.
    got.length = 0
    const mib = 1024 * 1024
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) => a.send(b.selfId, PROTO, filled(mib, i)).then(() => 'sent', (e: unknown) => (e as SkeinError).message)),
    )
    const dropped = outcomes.filter((o) => o !== 'sent')
    expect(dropped.length).toBeGreaterThan(0)
    expect(dropped.every((o) => o.includes('dropped, the queue to this peer is full'))).toBe(true)
    expect(outcomes.slice(dropped.length).every((o) => o === 'sent')).toBe(true)
    await waitFor('the kept messages', () => got.length === 8 - dropped.length, 10_000)
    expect(got.map((g) => g.first)).toEqual(Array.from({ length: 8 - dropped.length }, (_, i) => dropped.length + i))
    expect(a.stats()).toMatchObject({ directStreamsOpened: 1, directDropped: dropped.length })
  })

  it('keeps one stream per peer and protocol: many messages, in order, with the right sender', async () => {
    const [a, b, c] = await Promise.all([fleet.start(), fleet.start(), fleet.start()])
    const got: Array<{ from: string; n: number }> = []
    b.handle(PROTO, (from, data) => got.push({ from, n: Number(text(data)) }))
    b.handle('/skein/other/1', () => undefined)
    const n = 500
    for (let i = 0; i < n; i++) {
      const sends = [a.send(b.selfId, PROTO, utf8(String(i)), { address: addr(b) }), c.send(b.selfId, PROTO, utf8(String(i)), { address: addr(b) })]
      if (i % 50 === 0) await Promise.all(sends)
      else void Promise.all(sends)
    }
    await a.send(b.selfId, '/skein/other/1', utf8('x'))
    await waitFor('all delivered', () => got.length === 2 * n)
    for (const sender of [a, c]) {
      expect(got.filter((g) => g.from === sender.selfId).map((g) => g.n)).toEqual(Array.from({ length: n }, (_, i) => i))
      expect(b.directStreams(sender.selfId, PROTO)).toEqual({ inbound: 1, outbound: 0 })
    }
    expect(a.stats().directStreamsOpened).toBe(2) // PROTO and /skein/other/1
    expect(c.stats().directStreamsOpened).toBe(1)
    expect(b.directStreams(a.selfId, '/skein/other/1')).toEqual({ inbound: 1, outbound: 0 })
    // Replies go over b's own stream to a, not over a's.
    const back: string[] = []
    a.handle(PROTO, (from) => back.push(from))
    for (let i = 0; i < 20; i++) await b.send(a.selfId, PROTO, utf8('pong'))
    await waitFor('replies', () => back.length === 20)
    expect(new Set(back)).toEqual(new Set([b.selfId]))
    expect(a.directStreams(b.selfId, PROTO)).toEqual({ inbound: 1, outbound: 1 })
    expect(b.stats().directStreamsOpened).toBe(1)
    // Hanging up closes the streams at both ends.
    await a.hangUp(b.selfId)
    await waitFor('streams closed at b', () => b.directStreams(a.selfId, PROTO).inbound === 0 && b.directStreams(a.selfId, PROTO).outbound === 0)
    expect(a.directStreams(b.selfId, PROTO)).toEqual({ inbound: 0, outbound: 0 })
  })

  it('reopens transparently after the remote restarts', async () => {
    const identity = await generateIdentity()
    const [a, b0] = await Promise.all([fleet.start(), fleet.start({ identity })])
    const got: string[] = []
    b0.handle(PROTO, (_from, data) => got.push(text(data)))
    const where = addr(b0)
    for (let i = 0; i < 10; i++) await a.send(b0.selfId, PROTO, utf8(`before ${i}`), { address: where })
    await waitFor('first deliveries', () => got.length === 10)
    await b0.stop()
    await waitFor('a sees the connection go', () => a.connectedPeers().length === 0)
    // Nobody listens: a send fails (and does not hang).
    await expect(a.send(b0.selfId, PROTO, utf8('lost'), { address: where, signal: AbortSignal.timeout(3_000) })).rejects.toMatchObject({ code: 'send-failed' })
    // Same peer, same port, new process: the next send dials it and opens a new stream.
    const b1 = await fleet.start({ identity, listen: where })
    b1.handle(PROTO, (_from, data) => got.push(text(data)))
    for (let i = 0; i < 10; i++) await a.send(b1.selfId, PROTO, utf8(`after ${i}`), { address: where })
    await waitFor('deliveries after the restart', () => got.length === 20)
    expect(got.slice(10)).toEqual(Array.from({ length: 10 }, (_, i) => `after ${i}`))
    expect(a.stats().directStreamsOpened).toBe(2)
    expect(a.directStreams(b1.selfId, PROTO)).toEqual({ inbound: 0, outbound: 1 })
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
    const backPerMessage = (after.bytesIn - before.bytesIn) / n
    // One long-lived stream: per message a yamux header (12), the noise length and tag (18) and
    // the varint (1); back, yamux's window update (30). One stream per message cost ≈ 213 + 182.
    expect(perMessage).toBeGreaterThan(100)
    expect(perMessage).toBeLessThan(100 + 40)
    expect(backPerMessage).toBeLessThan(40)
    expect(after.directStreamsOpened).toBe(1)
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
