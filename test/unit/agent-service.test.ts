// The agent shell over the fake runtime, a manual clock and an in-memory gossip hub.
import { afterEach, describe, expect, it } from 'vitest'
import { createAgentService, type AgentService } from '../../src/agent/service.ts'
import { encodeObserved, OBSERVED_TOPIC } from '../../src/agent/observed.ts'
import { ManualClock } from '../../src/core/clock.ts'
import { createServer, type Server } from 'node:http'
import { pino } from 'pino'
import type { Logger } from '../../src/core/logger.ts'
import { serviceSpecSchema, type ServiceSpec } from '../../src/model/index.ts'
import { createFakeRuntime, type FakeRuntime } from '../../src/runtime/fake.ts'
import { hostSelector } from '../../src/runtime/labels.ts'
import type { Assignment } from '../../src/scheduler/types.ts'
import type { PeerId, TopicHandler, Transport, TransportEvents } from '../../src/transport/types.ts'

/** Synchronous in-memory gossip: publish runs every other peer's validator, then delivers. */
class Hub {
  readonly topics = new Map<PeerId, Map<string, TopicHandler>>()
  readonly connectListeners = new Map<PeerId, ((peer: PeerId) => void)[]>()
  /** `id` sees a connection from `peer` come up. */
  connect(id: PeerId, peer: PeerId): void {
    for (const l of this.connectListeners.get(id) ?? []) l(peer)
  }
  transport(id: PeerId): Transport {
    const mine = new Map<string, TopicHandler>()
    this.topics.set(id, mine)
    const listeners: ((peer: PeerId) => void)[] = []
    this.connectListeners.set(id, listeners)
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
      on: <K extends keyof TransportEvents>(e: K, l: (d: TransportEvents[K]) => void) => {
        if (e === 'peer:connect') listeners.push(l as (peer: PeerId) => void)
      },
      stats: () => ({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, rejected: 0 }), stop: async () => {},
    }
  }
}

const T0 = 1_700_000_000_000
const web: ServiceSpec = serviceSpecSchema.parse({ stack: 's', name: 'web', image: 'local/busybox:1', command: ['sleep', '3600'], restart: { condition: 'any', delayMs: 1000 } })
const asg = (slot: number, host = 'h1', generation = 1, index = 10 + slot): Assignment => ({ service: 'web', slot, host, revision: 0, generation, term: 1, index })

const started: AgentService[] = []
afterEach(async () => { await Promise.all(started.splice(0).map((s) => s.stop())) })

/** A logger that keeps what it writes, stamped with the manual clock. */
function captureLogger(clock: ManualClock, lines: LogRecord[]): Logger {
  return pino({ level: 'info' }, { write: (line: string) => { lines.push({ ...(JSON.parse(line) as LogRecord), at: clock.now() }) } })
}
interface LogRecord { level: number; msg: string; at: number; image?: string }

