import { describe, expect, it } from 'vitest'
import { encodeFrame, FrameDecoder, InflightLimiter, varintLength, type FrameResult } from '../../src/transport/libp2p-direct.ts'

function decodeAll(chunks: Uint8Array[], maxBytes: number): FrameResult {
  const d = new FrameDecoder(maxBytes)
  for (const c of chunks) {
    const r = d.push(c)
    if (r !== undefined) return r
  }
  return d.end()
}

function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = i % 251
  return out
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

describe('direct frames', () => {
  it.each([0, 1, 127, 128, 300, 16_383, 16_384, 1_048_576])('round-trips %i bytes', (n) => {
    const data = bytes(n)
    const frame = encodeFrame(data)
    expect(frame.byteLength).toBe(varintLength(n) + n)
    const r = decodeAll([frame], 1_048_576)
    expect(r.ok && same(r.data, data)).toBe(true)
  })

  it('writes the same prefix as protobuf varints', () => {
    expect([...encodeFrame(bytes(300)).subarray(0, 2)]).toEqual([0xac, 0x02])
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0])
  })

  it('decodes a frame split at every byte', () => {
    const data = bytes(200)
    const frame = encodeFrame(data)
    const chunks = [...frame].map((b) => Uint8Array.of(b))
    const r = decodeAll(chunks, 1000)
    expect(r.ok && r.data).toEqual(data)
  })

  it('refuses an oversized prefix before the body arrives', () => {
    const d = new FrameDecoder(1000)
    // 1001 = 0xe9 0x07: refused on the second prefix byte, with no body.
    expect(d.push(Uint8Array.of(0xe9))).toBeUndefined()
    const r = d.push(Uint8Array.of(0x07))
    expect(r).toEqual({ ok: false, oversized: true, reason: expect.stringContaining('limit of 1000') })
  })

  it('refuses a prefix that never ends', () => {
    const r = decodeAll([Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80)], 2 ** 40)
    expect(r).toMatchObject({ ok: false, oversized: false, reason: 'malformed length prefix' })
  })

  it('refuses truncated frames, empty streams and trailing bytes', () => {
    expect(decodeAll([Uint8Array.of(10, 1, 2, 3)], 100)).toMatchObject({ ok: false, reason: 'truncated frame: 3 of 10 bytes' })
    expect(decodeAll([], 100)).toMatchObject({ ok: false, reason: 'empty stream' })
    expect(decodeAll([Uint8Array.of(0x80)], 100)).toMatchObject({ ok: false, reason: 'truncated length prefix' })
    expect(decodeAll([Uint8Array.of(2, 1, 2, 3)], 100)).toMatchObject({ ok: false, reason: 'trailing bytes after the frame' })
  })

  it('ignores input after it has decided', () => {
    const d = new FrameDecoder(100)
    expect(d.push(Uint8Array.of(1, 9))).toMatchObject({ ok: true })
    expect(d.push(Uint8Array.of(1, 2, 3))).toBeUndefined()
  })
})

describe('InflightLimiter', () => {
  const never = new AbortController().signal
  const settled = async (p: Promise<unknown>): Promise<boolean> => {
    let done = false
    void p.then(
      () => (done = true),
      () => (done = true),
    )
    for (let i = 0; i < 5; i++) await Promise.resolve()
    return done
  }

  it('lets `limit` sends through per peer and hands slots over in order', async () => {
    const lim = new InflightLimiter(2)
    const r1 = await lim.acquire('p', never)
    await lim.acquire('p', never)
    await lim.acquire('q', never) // another peer is not held up
    const third = lim.acquire('p', never)
    const fourth = lim.acquire('p', never)
    expect(await settled(third)).toBe(false)
    r1()
    r1() // releasing twice gives back one slot only
    expect(await settled(third)).toBe(true)
    expect(await settled(fourth)).toBe(false)
    ;(await third)()
    expect(await settled(fourth)).toBe(true)
  })

  it('an aborted waiter leaves the queue without taking a slot', async () => {
    const lim = new InflightLimiter(1)
    const r1 = await lim.acquire('p', never)
    const ac = new AbortController()
    const waiting = lim.acquire('p', ac.signal)
    const behind = lim.acquire('p', never)
    ac.abort(new Error('gave up'))
    await expect(waiting).rejects.toThrow('gave up')
    r1()
    expect(await settled(behind)).toBe(true)
  })
})
