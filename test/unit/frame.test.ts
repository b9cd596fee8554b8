import { describe, expect, it } from 'vitest'
import type { Stream } from '@libp2p/interface'
import { silentLogger } from '../../src/core/logger.ts'
import { DirectChannels, type ChannelsInit } from '../../src/transport/libp2p-channel.ts'
import { encodeFrame, FrameReader, varintLength, type FrameRefusal } from '../../src/transport/libp2p-direct.ts'

/** Feed chunks to a reader; the frames it gave, and the refusal or end result. */
function readAll(chunks: Uint8Array[], maxBytes: number, end = true): { frames: Uint8Array[]; refusal: FrameRefusal | undefined } {
  const r = new FrameReader(maxBytes)
  const frames: Uint8Array[] = []
  for (const c of chunks) {
    const refusal = r.push(c, (f) => frames.push(f))
    if (refusal !== undefined) return { frames, refusal }
  }
  return { frames, refusal: end ? r.end() : undefined }
}

function bytes(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i + seed) % 251
  return out
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]))
}

describe('direct frames', () => {
  it.each([0, 1, 127, 128, 300, 16_383, 16_384, 1_048_576])('round-trips %i bytes', (n) => {
    const data = bytes(n)
    const frame = encodeFrame(data)
    expect(frame.byteLength).toBe(varintLength(n) + n)
    const { frames, refusal } = readAll([frame], 1_048_576)
    expect(refusal).toBeUndefined()
    expect(frames).toHaveLength(1)
    expect(Buffer.from(frames[0] as Uint8Array).equals(Buffer.from(data))).toBe(true)
  })

  it('writes the same prefix as protobuf varints', () => {
    expect([...encodeFrame(bytes(300)).subarray(0, 2)]).toEqual([0xac, 0x02])
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0])
  })

  it('reads a sequence of frames, in one chunk or split at every byte', () => {
    const payloads = [bytes(200, 1), new Uint8Array(0), bytes(3, 2), bytes(130, 3)]
    const stream = concat(payloads.map(encodeFrame))
    expect(readAll([stream], 1000)).toEqual({ frames: payloads, refusal: undefined })
    const split = readAll([...stream].map((b) => Uint8Array.of(b)), 1000)
    expect(split).toEqual({ frames: payloads, refusal: undefined })
  })

  it('copies frames out of the chunk it was given', () => {
    const chunk = encodeFrame(bytes(10))
    const { frames } = readAll([chunk], 100)
    chunk.fill(0)
    expect(frames[0]).toEqual(bytes(10))
  })

  it('refuses an oversized prefix before the body arrives, after good frames too', () => {
    const r = new FrameReader(1000)
    const got: Uint8Array[] = []
    // A good frame, then 1001 = 0xe9 0x07: refused on the second prefix byte, with no body.
    expect(r.push(concat([encodeFrame(bytes(5)), Uint8Array.of(0xe9)]), (f) => got.push(f))).toBeUndefined()
    expect(r.midFrame).toBe(true)
    expect(r.push(Uint8Array.of(0x07), (f) => got.push(f))).toEqual({ oversized: true, reason: expect.stringContaining('limit of 1000') })
    expect(got).toEqual([bytes(5)])
    // Input after a refusal is ignored.
    expect(r.push(encodeFrame(bytes(1)), (f) => got.push(f))).toBeUndefined()
    expect(got).toHaveLength(1)
  })

  it('holds only the bytes received of the frame in progress', () => {
    const r = new FrameReader(1_000_000)
    r.push(Uint8Array.of(0xc0, 0x84, 0x3d), () => undefined) // announces 1,000,000 bytes
    expect(r.buffered).toBe(0)
    r.push(bytes(10), () => undefined)
    expect(r.buffered).toBe(10)
  })

  it('refuses a prefix that never ends', () => {
    const { refusal } = readAll([Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80)], 2 ** 40)
    expect(refusal).toEqual({ oversized: false, reason: 'malformed length prefix' })
  })

  it('ends cleanly on a frame boundary, and refuses truncated frames and empty streams', () => {
    expect(readAll([encodeFrame(bytes(3)), encodeFrame(bytes(4))], 100).refusal).toBeUndefined()
    expect(readAll([Uint8Array.of(10, 1, 2, 3)], 100).refusal).toMatchObject({ reason: 'truncated frame: 3 of 10 bytes' })
    expect(readAll([encodeFrame(bytes(2)), Uint8Array.of(2, 1)], 100).refusal).toMatchObject({ reason: 'truncated frame: 1 of 2 bytes' })
    expect(readAll([], 100).refusal).toMatchObject({ reason: 'empty stream' })
    expect(readAll([Uint8Array.of(0x80)], 100).refusal).toMatchObject({ reason: 'truncated length prefix' })
  })
})