function setup(spec: ServiceSpec = web) {
  const clock = new ManualClock(T0)
  const runtime = createFakeRuntime({ clock })
  const hub = new Hub()
  const logs: LogRecord[] = []
  const state = { assignments: [asg(0), asg(1), asg(2)] as Assignment[] | 'unknown' }
  const agent = (host = 'h1', rt: FakeRuntime = runtime) => {
    const s = createAgentService(
      { hostId: host, clusterId: 'c1', reconcileIntervalMs: 60_000, publishIntervalMs: 60_000, eventsRetryMs: 20, connectPublishDelayMs: 5 },
      { runtime: rt, clock, logger: captureLogger(clock, logs), transport: hub.transport(host), assignments: () => state.assignments, services: (n) => (n === 'web' ? spec : undefined) },
    )
    s.start()
    started.push(s)
    return s
  }
  const mineRunning = async () => (await runtime.list({ labels: hostSelector('c1', 'h1') })).filter((c) => c.state === 'running')
  return { clock, runtime, hub, state, agent, mineRunning, logs }
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
    await a.reconcileNow()
    // What it created itself it knows: no "adopted" (that is for an agent that restarted).
    expect(a.events().filter((e) => e.kind === 'adopted')).toEqual([])
    // A converged round changes nothing.
    const before = a.stats().published
    await a.reconcileNow()
    expect(a.stats().published).toBe(before)
  })

  it('publishes its rows again soon after a peer connects (a restarted peer need not wait for anti-entropy)', async () => {
    const { agent, hub } = setup()
    const a = agent('h1')
    await a.reconcileNow()
    const late = agent('h3') // subscribed after h1 published: it has none of h1's rows
    expect(late.observed().filter((r) => r.host === 'h1')).toEqual([])
    const before = a.stats().published
    hub.connect('h1', 'h3')
    hub.connect('h1', 'h3') // debounced: one publication
    await new Promise((r) => setTimeout(r, 50))
    expect(a.stats().published).toBe(before + 1)
    expect(late.observed().filter((r) => r.host === 'h1').map((r) => r.slot)).toEqual([0, 1, 2])
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

describe('agent service: health probes', () => {
  const servers: Server[] = []
  afterEach(async () => { await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r) }))) })
  /** A loopback HTTP server answering `status.code`; counts requests. */
  async function healthServer() {
    const st = { code: 200, hits: 0 }
    const srv = createServer((_req, res) => { st.hits++; res.statusCode = st.code; res.end() })
    servers.push(srv)
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    return { st, port: (srv.address() as { port: number }).port }
  }
  const withCheck = (healthcheck: unknown, restart: unknown = { condition: 'any', delayMs: 1000 }) =>
    serviceSpecSchema.parse({ stack: 's', name: 'web', image: 'local/busybox:1', command: ['sleep', '3600'], restart, healthcheck })
  const row = (a: AgentService) => a.observed().find((r) => r.slot === 0)
  /** The clock moves one interval; the due probes run; the round they trigger ends. */
  const tick = async (a: AgentService, clock: ManualClock, ms = 1000) => {
    clock.advance(ms)
    await a.probeNow()
    await a.reconcileNow()
  }

  it('http: healthy, then unhealthy after `retries` failures, which stops the container and restarts it through the policy', async () => {
    const { st, port } = await healthServer()
    const { agent, state, clock, runtime } = setup(withCheck({ kind: 'http', port, path: '/ready', intervalMs: 1000, timeoutMs: 500, retries: 2 }))
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    expect(row(a)).toMatchObject({ state: 'running', health: 'starting' })
    const id = row(a)!.containerId!
    await tick(a, clock)
    expect(row(a)).toMatchObject({ state: 'running', health: 'healthy' })
    expect(a.events().filter((e) => e.kind === 'healthy')).toMatchObject([{ containerId: id, slot: 0, reason: 'probe succeeded' }])
    st.code = 500
    await tick(a, clock)
    expect(row(a)).toMatchObject({ state: 'running', health: 'healthy' }) // 1 failure of 2
    await tick(a, clock)
    // Unhealthy: reported, stopped at once, and waiting for its backoff (1 s).
    expect(a.events().find((e) => e.kind === 'unhealthy')).toMatchObject({ containerId: id, reason: `GET http://127.0.0.1:${port}/ready: status 500, expected 200-399` })
    expect(a.events().find((e) => e.kind === 'stopped')).toMatchObject({ containerId: id, reason: 'unhealthy; restart policy any' })
    expect((await runtime.inspect(id)).state).toBe('exited')
    expect(row(a)).toMatchObject({ state: 'running', health: 'none', restarts: 0 })
    st.code = 200
    clock.advance(1000)
    await a.reconcileNow()
    expect(a.events().find((e) => e.kind === 'restarted')).toMatchObject({ containerId: id, reason: 'stopped for being unhealthy; restart 1 (policy any)' })
    expect(row(a)).toMatchObject({ state: 'running', health: 'starting', restarts: 1, containerId: id }) // a new run starts over
    await tick(a, clock)
    expect(row(a)).toMatchObject({ health: 'healthy', restarts: 1 })
    expect(a.events().filter((e) => e.kind === 'healthy').length).toBe(2)
  })

  it('tcp with restart condition none: an unhealthy replica keeps running and is reported, once', async () => {
    const closed = await healthServer()
    await new Promise((r) => servers.pop()!.close(r)) // nothing listens there any more
    const { agent, state, clock, mineRunning } = setup(withCheck({ kind: 'tcp', port: closed.port, intervalMs: 1000, timeoutMs: 500, retries: 1 }, { condition: 'none' }))
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    for (let n = 0; n < 3; n++) await tick(a, clock)
    expect(row(a)).toMatchObject({ state: 'running', health: 'unhealthy', restarts: 0 })
    expect((await mineRunning()).length).toBe(1)
    const sick = a.events().filter((e) => e.kind === 'unhealthy')
    expect(sick.length).toBe(1)
    expect(sick[0]?.reason).toMatch(new RegExp(`^tcp 127.0.0.1:${closed.port}: .*ECONNREFUSED`))
    expect(a.events().filter((e) => e.kind === 'stopped' || e.kind === 'restarted')).toEqual([])
  })

  it('an engine-reported unhealthy container (shell check) is restarted the same way', async () => {
    const { agent, state, clock } = setup(withCheck({ kind: 'shell', command: 'exit 1', intervalMs: 1000, timeoutMs: 500, retries: 1 }))
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    expect(a.events().find((e) => e.kind === 'unhealthy')).toMatchObject({ slot: 0, reason: 'engine healthcheck' })
    expect(a.events().find((e) => e.kind === 'stopped')?.reason).toBe('unhealthy; restart policy any')
    clock.advance(1000)
    await a.reconcileNow()
    expect(row(a)).toMatchObject({ restarts: 1 })
    expect(a.events().filter((e) => e.kind === 'unhealthy').length).toBe(2) // the new run is unhealthy again
  })

  it('probes stop when the container goes away', async () => {
    const { st, port } = await healthServer()
    const { agent, state, clock, runtime } = setup(withCheck({ kind: 'http', port, intervalMs: 1000, timeoutMs: 500, retries: 1 }))
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    await tick(a, clock)
    await tick(a, clock)
    expect(st.hits).toBe(2)
    state.assignments = []
    await a.reconcileNow()
    expect(await runtime.list({ labels: hostSelector('c1', 'h1') })).toEqual([])
    await tick(a, clock)
    await tick(a, clock)
    expect(st.hits).toBe(2)
  })

  it('a container without an address fails its probe with a clear reason', async () => {
    const { port } = await healthServer()
    const { agent, state, clock, runtime } = setup(withCheck({ kind: 'http', port, intervalMs: 1000, timeoutMs: 500, retries: 1 }, { condition: 'none' }))
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    runtime.setIp(row(a)!.containerId!, null)
    await a.reconcileNow()
    await tick(a, clock)
    expect(a.events().find((e) => e.kind === 'unhealthy')?.reason).toMatch(/no IP address/)
  })
})

