// One contract suite for every ContainerRuntime: the fake (test/unit/runtime-fake.test.ts) and
// Docker (test/integration/runtime-docker.test.ts). Containers only from local/busybox:1, each run
// with its own cluster label; afterAll removes every container carrying it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SkeinError } from '../../src/core/errors.ts'
import { LABELS } from '../../src/runtime/labels.ts'
import type { ContainerEvent, ContainerRuntime, ContainerSpec, LogLine } from '../../src/runtime/types.ts'

/** What a runtime under test offers. */
export interface RuntimeHarness {
  runtime: ContainerRuntime
  /** Containers really run (ports answer, stop waits for the grace period). */
  real: boolean
  /** A host port free for publishing. */
  freePort(): Promise<number>
}

const IMAGE = 'local/busybox:1'

/** Polls `f` until it returns a value other than undefined, at most `ms`. */
export async function waitFor<T>(f: () => Promise<T | undefined>, ms = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Collects up to `n` items of an async iterable, within `ms`, then aborts it. */
async function take<T>(make: (signal: AbortSignal) => AsyncIterable<T>, n: number, ms: number, until?: (x: T) => boolean): Promise<T[]> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  const out: T[] = []
  try {
    for await (const x of make(ac.signal)) {
      out.push(x)
      if (out.length >= n || until?.(x) === true) break
    }
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
  return out
}

/** The contract suite. */
export function describeRuntime(name: string, make: () => Promise<RuntimeHarness>): void {
  describe(`ContainerRuntime contract: ${name}`, () => {
    let h: RuntimeHarness
    let rt: ContainerRuntime
    const cluster = `test-${process.pid}-${Date.now().toString(36)}`
    let n = 0
    const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => {
      n += 1
      return {
        name: `skein-contract-${cluster}-${n}`, image: IMAGE, command: ['sleep', '3600'], entrypoint: null, env: {}, workingDir: null, user: null,
        ports: [], memoryBytes: null, nanoCpus: null, pidsLimit: null, network: 'bridge', mounts: [], healthcheck: null,
        ...over,
        labels: { [LABELS.cluster]: cluster, [LABELS.slot]: String(n), ...over.labels },
      }
    }
    const run = async (over: Partial<ContainerSpec> = {}) => {
      const id = await rt.create(spec(over))
      await rt.start(id)
      return id
    }
    const exited = (id: string) => waitFor(async () => { const i = await rt.inspect(id); return i.state === 'exited' ? i : undefined }, 10_000, `${id} to exit`)

    beforeAll(async () => {
      h = await make()
      rt = h.runtime
      await rt.ping()
      await rt.ensureImage(IMAGE)
    })
    afterAll(async () => {
      if (rt === undefined) return
      for (const c of await rt.list({ labels: { [LABELS.cluster]: cluster } })) await rt.remove(c.id)
    })

    it('creates, starts, lists by labels, inspects, stops and removes', async () => {
      const s = spec({ labels: { 'io.skein.service': 'web' } })
      const id = await rt.create(s)
      let info = await rt.inspect(id)
      expect(info).toMatchObject({ id, name: s.name, image: IMAGE, state: 'created', exitCode: null, startedAt: null, restartCount: 0, health: 'none', ip: null })
      await rt.start(id)
      await rt.start(id) // idempotent
      info = await rt.inspect(id)
      expect(info.state).toBe('running')
      expect(info.ip).toMatch(/^\d{1,3}(\.\d{1,3}){3}$/) // its address on the bridge network, while it runs
      expect(info.startedAt).toBeGreaterThan(Date.now() - 60_000)
      expect(info.labels).toMatchObject({ [LABELS.cluster]: cluster, 'io.skein.service': 'web' })
      expect((await rt.inspect(s.name)).id).toBe(id)
      const mine = await rt.list({ labels: { [LABELS.cluster]: cluster, 'io.skein.service': 'web' } })
      expect(mine.map((c) => c.id)).toEqual([id])
      expect((await rt.list({ labels: { [LABELS.cluster]: cluster, 'io.skein.service': '' } })).map((c) => c.id)).toEqual([id])
      expect(await rt.list({ labels: { [LABELS.cluster]: `${cluster}-other` } })).toEqual([])
      await rt.stop(id, { graceMs: 1000 })
      await rt.stop(id, { graceMs: 1000 }) // idempotent
      info = await rt.inspect(id)
      expect(info.state).toBe('exited')
      expect(info.ip).toBeNull()
      expect(info.exitCode).toBe(137) // `sleep` as PID 1 ignores SIGTERM: killed after the grace
      await rt.remove(id)
      await rt.remove(id) // idempotent
      await expect(rt.inspect(id)).rejects.toMatchObject({ code: 'container-not-found' })
    })

    it('stop waits for the grace period, and a process that handles SIGTERM exits cleanly', async () => {
      const stubborn = await run()
      const t0 = Date.now()
      await rt.stop(stubborn, { graceMs: 1000 })
      if (h.real) expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
      const polite = await run({ command: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'] })
      await new Promise((r) => setTimeout(r, 300)) // let the shell install its trap
      const t1 = Date.now()
      await rt.stop(polite, { graceMs: 5000 })
      if (h.real) expect(Date.now() - t1).toBeLessThan(4000)
      expect((await rt.inspect(polite)).exitCode).toBe(0)
    })

    it('rejects a duplicate name with a typed error', async () => {
      const s = spec()
      await rt.create(s)
      await expect(rt.create(s)).rejects.toMatchObject({ code: 'container-name-conflict' })
      await expect(rt.start('no-such-container-xyz')).rejects.toMatchObject({ code: 'container-not-found' })
    })

    it('passes env and command, and reports exit codes', async () => {
      const id = await run({ command: ['sh', '-c', 'echo "$GREETING"; echo oops >&2; exit 3'], env: { GREETING: 'hello world' } })
      const info = await exited(id)
      expect(info.exitCode).toBe(3)
      expect(info.finishedAt).not.toBeNull()
      const lines = await take((signal) => rt.logs(id, { signal }), 10, 5000)
      // The fake prints echo arguments literally; env expansion is the real shell's.
      const out = lines.filter((l) => l.stream === 'stdout').map((l) => l.text)
      expect(out).toHaveLength(1)
      if (h.real) expect(out[0]).toBe('hello world')
      expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual(['oops'])
      for (const l of lines) expect(l.time).toBeGreaterThan(0)
    })

    it('starts an exited container again: same id, new start time, no engine restart counted', async () => {
      const id = await run({ command: ['sh', '-c', 'exit 1'] })
      const first = await exited(id)
      await new Promise((r) => setTimeout(r, 20))
      await rt.start(id)
      const second = await exited(id)
      expect(second.id).toBe(first.id)
      expect(second.exitCode).toBe(1)
      expect(second.startedAt ?? 0).toBeGreaterThanOrEqual(first.startedAt ?? 0)
      expect(second.restartCount).toBe(0) // policy `no`: the agent counts restarts, not the engine
    })

    it('publishes a port', async () => {
      const port = await h.freePort()
      const id = await run({
        command: ['sh', '-c', 'mkdir -p /www && echo skein-ok > /www/index.html && httpd -f -p 8080 -h /www'],
        ports: [{ containerPort: 8080, protocol: 'tcp', hostPort: port, hostIp: null }],
      })
      const info = await rt.inspect(id)
      expect(info.ports).toEqual([{ containerPort: 8080, protocol: 'tcp', hostPort: port, hostIp: null }])
      if (!h.real) return
      const body = await waitFor(async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(1000) })
          return r.ok ? await r.text() : undefined
        } catch {
          return undefined
        }
      }, 10_000, 'httpd to answer')
      expect(body.trim()).toBe('skein-ok')
    })

    it('tails and follows logs until aborted', async () => {
      const id = await run({ command: ['sh', '-c', 'echo one; echo two; echo three; sleep 3600'] })
      await waitFor(async () => ((await take((signal) => rt.logs(id, { signal }), 3, 3000)).length === 3 ? true : undefined), 10_000, 'three lines')
      const tail = await take((signal) => rt.logs(id, { tail: 2, signal }), 10, 3000)
      expect(tail.map((l) => l.text)).toEqual(['two', 'three'])
      // Follow: the existing lines, then it stays open until aborted.
      const ac = new AbortController()
      const got: LogLine[] = []
      const t0 = Date.now()
      setTimeout(() => ac.abort(), 500)
      for await (const l of rt.logs(id, { follow: true, tail: 1, signal: ac.signal })) got.push(l)
      expect(got.map((l) => l.text)).toEqual(['three'])
      expect(Date.now() - t0).toBeGreaterThanOrEqual(400)
    })

    it('reports stats of a running container', async () => {
      const id = await run()
      const s = await rt.stats(id)
      expect(s.cpuPercent).toBeGreaterThanOrEqual(0)
      expect(s.memoryBytes).toBeGreaterThan(0)
    })

    it('streams start, die and health events for its labels only', async () => {
      const ac = new AbortController()
      const events: ContainerEvent[] = []
      const labels = { [LABELS.cluster]: cluster, [LABELS.service]: 'evented' }
      const done = (async () => {
        for await (const e of rt.events({ labels, signal: ac.signal })) {
          events.push(e)
          if (e.action === 'die') break
        }
      })()
      await new Promise((r) => setTimeout(r, 200)) // subscribed before the container starts
      await run({ command: ['sleep', '3600'] }) // another service: not seen
      const id = await run({
        labels, command: ['sh', '-c', 'sleep 1; exit 4'],
        healthcheck: { test: ['CMD', 'true'], intervalNs: 100_000_000, timeoutNs: 1_000_000_000, retries: 1, startPeriodNs: 0 },
      })
      const timer = setTimeout(() => ac.abort(), 10_000)
      await done
      clearTimeout(timer)
      const mine = events.filter((e) => e.id === id).map((e) => e.action)
      expect(mine).toContain('start')
      expect(mine).toContain('health_status')
      expect(mine[mine.length - 1]).toBe('die')
      expect(events.every((e) => e.id === id)).toBe(true)
      expect(events.find((e) => e.action === 'die')?.exitCode).toBe(4)
      expect(events.find((e) => e.action === 'health_status')?.health).toBe('healthy')
      expect(events.find((e) => e.action === 'start')?.labels).toMatchObject(labels)
    })

    it('reports health from the engine healthcheck', async () => {
      const hc = { intervalNs: 100_000_000, timeoutNs: 1_000_000_000, retries: 1, startPeriodNs: 0 }
      const good = await run({ healthcheck: { test: ['CMD', 'true'], ...hc } })
      const bad = await run({ healthcheck: { test: ['CMD-SHELL', 'exit 1'], ...hc } })
      await waitFor(async () => ((await rt.inspect(good)).health === 'healthy' ? true : undefined), 10_000, 'healthy')
      await waitFor(async () => ((await rt.inspect(bad)).health === 'unhealthy' ? true : undefined), 10_000, 'unhealthy')
    })

    it('gives a clear error for an image that cannot be had; progress is reported only for a pull', async () => {
      const progress: string[] = []
      await rt.ensureImage(IMAGE, { onProgress: (p) => progress.push(p.status) })
      expect(progress).toEqual([]) // present: no pull
      const err = await rt.ensureImage('skein-test/no-such-image:404', { onProgress: (p) => progress.push(p.status) }).then(() => null, (e: unknown) => e)
      expect(progress[0]).toBe('pulling')
      expect(err).toBeInstanceOf(SkeinError)
      expect((err as SkeinError).code).toBe('image-unavailable')
      expect((err as SkeinError).message).toContain('skein-test/no-such-image:404')
      expect((err as SkeinError).hint).toBeDefined()
      await expect(rt.create(spec({ image: 'skein-test/no-such-image:404' }))).rejects.toMatchObject({ code: 'image-unavailable' })
    })
  })
}
