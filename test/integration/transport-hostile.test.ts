import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Stream } from '@libp2p/interface'
import { encodeFrame, serveInbound } from '../../src/transport/libp2p-direct.ts'
import { formatAddress, generateIdentity, parseAddress, parseListenAddress } from '../../src/transport/libp2p-keys.ts'
import { createLibp2pNode, type SkeinLibp2p } from '../../src/transport/libp2p-node.ts'
import { WireCounter } from '../../src/transport/libp2p-protector.ts'
import type { Libp2pTransport } from '../../src/transport/libp2p.ts'
import { Fleet, addr, portOf, text, utf8, waitFor } from './transport-helpers.ts'

const PROTO = '/skein/test/1'
const MAX = 64 * 1024
const fleet = new Fleet()
afterEach(() => fleet.stopAll())

/** A target transport that counts handler calls, and a well-behaved peer connected to it. */
async function target(opts: { readTimeoutMs?: number } = {}) {
  const victim = await fleet.start({ maxMessageBytes: MAX, ...opts })
  const good = await fleet.start()
  const got: string[] = []
  victim.handle(PROTO, (_from, data) => got.push(text(data)))
  victim.subscribe('t', { validate: () => 'accept', deliver: (_from, data) => got.push(`gossip ${text(data)}`) })
  good.subscribe('t', { validate: () => 'accept', deliver: () => undefined })
  return { victim, good, got }
}

/** The victim still serves a good peer: a direct message and a gossip message get through. */
async function stillServes(victim: Libp2pTransport, good: Libp2pTransport, got: string[]): Promise<void> {
  const n = got.length
  await good.send(victim.selfId, PROTO, utf8('still here'), { address: addr(victim) })
  await waitFor('direct message after the attack', () => got.includes('still here'))
  const start = Date.now()
  for (let i = 0; !got.some((g) => g.startsWith('gossip')); i++) {
    if (Date.now() - start > 5_000) throw new Error('no gossip after the attack')
    await good.publish('t', utf8(`g${i}`))
    await new Promise((r) => setTimeout(r, 20))
  }
  expect(got.length).toBeGreaterThan(n)
}

/** A bare libp2p node in the same cluster, to write hand-made bytes on protocol streams. */
async function rawNode(): Promise<SkeinLibp2p> {
  const node = await createLibp2pNode({
    identity: await generateIdentity(),
    clusterKey: fleet.clusterKey,
    listen: parseListenAddress('127.0.0.1:0'),
    maxMessageBytes: MAX,
    loopbackColocation: true,
    wire: new WireCounter(),
  })
  fleet.track({ stop: async () => node.stop() })
  return node
}

async function rawStream(node: SkeinLibp2p, to: Libp2pTransport, protocol = PROTO): Promise<Stream> {
  return node.dialProtocol(parseAddress(addr(to), to.selfId), protocol)
}