describe('agent service: image pulls', () => {
  const MiB = 1024 ** 2
  const app = serviceSpecSchema.parse({ stack: 's', name: 'web', image: 'fake/app:1', command: ['sleep', '3600'] })

  it('reports one pull for concurrent replicas: pulling, then pulled with duration and bytes; progress at info at most every 2 s', async () => {
    const { agent, runtime, clock, logs, mineRunning } = setup(app)
    runtime.setPull('fake/app:1', { layers: [3 * MiB, 5 * MiB], between: () => clock.advance(700) })
    const a = agent()
    await a.reconcileNow()
    expect((await mineRunning()).length).toBe(3)
    expect(runtime.calls.filter((c) => c === 'ensureImage fake/app:1').length).toBe(1) // the three creates shared it
    const pulls = a.events().filter((e) => e.kind.startsWith('pull'))
    expect(pulls).toMatchObject([
      { kind: 'pulling', image: 'fake/app:1', reason: 'fake/app:1' },
      { kind: 'pulled', image: 'fake/app:1', durationMs: 2800, bytes: 8 * MiB, reason: 'fake/app:1 in 2s800ms, 8.0 MiB' },
    ])
    const mine = logs.filter((l) => l.image === 'fake/app:1' && l.level === 30)
    expect(mine.map((l) => [l.at - T0, l.msg])).toEqual([
      [0, 'pulling image'],
      [2100, 'pulling image: 1/2 layers, 5.5 MiB of 8.0 MiB'],
      [2800, 'pulled fake/app:1 in 2s800ms, 8.0 MiB'],
    ])
  })

  it('throttles a long pull to one progress line per 2 s', async () => {
    const { agent, runtime, clock, logs } = setup(app)
    runtime.setPull('fake/app:1', { layers: Array.from({ length: 20 }, () => MiB), between: () => clock.advance(300) })
    const a = agent()
    await a.reconcileNow()
    const at = logs.filter((l) => l.image === 'fake/app:1' && l.msg.startsWith('pulling image:')).map((l) => l.at)
    expect(at.length).toBeGreaterThanOrEqual(5) // 12 s of pulling
    for (let n = 1; n < at.length; n++) expect(at[n]! - at[n - 1]!).toBeGreaterThanOrEqual(2000)
    expect(a.events().find((e) => e.kind === 'pulled')).toMatchObject({ durationMs: 12_000, bytes: 20 * MiB })
  })

  it('a pull that fails part-way: pulling, pull-failed with the reason, and the replica is failed', async () => {
    const { agent, runtime, state } = setup(app)
    runtime.setPull('fake/app:1', { layers: [MiB, MiB], failAfter: 1, reason: 'unexpected EOF' })
    state.assignments = [asg(0)]
    const a = agent()
    await a.reconcileNow()
    await a.reconcileNow()
    expect(a.events().filter((e) => e.kind.startsWith('pull')).map((e) => e.kind)).toEqual(['pulling', 'pull-failed'])
    expect(a.events().find((e) => e.kind === 'pull-failed')?.reason).toMatch(/^image fake\/app:1 is not present and cannot be pulled: unexpected EOF/)
    expect(a.observed()).toMatchObject([{ slot: 0, state: 'failed' }])
  })

  it('an image already present makes no pull events', async () => {
    const { agent } = setup()
    const a = agent()
    await a.reconcileNow()
    expect(a.events().filter((e) => e.kind.startsWith('pull'))).toEqual([])
  })
})
