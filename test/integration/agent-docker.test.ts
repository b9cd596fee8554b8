// The agent against the real Docker engine: 2 assigned slots run, a `docker kill`ed one is
// restarted, and a restarted agent adopts both (same ids and start times, no restart). The agent's
// own probes: a busybox httpd with an http check becomes healthy; a tcp check on a port nothing
// listens on makes the replica unhealthy, and it is restarted again and again.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { createAgentService, type AgentService } from '../../src/agent/service.ts'
import { systemClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { serviceSpecSchema } from '../../src/model/index.ts'
import { createDockerRuntime } from '../../src/runtime/docker.ts'
import { hostSelector } from '../../src/runtime/labels.ts'
import type { ServiceSpec } from '../../src/model/index.ts'
import type { Assignment } from '../../src/scheduler/types.ts'
import type { Transport, TransportEvents } from '../../src/transport/types.ts'

const cluster = `agent-it-${randomBytes(4).toString('hex')}`
const runtime = createDockerRuntime({ logger: silentLogger() })
const web = serviceSpecSchema.parse({ stopGracePeriodMs: 0, stack: 's', name: 'web', image: 'local/busybox:1', command: ['sleep', '3600'], restart: { condition: 'any', delayMs: 200 } })
const assignments: Assignment[] = [0, 1].map((slot) => ({ service: 'web', slot, host: 'h1', revision: 0, generation: 1, term: 1, index: 5 + slot }))

const transport: Transport = {
  selfId: 'h1', listenAddresses: () => [], send: async () => {}, handle: () => {}, publish: async () => {}, subscribe: () => {},
  dial: async () => { throw new Error('no dialing') }, hangUp: async () => {}, connectedPeers: () => [],
  on: <K extends keyof TransportEvents>(_e: K, _l: (d: TransportEvents[K]) => void) => {},
  stats: () => ({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, rejected: 0 }), stop: async () => {},
}

const agents: AgentService[] = []
function agent(host = 'h1', mine: readonly Assignment[] = assignments, specs: Record<string, ServiceSpec> = { web }): AgentService {
  const s = createAgentService(
    { hostId: host, clusterId: cluster, reconcileIntervalMs: 200, eventsRetryMs: 200, step: { stopGraceMs: 0 } }, // every spec here also has stopGracePeriodMs: 0
    { runtime, clock: systemClock, logger: silentLogger(), transport, assignments: () => mine, services: (n) => specs[n] },
  )
  s.start()
  agents.push(s)
  return s
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
const mine = () => runtime.list({ labels: hostSelector(cluster, 'h1') })
const running = async () => (await mine()).filter((c) => c.state === 'running')

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()))
  for (const c of await runtime.list({ labels: { 'io.skein.cluster': cluster } })) await runtime.remove(c.id)
})

describe('agent on Docker', () => {
  it('runs 2 slots, restarts a killed container, and adopts after an agent restart', async () => {
    const a = agent()
    await waitFor('2 running', async () => (await running()).length === 2)
    const victim = (await running())[0]!
    execFileSync('docker', ['kill', victim.id])
    await waitFor('the killed container restarted', async () => {
      const c = (await mine()).find((x) => x.id === victim.id)
      return c?.state === 'running' && c.startedAt !== victim.startedAt
    })
    await waitFor('restart reported', async () => a.observed().some((r) => r.containerId === victim.id && r.restarts === 1 && r.state === 'running'))
    const before = (await running()).map((c) => [c.id, c.startedAt]).sort()
    await a.stop()

    const b = agent()
    await b.reconcileNow()
    await b.reconcileNow()
    expect((await running()).map((c) => [c.id, c.startedAt]).sort()).toEqual(before)
    expect(b.events().filter((e) => e.kind === 'adopted').length).toBe(2)
    expect(b.events().filter((e) => ['started', 'restarted', 'stopped', 'removed'].includes(e.kind))).toEqual([])
    expect(b.observed().map((r) => [r.state, r.restarts])).toEqual([['running', 0], ['running', 0]])
  })
})

describe('agent on Docker: http and tcp probes', () => {
  const one = (service: string, host: string): Assignment[] => [{ service, slot: 0, host, revision: 0, generation: 1, term: 1, index: 9 }]

  it('a busybox httpd with an http check becomes healthy (the engine runs no check of its own)', async () => {
    const api = serviceSpecSchema.parse({ stopGracePeriodMs: 0,
      stack: 's', name: 'api', image: 'local/busybox:1', command: ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && httpd -f -p 8080 -h /www'],
      healthcheck: { kind: 'http', port: 8080, path: '/', intervalMs: 300, timeoutMs: 1000, retries: 2 },
    })
    const a = agent('h2', one('api', 'h2'), { api })
    await waitFor('healthy', async () => a.observed().some((r) => r.service === 'api' && r.health === 'healthy'))
    const row = a.observed().find((r) => r.service === 'api')!
    expect(row).toMatchObject({ state: 'running', restarts: 0 })
    expect(a.events().find((e) => e.kind === 'healthy')).toMatchObject({ service: 'api', containerId: row.containerId, reason: 'probe succeeded' })
    const info = await runtime.inspect(row.containerId!)
    expect(info.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    expect(info.health).toBe('none') // HEALTHCHECK NONE: the agent probes
  })

  it('a tcp check on a port nothing listens on: unhealthy, stopped, and restarted in place (the restart count grows)', async () => {
    const idle = serviceSpecSchema.parse({ stopGracePeriodMs: 0,
      stack: 's', name: 'idle', image: 'local/busybox:1', command: ['sleep', '3600'], restart: { condition: 'any', delayMs: 200 },
      healthcheck: { kind: 'tcp', port: 9, intervalMs: 200, timeoutMs: 500, retries: 2 },
    })
    const a = agent('h3', one('idle', 'h3'), { idle })
    await waitFor('2 restarts', async () => a.observed().some((r) => r.service === 'idle' && r.restarts >= 2), 30_000)
    const row = a.observed().find((r) => r.service === 'idle')!
    const sick = a.events().filter((e) => e.kind === 'unhealthy')
    expect(sick.length).toBeGreaterThanOrEqual(2)
    expect(sick[0]?.reason).toMatch(/^tcp \d+\.\d+\.\d+\.\d+:9: .*ECONNREFUSED/)
    const restarted = a.events().filter((e) => e.kind === 'restarted')
    expect(restarted.length).toBeGreaterThanOrEqual(2)
    expect(new Set(restarted.map((e) => e.containerId))).toEqual(new Set([row.containerId])) // the same container, started again
    expect(restarted[0]?.reason).toBe('stopped for being unhealthy; restart 1 (policy any)')
  })
})
