// The pure probe state (src/agent/probe.ts): Docker's HEALTHCHECK semantics for the agent's own
// http/tcp probes, as table tests and as properties over random probe histories.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { beginProbe, effectiveRetries, initialProbe, isDue, isProbeCheck, recordProbe, type ProbeResult, type ProbeState, type ProbeTiming } from '../../src/agent/probe.ts'

const T0 = 1_700_000_000_000
const timing = (over: Partial<ProbeTiming> = {}): ProbeTiming => ({ intervalMs: 1000, timeoutMs: 500, retries: 3, startPeriodMs: 0, ...over })
const ok: ProbeResult = { kind: 'ok' }
const bad: ProbeResult = { kind: 'fail', reason: 'status 500' }

/** Runs results one per interval (each probe takes `tookMs`); returns every state after a result. */
function play(t: ProbeTiming, results: ProbeResult[], tookMs = 10): ProbeState[] {
  let s = initialProbe(t, T0)
  const out: ProbeState[] = []
  for (const r of results) {
    const at = s.nextAt
    s = recordProbe(beginProbe(s, at), t, r, at + tookMs)
    out.push(s)
  }
  return out
}
const healths = (ss: ProbeState[]) => ss.map((s) => s.health)

describe('probe state', () => {
  it('starts `starting`; the first probe is due one interval after the start', () => {
    const s = initialProbe(timing(), T0)
    expect(s).toMatchObject({ health: 'starting', failures: 0, nextAt: T0 + 1000, inFlightSince: null })
    expect(isDue(s, T0 + 999)).toBe(false)
    expect(isDue(s, T0 + 1000)).toBe(true)
    expect(isDue(beginProbe(s, T0 + 1000), T0 + 5000)).toBe(false) // one in flight at a time
  })

  it('one success makes it healthy; `retries` failures in a row make it unhealthy; one success heals', () => {
    expect(healths(play(timing(), [ok, bad, bad, bad, ok]))).toEqual(['healthy', 'healthy', 'healthy', 'unhealthy', 'healthy'])
    expect(healths(play(timing(), [bad, bad, ok, bad, bad, bad]))).toEqual(['starting', 'starting', 'healthy', 'healthy', 'healthy', 'unhealthy'])
  })

  it('the next probe is due one interval after the previous one finished', () => {
    const [s] = play(timing({ intervalMs: 2000 }), [ok], 300)
    expect(s?.nextAt).toBe(T0 + 2000 + 300 + 2000)
  })

  it('failures started within the start period do not count until the container was healthy once', () => {
    const t = timing({ intervalMs: 1000, startPeriodMs: 2500, retries: 1 })
    // Probes start at +1000, +2010, +3020: the first two are excused, the third counts.
    const ss = play(t, [bad, bad, bad])
    expect(ss.map((s) => [s.health, s.failures])).toEqual([['starting', 0], ['starting', 0], ['unhealthy', 1]])
    // A success within the start period ends the excuse: the next failure counts at once.
    expect(healths(play(t, [ok, bad]))).toEqual(['healthy', 'unhealthy'])
  })

  it('retries 0 means 3, as in Docker', () => {
    expect(effectiveRetries(timing({ retries: 0 }))).toBe(3)
    expect(healths(play(timing({ retries: 0 }), [bad, bad, bad]))).toEqual(['starting', 'starting', 'unhealthy'])
    expect(healths(play(timing({ retries: 1 }), [bad]))).toEqual(['unhealthy'])
  })

  it('keeps the reason of the last failure; a timeout names the timeout', () => {
    const ss = play(timing({ timeoutMs: 750 }), [bad, { kind: 'timeout' }, ok])
    expect(ss.map((s) => s.lastReason)).toEqual(['status 500', 'timed out after 750 ms', null])
  })

  it('knows which checks it probes', () => {
    expect(isProbeCheck({ kind: 'tcp', port: 1, ...timing() })).toBe(true)
    expect(isProbeCheck({ kind: 'http', port: 1, path: '/', statusMin: 200, statusMax: 399, ...timing() })).toBe(true)
    expect(isProbeCheck({ kind: 'shell', command: 'true', ...timing() })).toBe(false)
    expect(isProbeCheck(null)).toBe(false)
  })
})

describe('probe state: properties', () => {
  const timingArb = fc.record({
    intervalMs: fc.integer({ min: 1, max: 5000 }), timeoutMs: fc.integer({ min: 1, max: 5000 }),
    retries: fc.integer({ min: 0, max: 6 }), startPeriodMs: fc.integer({ min: 0, max: 20_000 }),
  })
  const stepArb = fc.record({
    late: fc.integer({ min: 0, max: 3000 }), // how long after it was due the probe starts
    took: fc.integer({ min: 0, max: 6000 }),
    result: fc.constantFrom<ProbeResult>(ok, bad, { kind: 'timeout' }),
  })

  it('health, failures and the next due time follow from the history (Docker\'s rules, stated over the whole history)', () => {
    fc.assert(fc.property(timingArb, fc.array(stepArb, { maxLength: 40 }), (t, steps) => {
      let s = initialProbe(t, T0)
      const history: { began: number; ok: boolean }[] = []
      for (const st of steps) {
        const began = s.nextAt + st.late
        const ended = began + st.took
        s = recordProbe(beginProbe(s, began), t, st.result, ended)
        history.push({ began, ok: st.result.kind === 'ok' })
        const lastOk = history.map((h) => h.ok).lastIndexOf(true)
        const trailing = history.slice(lastOk + 1)
        // Failures after the last success; before any success, only those started after the start period count.
        const counted = lastOk >= 0 ? trailing.length : trailing.filter((h) => h.began - T0 >= t.startPeriodMs).length
        expect(s.failures).toBe(counted)
        const want = counted >= effectiveRetries(t) ? 'unhealthy' : lastOk >= 0 ? 'healthy' : 'starting'
        expect(s.health).toBe(want)
        expect(s.nextAt).toBe(ended + t.intervalMs)
        expect(s.inFlightSince).toBeNull()
        expect(s.probes).toBe(history.length)
        expect(s.lastReason === null).toBe(st.result.kind === 'ok')
      }
    }), { numRuns: 300 })
  })

  it('is never unhealthy while every probe so far started within the start period without a success', () => {
    fc.assert(fc.property(timingArb, fc.array(fc.constantFrom<ProbeResult>(bad, { kind: 'timeout' }), { maxLength: 30 }), (t, results) => {
      const long = { ...t, startPeriodMs: (results.length + 1) * (t.intervalMs + 10) }
      const ss = play(long, results)
      expect(ss.every((s) => s.health === 'starting' && s.failures === 0)).toBe(true)
    }), { numRuns: 200 })
  })
})
