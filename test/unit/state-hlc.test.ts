import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareHlc, decodeHlc, encodeHlc, HlcClock, isValidHlc, MAX_LOGICAL, type Hlc } from '../../src/state/hlc.ts'

const hlcArb = fc.record({
  wall: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  logical: fc.integer({ min: 0, max: MAX_LOGICAL }),
  node: fc.string({ minLength: 1, maxLength: 12 }),
})

describe('hybrid logical clock', () => {
  it('issues strictly increasing timestamps whatever the physical clock does', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 200 }), (times) => {
      const c = new HlcClock('a')
      let prev: Hlc | undefined
      for (const t of times) {
        const h = c.now(t)
        if (prev !== undefined) expect(compareHlc(h, prev)).toBeGreaterThan(0)
        expect(h.wall).toBeGreaterThanOrEqual(t)
        prev = h
      }
    }))
  })

  it('follows the physical clock when it moves forward', () => {
    const c = new HlcClock('a')
    expect(c.now(1000)).toEqual({ wall: 1000, logical: 0, node: 'a' })
    expect(c.now(1000)).toEqual({ wall: 1000, logical: 1, node: 'a' })
    expect(c.now(999)).toEqual({ wall: 1000, logical: 2, node: 'a' })
    expect(c.now(2000)).toEqual({ wall: 2000, logical: 0, node: 'a' })
  })

  it('respects causality: after update(remote), every new timestamp is greater than remote', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 1e6 }),
      (localT, remoteWall, remoteLogical, laterT) => {
        const c = new HlcClock('b', { maxDriftMs: 2e6 })
        c.now(localT)
        const remote = { wall: remoteWall, logical: remoteLogical, node: 'z' }
        expect(c.update(remote, localT)).toBe(true)
        const next = c.now(laterT)
        expect(next.wall > remote.wall || (next.wall === remote.wall && next.logical > remote.logical)).toBe(true)
      },
    ))
  })

  it('breaks ties by node id, giving a total order', () => {
    const a = { wall: 5, logical: 1, node: 'a' }
    const b = { wall: 5, logical: 1, node: 'b' }
    expect(compareHlc(a, b)).toBeLessThan(0)
    expect(compareHlc(b, a)).toBeGreaterThan(0)
    expect(compareHlc(a, { ...a })).toBe(0)
    fc.assert(fc.property(hlcArb, hlcArb, hlcArb, (x, y, z) => {
      expect(Math.sign(compareHlc(x, y))).toBe(-Math.sign(compareHlc(y, x)))
      if (compareHlc(x, y) <= 0 && compareHlc(y, z) <= 0) expect(compareHlc(x, z)).toBeLessThanOrEqual(0)
    }))
  })

  it('refuses a remote timestamp further ahead than maxDrift, without moving', () => {
    const c = new HlcClock('a', { maxDriftMs: 1000 })
    const before = c.now(10_000)
    expect(c.acceptable({ wall: 11_001, logical: 0, node: 'x' }, 10_000)).toBe(false)
    expect(c.update({ wall: 11_001, logical: 0, node: 'x' }, 10_000)).toBe(false)
    expect(c.peek()).toEqual(before)
    expect(c.update({ wall: 11_000, logical: 7, node: 'x' }, 10_000)).toBe(true)
    expect(c.now(10_000)).toEqual({ wall: 11_000, logical: 9, node: 'a' })
  })

  it('borrows a millisecond when the logical counter is full', () => {
    const c = new HlcClock('a', { start: { wall: 50, logical: MAX_LOGICAL - 1 } })
    expect(c.now(10)).toEqual({ wall: 50, logical: MAX_LOGICAL, node: 'a' })
    expect(c.now(10)).toEqual({ wall: 51, logical: 0, node: 'a' })
  })

  it('restarts above a persisted high-water mark', () => {
    const c = new HlcClock('a', { start: { wall: 9_000, logical: 3 } })
    expect(compareHlc(c.now(1_000), { wall: 9_000, logical: 3, node: 'a' })).toBeGreaterThan(0)
  })

  it('encodes compactly, round-trips, and sorts like compareHlc', () => {
    expect(encodeHlc({ wall: 1_700_000_000_000, logical: 2, node: 'n1' })).toBe('018bcfe568000002:n1')
    fc.assert(fc.property(hlcArb, hlcArb, (x, y) => {
      expect(decodeHlc(encodeHlc(x))).toEqual(x)
      const ex = encodeHlc(x)
      const ey = encodeHlc(y)
      expect(Math.sign(ex < ey ? -1 : ex > ey ? 1 : 0)).toBe(Math.sign(compareHlc(x, y)))
      expect(isValidHlc(x)).toBe(true)
    }))
    expect(decodeHlc('nonsense')).toBeUndefined()
    expect(isValidHlc({ wall: -1, logical: 0, node: 'a' })).toBe(false)
    expect(isValidHlc({ wall: 1, logical: MAX_LOGICAL + 1, node: 'a' })).toBe(false)
  })
})