/** Just enough of a libp2p stream for DirectChannels: records frames, can saturate and die. */
class FakeStream extends EventTarget {
  status: Stream['status'] = 'open'
  writeStatus: Stream['writeStatus'] = 'writable'
  writableNeedsDrain = false
  writeBufferLength = 0
  readonly sent: Uint8Array[] = []
  /** When set, send() keeps the frame in the write buffer and asks for a drain. */
  saturate = false

  send(data: Uint8Array): boolean {
    if (this.status !== 'open') throw new Error(`stream is ${this.status}`)
    this.sent.push(data)
    if (!this.saturate) return true
    this.writeBufferLength += data.byteLength
    this.writableNeedsDrain = true
    return false
  }

  /** The remote caught up: the buffer empties. */
  drain(): void {
    this.writeBufferLength = 0
    this.writableNeedsDrain = false
    this.dispatchEvent(new Event('idle'))
    this.dispatchEvent(new Event('drain'))
  }

  abort(): void {
    this.die('aborted')
  }

  die(status: 'reset' | 'aborted' = 'reset'): void {
    if (this.status !== 'open') return
    this.status = status
    this.writeStatus = 'closed'
    this.dispatchEvent(new Event('close'))
  }

  async close(): Promise<void> {
    this.writeStatus = 'closed'
    this.status = 'closed'
    this.dispatchEvent(new Event('close'))
  }
}

function channels(overrides: Partial<ChannelsInit> = {}) {
  const opened: FakeStream[] = []
  let opens = 0
  const c = new DirectChannels({
    log: silentLogger(),
    maxQueued: 100,
    maxQueuedBytes: 1_000_000,
    openTimeoutMs: 1_000,
    stallMs: 200,
    open: async () => {
      opens++
      await new Promise((r) => setTimeout(r, 5))
      const s = new FakeStream()
      opened.push(s)
      return s as unknown as Stream
    },
    ...overrides,
  })
  return { c, opened, opens: () => opens }
}

const frame = (i: number): Uint8Array => encodeFrame(Uint8Array.of(i))
const signal = (): AbortSignal => AbortSignal.timeout(2_000)

