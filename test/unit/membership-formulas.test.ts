import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  clampAwareness, expectedConfirmations, nackTimeout, pushPullInterval, scaleByAwareness, suspicionBounds, suspicionTimeout,
} from '../../src/membership/formulas.ts'
import { DEFAULT_MEMBERSHIP_CONFIG, type MembershipConfig } from '../../src/membership/types.ts'

const cfg: MembershipConfig = { ...DEFAULT_MEMBERSHIP_CONFIG, probeIntervalMs: 200, suspicionMult: 4, suspicionMaxMult: 6 }

describe('suspicion bounds', () => {
  it('scale with log10 of the cluster size, never below one probe-interval multiple', () => {
    for (const n of [1, 2, 5, 9, 10, 100, 1000, 5000]) {
      const { min, max } = suspicionBounds(n, cfg)
      const scale = Math.max(1, Math.log10(n))
      expect(min).toBe(Math.round(cfg.suspicionMult * scale * cfg.probeIntervalMs))
      expect(max).toBe(Math.round(cfg.suspicionMaxMult * min))
    }
    // Small clusters all get the same floor; a cluster ten times larger waits longer.
    expect(suspicionBounds(3, cfg).min).toBe(suspicionBounds(10, cfg).min)
    expect(suspicionBounds(1000, cfg).min).toBeGreaterThan(suspicionBounds(100, cfg).min)
  })

  it('expects k = suspicionMult − 2 confirmations, or none in a cluster too small to give them', () => {
    const k = cfg.suspicionMult - 2
    for (let n = 1; n <= 20; n++) expect(expectedConfirmations(n, cfg)).toBe(n - 2 < k ? 0 : k)
    expect(expectedConfirmations(100, { ...cfg, suspicionMult: 1 })).toBe(0)
  })
})

describe('suspicion timeout', () => {
  it('starts at max, ends at min after k confirmations, and never goes below min', () => {
    const b = { min: 800, max: 4800 }
    expect(suspicionTimeout(0, 2, b)).toBe(4800)
    expect(suspicionTimeout(2, 2, b)).toBe(800)
    expect(suspicionTimeout(7, 2, b)).toBe(800)
    // The Lifeguard formula for one confirmation out of two.
    expect(suspicionTimeout(1, 2, b)).toBe(Math.floor(4800 - 4000 * (Math.log(2) / Math.log(3))))
    expect(suspicionTimeout(0, 0, b)).toBe(800)
  })

  it('is non-increasing in the confirmations and stays within [min, max] (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 10 }),
      (min, mult, k, c) => {
        const b = { min, max: min * mult }
        const t = suspicionTimeout(c, k, b)
        expect(t).toBeGreaterThanOrEqual(b.min)
        expect(t).toBeLessThanOrEqual(b.max)
        expect(suspicionTimeout(c + 1, k, b)).toBeLessThanOrEqual(t)
      },
    ))
  })
})

describe('awareness and intervals', () => {
  it('scales a duration by awareness + 1 and clamps the score', () => {
    expect(scaleByAwareness(200, 0)).toBe(200)
    expect(scaleByAwareness(200, 3)).toBe(800)
    expect(clampAwareness(-2, 8)).toBe(0)
    expect(clampAwareness(5, 8)).toBe(5)
    expect(clampAwareness(50, 8)).toBe(7)
  })

  it('keeps the push-pull interval up to 32 members and grows it by one base interval per doubling after', () => {
    expect(pushPullInterval(5000, 1)).toBe(5000)
    expect(pushPullInterval(5000, 32)).toBe(5000)
    expect(pushPullInterval(5000, 64)).toBe(10_000)
    expect(pushPullInterval(5000, 1000)).toBe(5000 * (Math.ceil(Math.log2(1000) - 5) + 1))
    fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), (n) => {
      expect(pushPullInterval(5000, n + 1)).toBeGreaterThanOrEqual(pushPullInterval(5000, n))
    }))
  })

  it('leaves room in the indirect window for a relay\'s nack to come back', () => {
    const window = DEFAULT_MEMBERSHIP_CONFIG.probeIntervalMs - DEFAULT_MEMBERSHIP_CONFIG.probeTimeoutMs
    expect(nackTimeout(DEFAULT_MEMBERSHIP_CONFIG.probeTimeoutMs)).toBeLessThan(window)
    expect(nackTimeout(DEFAULT_MEMBERSHIP_CONFIG.probeTimeoutMs)).toBeGreaterThan(0)
  })
})