/** Resolves with the stream's final status once it closes (bounded). */
async function closed(stream: Stream, ms = 3_000): Promise<string> {
  if (stream.status !== 'open') return stream.status
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stream still ${stream.status} after ${ms} ms`)), ms)
    stream.addEventListener('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  return stream.status
}

/** A plain TCP socket to a port; errors (resets) are expected and swallowed. */
function tcpSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.on('error', () => undefined)
    s.once('error', reject)
    fleet.track({ stop: async () => void s.destroy() })
  })
}

function socketClosed(s: Socket, ms = 3_000): Promise<void> {
  if (s.closed) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms)
    s.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

describe('libp2p transport under hostile input', () => {
  it('survives raw garbage on its TCP port and keeps serving', async () => {
    const { victim, good, got } = await target()
    const noisy = await tcpSocket(portOf(victim))
    noisy.write(randomBytes(64 * 1024))
    // The garbage fails the cluster greeting: the victim hangs up at once.
    await socketClosed(noisy)
    // A socket that sends a few bytes and then nothing ties up no more than itself.
    const silent = await Promise.all(Array.from({ length: 12 }, () => tcpSocket(portOf(victim))))
    for (const s of silent) s.write(randomBytes(5))
    await stillServes(victim, good, got)
    expect(victim.connectedPeers()).toEqual([good.selfId])
    for (const s of silent) s.destroy()
  })

  it('refuses an oversized length prefix before reading the body', async () => {
    const { victim, good, got } = await target()
    const raw = await rawNode()
    const s = await rawStream(raw, victim)
    // A prefix announcing MAX + 1 bytes, and no body at all: refused on the prefix alone.
    const prefix = encodeVarint(MAX + 1)
    s.send(prefix)
    expect(await closed(s)).toBe('reset')
    await waitFor('rejection counted', () => victim.stats().rejected === 1)
    // A prefix of 2^34 followed by a stream of data: reset, nothing delivered.
    const s2 = await rawStream(raw, victim)
    s2.send(encodeVarint(2 ** 34))
    for (let i = 0; i < 32 && s2.status === 'open'; i++) {
      try {
        s2.send(randomBytes(64 * 1024))
      } catch {
        break
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(await closed(s2)).toBe('reset')
    await waitFor('second rejection counted', () => victim.stats().rejected === 2)
    expect(got).toEqual([])
    await stillServes(victim, good, got)
  })

  it('drops malformed frames without calling the handler', async () => {
    const { victim, good, got } = await target({ readTimeoutMs: 300 })
    const raw = await rawNode()
    const cases: Array<{ name: string; bytes: Uint8Array; close: boolean }> = [
      { name: 'truncated body', bytes: Uint8Array.of(10, 1, 2, 3), close: true },
      // Bytes after a frame are the next frame (a stream carries many): here a good frame ('A')
      // then one cut short. The first is delivered, the second refused.
      { name: 'second frame cut short', bytes: Uint8Array.of(1, 0x41, 3, 4, 5), close: true },
      { name: 'endless varint', bytes: Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80), close: true },
      { name: 'empty stream', bytes: new Uint8Array(0), close: true },
      { name: 'stalled sender', bytes: Uint8Array.of(10, 1), close: false },
    ]
    for (const [i, c] of cases.entries()) {
      const s = await rawStream(raw, victim)
      if (c.bytes.byteLength > 0) s.send(c.bytes)
      if (c.close) await s.close()
      else await closed(s)
      await waitFor(`rejection of ${c.name}`, () => victim.stats().rejected === i + 1)
    }
    expect(got).toEqual(['A'])
    // A well-formed frame on a raw stream still gets through.
    const ok = await rawStream(raw, victim)
    ok.send(Uint8Array.of(2, 0x68, 0x69))
    await ok.close()
    await waitFor('well-formed raw frame', () => got.includes('hi'))
    await stillServes(victim, good, got)
  })

  it('a long-lived stream: idle between frames is fine, a bad frame resets it, a new stream works', async () => {
    const { victim, good, got } = await target({ readTimeoutMs: 300 })
    const raw = await rawNode()
    const s = await rawStream(raw, victim)
    s.send(concat([frame('one'), frame('two')]))
    await waitFor('two frames', () => got.length === 2)
    // Idle for longer than the frame deadline: the stream stays open.
    await new Promise((r) => setTimeout(r, 700))
    expect(s.status).toBe('open')
    s.send(frame('three'))
    await waitFor('third frame', () => got.length === 3)
    expect(victim.directStreams(raw.peerId.toString(), PROTO)).toEqual({ inbound: 1, outbound: 0 })
    // A malformed prefix after good frames: reset, counted, nothing more delivered from it.
    s.send(concat([frame('four'), Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80), frame('never')]))
    expect(await closed(s)).toBe('reset')
    await waitFor('rejection counted', () => victim.stats().rejected === 1)
    expect(got).toEqual(['one', 'two', 'three', 'four'])
    expect(victim.directStreams(raw.peerId.toString(), PROTO)).toEqual({ inbound: 0, outbound: 0 })
    // The sender opens a new stream on the same connection, and is served.
    const s2 = await rawStream(raw, victim)
    s2.send(frame('five'))
    await waitFor('frame on a new stream', () => got.includes('five'))
    await stillServes(victim, good, got)
  })

  it('an oversized frame from a real sender resets its stream; its next send opens a new one', async () => {
    const { victim, got } = await target()
    const sender = await fleet.start({ maxMessageBytes: 4 * MAX })
    for (let i = 0; i < 5; i++) await sender.send(victim.selfId, PROTO, utf8(`m${i}`), { address: addr(victim) })
    await waitFor('first messages', () => got.length === 5)
    // Within the sender's limit, over the victim's: written, then refused on its prefix.
    await sender.send(victim.selfId, PROTO, new Uint8Array(MAX + 1))
    await waitFor('oversized refused', () => victim.stats().rejected === 1)
    await waitFor('the reset reaches the sender', () => sender.directStreams(victim.selfId, PROTO).outbound === 0)
    await sender.send(victim.selfId, PROTO, utf8('after'))
    await waitFor('delivery on a new stream', () => got.includes('after'))
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'after'])
    expect(sender.stats().directStreamsOpened).toBe(2)
    expect(victim.directStreams(sender.selfId, PROTO)).toEqual({ inbound: 1, outbound: 0 })
  })

  it('a connection that dies abruptly: the next send dials again and opens a new stream', async () => {
    const sender = await fleet.start()
    const receiver = await rawNode()
    const got: string[] = []
    await receiver.handle(PROTO, (stream) =>
      serveInbound(stream, { maxBytes: MAX, frameTimeoutMs: 1_000, onFrame: (d) => got.push(text(d)), onRefused: () => undefined }),
    )
    const where = formatAddress(receiver.getMultiaddrs()[0]!)
    const to = receiver.peerId.toString()
    for (let i = 0; i < 5; i++) await sender.send(to, PROTO, utf8(`a${i}`), { address: where })
    await waitFor('first messages', () => got.length === 5)
    for (const conn of receiver.getConnections()) conn.abort(new Error('killed'))
    await waitFor('sender sees the connection die', () => sender.connectedPeers().length === 0)
    for (let i = 0; i < 5; i++) await sender.send(to, PROTO, utf8(`b${i}`), { address: where })
    await waitFor('messages after the reconnect', () => got.length === 10)
    expect(got.slice(5)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4'])
    expect(sender.stats().directStreamsOpened).toBe(2)
    expect(sender.directStreams(to, PROTO)).toEqual({ inbound: 0, outbound: 1 })
  })

  it('survives garbage on the gossipsub protocol', async () => {
    const { victim, good, got } = await target()
    const raw = await rawNode()
    const s = await rawStream(raw, victim, '/meshsub/1.2.0')
    s.send(randomBytes(4096))
    s.send(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f))
    await s.close().catch(() => undefined)
    await stillServes(victim, good, got)
  })
})

function frame(s: string): Uint8Array {
  return encodeFrame(utf8(s))
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]))
}

function encodeVarint(n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 128) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}
