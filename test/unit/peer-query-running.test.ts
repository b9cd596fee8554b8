// The running flow's side of the peer queries: stop() ends the follows it serves (so that the API
// server closes without waiting for their streams), and follow sessions are numbered from a
// random start (a restarted peer keeps its id, and must not poll its last run's sessions).
import { afterEach, describe, expect, it } from 'vitest'
import type { LogItemView } from '../../src/api/running.ts'
import { systemClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { createRunning, type Running } from '../../src/peer/running.ts'
import { PEER_QUERY_PROTOCOL, decodeQueryMessage, randomCounter } from '../../src/peer/query.ts'
import { createFakeRuntime } from '../../src/runtime/fake.ts'
import type { Assignment } from '../../src/scheduler/types.ts'
import { MemNet } from './consensus-helpers.ts'

const assignment = (slot: number, host: string): Assignment => ({ service: 'web', slot, host, generation: 1, revision: 1 }) as Assignment

/** A running flow over fakes: consensus, state and membership that say little, on a MemNet. */
function makeRunning(net: MemNet, random: () => number): Running {
  const noop = (): void => {}
  const consensus = {
    status: () => ({ id: 'p1', term: 1, role: 'follower', leaderId: 'p2', leader: 'p2', commitIndex: 0, appliedIndex: 0, firstIndex: 1, lastIndex: 0, voters: [] }),
    voters: async () => [],
    table: () => ({ all: () => [assignment(0, 'p2')] }),
    drained: () => new Set<string>(),
    restarting: () => new Map<string, number>(),
    on: noop,
    off: noop,
  }
  const state = { get: () => undefined, live: () => [], entries: () => [], on: noop, off: noop }
  const membership = { members: () => [], on: noop, off: noop }
  return createRunning({
    selfId: 'p1', clusterId: 'c', transport: net.transport('p1'), consensus: consensus as never, state: state as never, membership,
    nameOf: (id) => id, clock: systemClock, logger: silentLogger(), runtime: createFakeRuntime({ clock: systemClock }), random,
  })
}

describe('the running flow’s follows', () => {
  const stops: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const s of stops.splice(0)) await s()
  })

  it('stop() ends open logs -f and events -f, and later follows end at once', async () => {
    const net = new MemNet()
    const r = makeRunning(net, () => 0.25)
    stops.push(() => r.stop())
    const caller = new AbortController() // never aborted: only stop() ends these
    const events = (async () => {
      let n = 0
      for await (const _ of r.followEvents(caller.signal)) n++
      return n
    })()
    const logs = (async () => {
      const got: LogItemView[] = []
      for await (const i of r.logs('web', { tail: 0, follow: true, signal: caller.signal })) got.push(i)
      return got
    })()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const t0 = Date.now()
    await r.stop()
    const ended = await Promise.race([Promise.all([events, logs]).then(() => 'ended'), new Promise((resolve) => setTimeout(() => resolve('still open'), 1000))])
    expect(ended).toBe('ended')
    expect(Date.now() - t0).toBeLessThan(1000)
    // After stop, a new follow returns at once.
    const late: LogItemView[] = []
    for await (const i of r.logs('web', { tail: 0, follow: true, signal: caller.signal })) late.push(i)
    expect(late).toEqual([])
  })

  it('endFollows() ends them without stopping the rest (the agent calls it before closing its API server)', async () => {
    const r = makeRunning(new MemNet(), () => 0.5)
    stops.push(() => r.stop())
    const follow = (async () => {
      for await (const _ of r.followEvents(new AbortController().signal)) continue
      return 'ended'
    })()
    await new Promise((resolve) => setTimeout(resolve, 20))
    r.endFollows()
    expect(await follow).toBe('ended')
    expect(r.replicas()).toEqual([])
  })

  it('numbers follow sessions from a random start, so a restarted peer does not reuse its last run’s', async () => {
    const sessions: number[] = []
    for (const random of [() => 0.25, () => 0.75]) {
      const net = new MemNet()
      // p2 answers nothing; the question it gets names the session.
      net.transport('p2').handle(PEER_QUERY_PROTOCOL, (_from, data) => {
        const d = decodeQueryMessage(data)
        if (d.ok && d.value.t === 'q' && d.value.q.k === 'logs') sessions.push(d.value.q.session)
      })
      const r = makeRunning(net, random)
      const before = sessions.length
      const abort = new AbortController()
      const follow = (async () => {
        for await (const _ of r.logs('web', { tail: 0, follow: true, signal: abort.signal })) break
      })()
      for (let i = 0; i < 200 && sessions.length === before; i++) await new Promise((resolve) => setTimeout(resolve, 5))
      abort.abort()
      await follow
      await r.stop()
    }
    expect(sessions).toEqual([randomCounter(() => 0.25) + 1, randomCounter(() => 0.75) + 1])
    expect(sessions[0]).toBeGreaterThan(2 ** 50)
  })
})