describe('DirectChannels', () => {
  it('sends concurrent messages in order over one stream, opened once', async () => {
    const { c, opened, opens } = channels()
    await Promise.all(Array.from({ length: 50 }, (_, i) => c.send('p', '/x', frame(i), { signal: signal() })))
    await c.send('p', '/x', frame(50), { signal: signal() })
    expect(opens()).toBe(1)
    expect(opened[0]?.sent).toEqual(Array.from({ length: 51 }, (_, i) => frame(i)))
    expect(c.stats()).toMatchObject({ streamsOpened: 1, openChannels: 1 })
    // Another protocol or peer is another channel.
    await c.send('p', '/y', frame(0), { signal: signal() })
    await c.send('q', '/x', frame(0), { signal: signal() })
    expect(opens()).toBe(3)
  })

  it('drops the oldest waiting sends when the queue is full', async () => {
    const { c, opened } = channels({ maxQueued: 3 })
    const results = Array.from({ length: 6 }, (_, i) => c.send('p', '/x', frame(i), { signal: signal() }).then(() => 'ok', (e: unknown) => (e as Error).message))
    expect(await Promise.all(results)).toEqual([
      expect.stringContaining('dropped, the queue to this peer is full'),
      expect.stringContaining('dropped'),
      expect.stringContaining('dropped'),
      'ok',
      'ok',
      'ok',
    ])
    expect(opened[0]?.sent).toEqual([frame(3), frame(4), frame(5)])
    expect(c.stats().dropped).toBe(3)
  })

  it('waits for drain before writing more, and resolves a send once its frame is flushed', async () => {
    const { c, opened } = channels()
    await c.send('p', '/x', frame(0), { signal: signal() })
    const s = opened[0] as FakeStream
    s.saturate = true
    let firstDone = false
    const first = c.send('p', '/x', frame(1), { signal: signal() }).then(() => (firstDone = true))
    const second = c.send('p', '/x', frame(2), { signal: signal() })
    await new Promise((r) => setTimeout(r, 20))
    expect(firstDone).toBe(false)
    expect(s.sent).toHaveLength(2) // frame 2 waits in our queue, not in the stream's buffer
    s.saturate = false
    s.drain()
    await Promise.all([first, second])
    expect(s.sent).toEqual([frame(0), frame(1), frame(2)])
  })

  it('resets a stream that stays saturated, and retries the frame on a fresh one', async () => {
    const { c, opened } = channels({ stallMs: 50 })
    await c.send('p', '/x', frame(0), { signal: signal() })
    ;(opened[0] as FakeStream).saturate = true
    await c.send('p', '/x', frame(1), { signal: signal() })
    expect(opened[0]?.status).toBe('aborted')
    expect(opened[1]?.sent).toEqual([frame(1)])
  })

  it('reopens after the stream dies, and fails every waiting send when the open fails', async () => {
    let fail = false
    const opened: FakeStream[] = []
    const { c } = channels({
      open: async () => {
        if (fail) throw new Error('connection refused')
        return (await openFake(opened)) as unknown as Stream
      },
    })
    await c.send('p', '/x', frame(0), { signal: signal() })
    ;(opened[0] as FakeStream).die()
    await c.send('p', '/x', frame(1), { signal: signal() })
    expect(opened).toHaveLength(2)
    expect(opened[1]?.sent).toEqual([frame(1)])
    opened[1]?.die()
    fail = true
    const outcomes = await Promise.all([0, 1, 2].map((i) => c.send('p', '/x', frame(i), { signal: signal() }).catch((e: unknown) => (e as Error).message)))
    expect(outcomes).toEqual(['connection refused', 'connection refused', 'connection refused'])
    expect(c.stats().openChannels).toBe(0)
  })

  it('an aborted send leaves the queue; close() fails the rest and closes the stream', async () => {
    const { c, opened } = channels()
    await c.send('p', '/x', frame(0), { signal: signal() })
    const s = opened[0] as FakeStream
    s.saturate = true
    const stuck = c.send('p', '/x', frame(1), { signal: signal() }).catch((e: unknown) => (e as Error).message)
    const ac = new AbortController()
    const aborted = c.send('p', '/x', frame(2), { signal: ac.signal }).catch((e: unknown) => (e as Error).message)
    const waiting = c.send('p', '/x', frame(3), { signal: signal() }).catch((e: unknown) => (e as Error).message)
    ac.abort(new Error('gave up'))
    expect(await aborted).toBe('gave up')
    await c.close('p', 'hung up')
    expect(await waiting).toContain('hung up')
    expect(s.status).toBe('closed')
    // The in-flight frame was already handed to the stream.
    expect(s.sent).toEqual([frame(0), frame(1)])
    expect(await stuck).toEqual(expect.any(String))
  })
})

async function openFake(into: FakeStream[]): Promise<FakeStream> {
  await new Promise((r) => setTimeout(r, 5))
  const s = new FakeStream()
  into.push(s)
  return s
}
