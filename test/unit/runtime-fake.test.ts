// The runtime contract against the fake, plus the fake's own controls.
import { describe, expect, it } from 'vitest'
import { systemClock, ManualClock } from '../../src/core/clock.ts'
import { createFakeRuntime } from '../../src/runtime/fake.ts'
import type { ContainerEvent, ContainerSpec } from '../../src/runtime/types.ts'
import { describeRuntime } from '../contract/runtime-contract.ts'

let port = 20000
describeRuntime('fake', async () => ({ runtime: createFakeRuntime({ clock: systemClock }), real: false, freePort: async () => ++port }))

const spec = (name: string, over: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name, image: 'local/busybox:1', command: ['sleep', '3600'], entrypoint: null, env: {}, workingDir: null, user: null, ports: [],
  memoryBytes: null, nanoCpus: null, pidsLimit: null, network: 'bridge', mounts: [], labels: { a: '1' }, healthcheck: null, ...over,
})

describe('fake runtime controls', () => {
  it('is deterministic: ids from a counter, times from the clock', async () => {
    const clock = new ManualClock(1_000)
    const rt = createFakeRuntime({ clock })
    const id = await rt.create(spec('a'))
    clock.advance(500)
    await rt.start(id)
    expect(id).toMatch(/^fake0+1$/)
    expect((await rt.inspect(id)).startedAt).toBe(1_500)
  })

  it('crashes a container, sets health and stats, emits events', async () => {
    const rt = createFakeRuntime({ clock: new ManualClock(0) })
    const ac = new AbortController()
    const seen: ContainerEvent[] = []
    const done = (async () => { for await (const e of rt.events({ labels: { a: '1' }, signal: ac.signal })) seen.push(e) })()
    const id = await rt.create(spec('a'))
    await rt.start(id)
    rt.setHealth(id, 'unhealthy')
    rt.setStats(id, { cpuPercent: 42, memoryBytes: 7 })
    expect(await rt.stats(id)).toEqual({ cpuPercent: 42, memoryBytes: 7 })
    rt.crash(id, 139)
    expect(await rt.inspect(id)).toMatchObject({ state: 'exited', exitCode: 139, health: 'unhealthy' })
    await new Promise((r) => setTimeout(r, 10))
    ac.abort()
    await done
    expect(seen.map((e) => e.action)).toEqual(['create', 'start', 'health_status', 'die'])
  })

  it('takes the engine down and up: calls and open streams fail with engine-unavailable', async () => {
    const rt = createFakeRuntime({ clock: new ManualClock(0) })
    const stream = (async () => { for await (const _ of rt.events({})) { /* nothing */ } })()
    rt.setEngineDown(true)
    await expect(stream).rejects.toMatchObject({ code: 'engine-unavailable' })
    await expect(rt.list()).rejects.toMatchObject({ code: 'engine-unavailable', hint: expect.stringContaining('dockerd') })
    rt.setEngineDown(false)
    expect(await rt.list()).toEqual([])
  })

  it('pulls pullable images with progress, and refuses unavailable ones with the reason', async () => {
    const rt = createFakeRuntime({ clock: new ManualClock(0) })
    const progress: string[] = []
    await rt.ensureImage('fake/pullable:1', { onProgress: (p) => progress.push(p.status) })
    expect(progress.length).toBeGreaterThan(0)
    rt.setImageUnavailable('local/busybox:1', 'gone for the test')
    await expect(rt.ensureImage('local/busybox:1')).rejects.toThrow(/local\/busybox:1.*gone for the test/)
  })
})
