// The probe shell (src/agent/probes.ts) against real loopback servers: HTTP status ranges, TCP
// connects, timeouts, refused ports; the prober's limit on probes in flight, and forgetting a
// container aborts its probe.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { ProbeCheck } from '../../src/agent/probe.ts'
import { createProber, probeOnce, type ProbeView } from '../../src/agent/probes.ts'
import { ManualClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'

const timing = { intervalMs: 1000, timeoutMs: 300, retries: 1, startPeriodMs: 0 }
const http = (port: number, over: Partial<Extract<ProbeCheck, { kind: 'http' }>> = {}): ProbeCheck => ({ kind: 'http', port, path: '/health', statusMin: 200, statusMax: 399, ...timing, ...over })
const tcp = (port: number): ProbeCheck => ({ kind: 'tcp', port, ...timing })

const servers: (Server | HttpServer)[] = []
const accepted = new Set<Socket>()
afterEach(async () => {
  for (const c of accepted) c.destroy()
  accepted.clear()
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => { if ('closeAllConnections' in s) s.closeAllConnections(); s.close(r) })))
})

async function listen<S extends Server | HttpServer>(s: S): Promise<number> {
  servers.push(s)
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const a = s.address()
  if (a === null || typeof a === 'string') throw new Error('no port')
  return a.port
}

/** An HTTP server answering `status()`; remembers the paths asked. */
async function httpServer(status: () => number): Promise<{ port: number; paths: string[] }> {
  const paths: string[] = []
  const port = await listen(createHttpServer((req, res) => { paths.push(req.url ?? ''); res.statusCode = status(); res.end('x') }))
  return { port, paths }
}

/** A TCP server that accepts and never answers; counts open connections. */
async function silentServer(): Promise<{ port: number; open: () => number; seen: () => number }> {
  const sockets = new Set<Socket>()
  let seen = 0
  const s = createTcpServer((c) => { seen++; sockets.add(c); accepted.add(c); c.resume(); c.on('close', () => sockets.delete(c)); c.on('error', () => {}) })
  const port = await listen(s)
  return { port, open: () => sockets.size, seen: () => seen }
}

async function closedPort(): Promise<number> {
  const s = createTcpServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const a = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return a.port
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('probeOnce', () => {
  it('http: a status in the range is ok, one outside it fails with the status, the path is asked', async () => {
    let status = 200
    const srv = await httpServer(() => status)
    expect(await probeOnce(http(srv.port), '127.0.0.1')).toEqual({ kind: 'ok' })
    status = 500
    const r = await probeOnce(http(srv.port), '127.0.0.1')
    expect(r).toEqual({ kind: 'fail', reason: `GET http://127.0.0.1:${srv.port}/health: status 500, expected 200-399` })
    status = 204
    expect(await probeOnce(http(srv.port, { statusMin: 200, statusMax: 204 }), '127.0.0.1')).toEqual({ kind: 'ok' })
    expect(await probeOnce(http(srv.port, { statusMin: 200, statusMax: 200 }), '127.0.0.1')).toMatchObject({ kind: 'fail' })
    expect(srv.paths).toEqual(['/health', '/health', '/health', '/health'])
  })

  it('http and tcp: a server that does not answer times out; a closed port fails with the reason', async () => {
    const silent = await silentServer()
    const t0 = Date.now()
    expect(await probeOnce(http(silent.port), '127.0.0.1')).toEqual({ kind: 'timeout' })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    const port = await closedPort()
    const r1 = await probeOnce(http(port), '127.0.0.1')
    expect(r1.kind === 'fail' && r1.reason).toMatch(new RegExp(`^GET http://127.0.0.1:${port}/health: .*ECONNREFUSED`))
    const r2 = await probeOnce(tcp(port), '127.0.0.1')
    expect(r2.kind === 'fail' && r2.reason).toMatch(new RegExp(`^tcp 127.0.0.1:${port}: .*ECONNREFUSED`))
    await until('the timed-out connection to close', () => silent.open() === 0)
  })

  it('tcp: a listening port is ok; no address fails; an abort ends it at once', async () => {
    const silent = await silentServer()
    expect(await probeOnce(tcp(silent.port), '127.0.0.1')).toEqual({ kind: 'ok' })
    expect(await probeOnce(tcp(silent.port), null)).toMatchObject({ kind: 'fail', reason: expect.stringContaining('no IP address') })
    const ac = new AbortController()
    const p = probeOnce(http(silent.port, { timeoutMs: 60_000 }), '127.0.0.1', ac.signal)
    await until('the probe to connect', () => silent.open() > 0)
    ac.abort()
    expect(await p).toMatchObject({ kind: 'fail', reason: expect.stringContaining('aborted') })
  })
})

describe('prober', () => {
  const T0 = 1_000_000
  it('runs due probes, reports health changes, and starts over for a new run of the container', async () => {
    let status = 200
    const srv = await httpServer(() => status)
    const clock = new ManualClock(T0)
    const changes: [string, ProbeView][] = []
    const p = createProber({ clock, logger: silentLogger(), onChange: (id, v) => changes.push([id, v]) })
    try {
      p.sync([{ id: 'c1', startedAt: T0, address: '127.0.0.1', check: http(srv.port) }])
      expect(p.view('c1')).toEqual({ health: 'starting', reason: null })
      await p.runDue()
      expect(srv.paths).toEqual([]) // not due before one interval
      clock.advance(1000)
      await p.runDue()
      expect(p.view('c1')).toEqual({ health: 'healthy', reason: null })
      status = 503
      clock.advance(1000)
      await p.runDue()
      expect(p.view('c1')).toMatchObject({ health: 'unhealthy', reason: expect.stringContaining('status 503') })
      expect(changes.map(([id, v]) => `${id}:${v.health}`)).toEqual(['c1:healthy', 'c1:unhealthy'])
      // Restarted (new start time): a fresh state.
      p.sync([{ id: 'c1', startedAt: T0 + 5000, address: '127.0.0.1', check: http(srv.port) }])
      expect(p.view('c1')?.health).toBe('starting')
      p.sync([])
      expect(p.view('c1')).toBeUndefined()
    } finally {
      p.stop()
    }
  })

  it('keeps at most maxInFlight probes in flight, and forgetting the containers aborts theirs', async () => {
    const silent = await silentServer()
    const clock = new ManualClock(T0)
    const p = createProber({ clock, logger: silentLogger(), maxInFlight: 2 })
    try {
      const check = http(silent.port, { timeoutMs: 60_000 })
      p.sync(Array.from({ length: 6 }, (_, n) => ({ id: `c${n}`, startedAt: T0, address: '127.0.0.1', check })))
      clock.advance(1000)
      const run = p.runDue()
      await until('2 connections', () => silent.open() === 2)
      await new Promise((r) => setTimeout(r, 100))
      expect(p.inFlight()).toBe(2)
      expect(silent.seen()).toBe(2)
      p.sync([]) // the containers went away
      await run
      expect(p.inFlight()).toBe(0)
      await until('the aborted connections to close', () => silent.open() === 0)
      await p.runDue()
      expect(silent.seen()).toBe(2) // nothing probed after they went away
    } finally {
      p.stop()
    }
  })
})
