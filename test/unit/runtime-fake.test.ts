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

  it('plays a scripted pull in Docker\'s words, and one that fails part-way', async () => {
    const clock = new ManualClock(0)
    const rt = createFakeRuntime({ clock })
    const seen: string[] = []
    rt.setPull('fake/app:2', { layers: [10, 20], between: () => clock.advance(100) })
    await rt.ensureImage('fake/app:2', { onProgress: (p) => seen.push([p.status, p.layer, p.current].filter((x) => x !== undefined).join(' ')) })
    expect(seen).toEqual([
      'pulling', 'Pulling from fake/app 2', 'Pulling fs layer layer0', 'Pulling fs layer layer1',
      'Downloading layer0 5', 'Downloading layer0 10', 'Download complete layer0', 'Extracting layer0 10', 'Pull complete layer0',
      'Downloading layer1 10', 'Downloading layer1 20', 'Download complete layer1', 'Extracting layer1 20', 'Pull complete layer1',
      'Digest: sha256:fake', 'Status: Downloaded newer image for fake/app:2',
    ])
    expect(clock.now()).toBe(400)
    seen.length = 0
    await rt.ensureImage('fake/app:2', { onProgress: (p) => seen.push(p.status) })
    expect(seen).toEqual([]) // present now
    rt.setPull('fake/app:3', { layers: [10, 20], failAfter: 1, reason: 'connection reset' })
    await expect(rt.ensureImage('fake/app:3', { onProgress: (p) => seen.push(p.status) })).rejects.toMatchObject({ code: 'image-unavailable', message: expect.stringContaining('connection reset') })
    expect(seen.filter((s) => s === 'Pull complete')).toHaveLength(1)
    await expect(rt.create(spec('x', { image: 'fake/app:3' }))).rejects.toMatchObject({ code: 'image-unavailable' })
  })

  it('reports 127.0.0.1 as a running container\'s address unless set; none on network none', async () => {
    const rt = createFakeRuntime({ clock: new ManualClock(0) })
    const id = await rt.create(spec('a'))
    expect((await rt.inspect(id)).ip).toBeNull()
    await rt.start(id)
    expect((await rt.inspect(id)).ip).toBe('127.0.0.1')
    rt.setIp(id, '10.0.0.7')
    expect((await rt.list())[0]?.ip).toBe('10.0.0.7')
    const none = await rt.create(spec('b', { network: 'none' }))
    await rt.start(none)
    expect((await rt.inspect(none)).ip).toBeNull()
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
