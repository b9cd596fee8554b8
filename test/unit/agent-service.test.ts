// The agent shell over the fake runtime, a manual clock and an in-memory gossip hub.
import { afterEach, describe, expect, it } from 'vitest'
import { createAgentService, type AgentService } from '../../src/agent/service.ts'
import { encodeObserved, OBSERVED_TOPIC } from '../../src/agent/observed.ts'
import { ManualClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { serviceSpecSchema, type ServiceSpec } from '../../src/model/index.ts'
import { createFakeRuntime, type FakeRuntime } from '../../src/runtime/fake.ts'
import { hostSelector } from '../../src/runtime/labels.ts'
import type { Assignment } from '../../src/scheduler/types.ts'
import type { PeerId, TopicHandler, Transport, TransportEvents } from '../../src/transport/types.ts'

/** Synchronous in-memory gossip: publish runs every other peer's validator, then delivers. */
class Hub {
  readonly topics = new Map<PeerId, Map<string, TopicHandler>>()
  transport(id: PeerId): Transport {
    const mine = new Map<string, TopicHandler>()
    this.topics.set(id, mine)
    return {
      selfId: id, listenAddresses: () => [], send: async () => {}, handle: () => {},
      publish: async (topic, data) => {
        for (const [other, hs] of this.topics) {
          const h = hs.get(topic)
          if (other !== id && h !== undefined && h.validate(id, data) === 'accept') h.deliver(id, data)
        }
      },
      subscribe: (topic, h) => { mine.set(topic, h) },
      dial: async () => { throw new Error('no dialing') }, hangUp: async () => {}, connectedPeers: () => [],
      on: <K extends keyof TransportEvents>(_e: K, _l: (d: TransportEvents[K]) => void) => {},
      stats: () => ({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, rejected: 0 }), stop: async () => {},
    }
  }
}

const T0 = 1_700_000_000_000
const web: ServiceSpec = serviceSpecSchema.parse({ stack: 's', name: 'web', image: 'local/busybox:1', command: ['sleep', '3600'], restart: { condition: 'any', delayMs: 1000 } })
const asg = (slot: number, host = 'h1', generation = 1, index = 10 + slot): Assignment => ({ service: 'web', slot, host, revision: 0, generation, term: 1, index })

const started: AgentService[] = []
afterEach(async () => { await Promise.all(started.splice(0).map((s) => s.stop())) })

function setup() {
  const clock = new ManualClock(T0)
  const runtime = createFakeRuntime({ clock })
  const hub = new Hub()
  const state = { assignments: [asg(0), asg(1), asg(2)] as Assignment[] | 'unknown' }
  const agent = (host = 'h1', rt: FakeRuntime = runtime) => {
    const s = createAgentService(
      { hostId: host, clusterId: 'c1', reconcileIntervalMs: 60_000, publishIntervalMs: 60_000, eventsRetryMs: 20 },
      { runtime: rt, clock, logger: silentLogger(), transport: hub.transport(host), assignments: () => state.assignments, services: (n) => (n === 'web' ? web : undefined) },
    )
    s.start()
    started.push(s)
    return s
  }
  const mineRunning = async () => (await runtime.list({ labels: hostSelector('c1', 'h1') })).filter((c) => c.state === 'running')
  return { clock, runtime, hub, state, agent, mineRunning }
}

describe('agent service', () => {
  it('runs one container per assigned slot and gossips the observed rows', async () => {
    const { agent, mineRunning } = setup()
    const other = agent('h2')
    const a = agent('h1')
    const seen: string[] = []
    a.onEvent((e) => seen.push(e.kind))
    await a.reconcileNow()
    expect(seen.filter((k) => k === 'started').length).toBe(3)
    expect((await mineRunning()).length).toBe(3)
    const rows = a.observed().filter((r) => r.host === 'h1')
    expect(rows.map((r) => [r.slot, r.state])).toEqual([[0, 'running'], [1, 'running'], [2, 'running']])
    expect(other.observed().filter((r) => r.host === 'h1')).toEqual(rows)
    expect(a.events().filter((e) => e.kind === 'started').length).toBe(3)
    // A converged round changes nothing.
    const before = a.stats().published
    await a.reconcileNow()
    expect(a.stats().published).toBe(before)
  })

  it('restarts a crashed container after the backoff, in place', async () => {
    const { agent, runtime, clock, mineRunning } = setup()
    const a = agent()
    await a.reconcileNow()
    const victim = (await mineRunning())[0]!
    runtime.crash(victim.id, 137)
    await a.reconcileNow()
    expect((await mineRunning()).length).toBe(2) // inside the 1 s backoff
    clock.advance(1000)
    await a.reconcileNow()
    const now = await mineRunning()
    expect(now.map((c) => c.id)).toContain(victim.id)
    const row = a.observed().find((r) => r.containerId === victim.id)
    expect(row).toMatchObject({ state: 'running', restarts: 1, streak: 1 })
    expect(a.events().map((e) => e.kind)).toEqual(expect.arrayContaining(['exited', 'restarted']))
  })

  it('stops and removes a container whose slot moved away, and one that lost its slot', async () => {
    const { agent, state, runtime, mineRunning } = setup()
    const a = agent()
    await a.reconcileNow()
    state.assignments = [asg(0), asg(1, 'h2', 2, 20)]
    await a.reconcileNow()
    const left = await runtime.list({ labels: hostSelector('c1', 'h1') })
    expect(left.map((c) => c.labels['io.skein.slot'])).toEqual(['0'])
    expect((await mineRunning()).length).toBe(1)
    expect(a.events().filter((e) => e.kind === 'removed').map((e) => e.reason).sort()).toEqual(['slot moved to h2', 'slot unassigned'])
  })

  it('a restarted agent adopts its running containers: same ids and start times, no runtime changes', async () => {
    const { agent, runtime, clock, mineRunning } = setup()
    const first = agent()
    await first.reconcileNow()
    const before = (await mineRunning()).map((c) => [c.id, c.startedAt])
    await first.stop()
    clock.advance(30_000)
    const mark = runtime.calls.length
    const second = agent()
    await second.reconcileNow()
    await second.reconcileNow()
    expect((await mineRunning()).map((c) => [c.id, c.startedAt])).toEqual(before)
    expect(runtime.calls.slice(mark).filter((c) => /^(create|start|stop|remove)/.test(c))).toEqual([])
    expect(second.events().filter((e) => e.kind === 'adopted').length).toBe(3)
    expect(second.observed().every((r) => r.restarts === 0 && r.state === 'running')).toBe(true)
  })

  it('statically stable: with unknown assignments, running containers are left alone', async () => {
    const { agent, runtime, state, mineRunning } = setup()
    await agent().reconcileNow()
    await started[0]!.stop()
    state.assignments = 'unknown'
    const mark = runtime.calls.length
    const b = agent()
    await b.reconcileNow()
    expect(runtime.calls.slice(mark).filter((c) => /^(create|start|stop|remove)/.test(c))).toEqual([])
    expect((await mineRunning()).length).toBe(3)
    expect(b.observed().map((r) => r.state)).toEqual(['running', 'running', 'running'])
  })

  it('survives an engine that goes down, and recovers when it returns', async () => {
    const { agent, runtime, mineRunning } = setup()
    const a = agent()
    await a.reconcileNow()
    runtime.setEngineDown(true)
    await a.reconcileNow()
    await a.reconcileNow()
    expect(a.stats().engineUp).toBe(false)
    expect(a.events().filter((e) => e.kind === 'engine-down').length).toBe(1)
    expect(a.observed().filter((r) => r.state === 'running').length).toBe(3) // last known rows kept
    runtime.setEngineDown(false)
    const victim = (await mineRunning())[0]!
    await runtime.remove(victim.id) // it vanished while the engine was away
    await a.reconcileNow()
    expect(a.stats().engineUp).toBe(true)
    expect((await mineRunning()).length).toBe(3)
  })

  it('an image that cannot be had makes the replica failed', async () => {
    const { agent, runtime, state } = setup()
    runtime.setImageUnavailable('local/busybox:1')
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    await a.reconcileNow()
    expect(a.observed()).toMatchObject([{ slot: 0, state: 'failed' }])
    expect(a.events().some((e) => e.kind === 'failed' && /cannot be pulled/.test(e.reason ?? ''))).toBe(true)
  })

  it('rejects rows forged for another host', async () => {
    const { agent, hub } = setup()
    const a = agent('h1')
    const forged = encodeObserved({ from: 'h2', host: 'h3', version: 1, rows: [] })
    expect(hub.topics.get('h1')?.get(OBSERVED_TOPIC)?.validate('h2', forged)).toBe('reject')
    expect(a.stats().forged).toBe(1)
  })
})
