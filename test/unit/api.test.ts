import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { connectError, createApiClient } from '../../src/api/client.ts'
import { createApiServer, tokenMatches, type ApiServer } from '../../src/api/server.ts'
import type { LeaveView, NodeView, PeerApi, RemoveVoterView, StatusView, VoterView } from '../../src/api/types.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { silentLogger } from '../../src/core/logger.ts'

const TOKEN = 'a'.repeat(64)
const logger = silentLogger()

function fakePeer(): PeerApi & { leaves: number; fail?: Error } {
  const nodes: NodeView[] = [
    { id: 'peer-1', name: 'p1', address: '127.0.0.1:7420', state: 'alive', labels: { zone: 'a' }, incarnation: 2, since: '2025-01-01T00:00:00.000Z', self: true, drained: false },
    { id: 'peer-2', name: 'p2', address: '127.0.0.1:7430', state: 'dead', labels: {}, incarnation: 0, since: '2025-01-01T00:01:00.000Z', self: false, drained: false },
  ]
  const peer = {
    leaves: 0,
    fail: undefined as Error | undefined,
    status(): StatusView {
      if (peer.fail) throw peer.fail
      return {
        id: 'peer-1',
        name: 'p1',
        clusterId: '0123456789ab',
        address: '127.0.0.1:7420',
        labels: { zone: 'a' },
        incarnation: 2,
        members: { alive: 1, suspect: 0, dead: 1, left: 0, total: 2 },
        startedAt: '2025-01-01T00:00:00.000Z',
        uptimeSeconds: 5,
        version: '0.1.0',
        pid: 42,
        leader: 'p1',
        leaderId: 'peer-1',
        term: 3,
        role: 'leader',
        commitIndex: 9,
        appliedIndex: 9,
      }
    },
    nodes: (): NodeView[] => nodes,
    async leave(): Promise<LeaveView> {
      peer.leaves++
      return { left: true, id: 'peer-1', name: 'p1' }
    },
    voters: async (): Promise<VoterView[]> => [
      { id: 'peer-1', name: 'p1', role: 'voter', match: 9, health: 'alive', leader: true, self: true },
      { id: 'peer-2', name: 'p2', role: 'learner', match: 3, health: 'dead', leader: false, self: false },
    ],
    async removeVoter(name: string, opts: { force: boolean }): Promise<RemoveVoterView> {
      if (name === 'p9') throw new SkeinError('not-a-voter', 'no voter or learner is named p9')
      if (name === 'p3') throw new SkeinError('no-leader', 'no leader is known')
      return { removed: true, id: 'peer-2', name, forced: opts.force }
    },
  }
  return peer
}

describe('API server', () => {
  let server: ApiServer
  let peer: ReturnType<typeof fakePeer>
  let base: string

  beforeEach(async () => {
    peer = fakePeer()
    server = await createApiServer({ listen: '127.0.0.1:0', token: TOKEN, peer, logger })
    base = `http://${server.address}`
  })
  afterEach(async () => {
    await server.close()
  })

  const get = (path: string, token?: string, method = 'GET'): Promise<Response> =>
    fetch(base + path, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })

  it('binds the asked host with a real port', () => {
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(server.address).not.toBe('127.0.0.1:0')
  })

  it('answers health without a token', async () => {
    const res = await get('/v1/health')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ ok: true, version: expect.any(String) })
  })

  it.each([
    ['GET', '/v1/status'],
    ['GET', '/v1/nodes'],
    ['POST', '/v1/leave'],
    ['GET', '/v1/voters'],
    ['POST', '/v1/voters/remove'],
    ['GET', '/v1/unknown'],
  ])('%s %s needs the token', async (method, path) => {
    for (const token of [undefined, 'wrong', `${TOKEN}x`, '']) {
      const res = await get(path, token, method)
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
      const body = (await res.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('unauthorized')
      expect(body.error.message).toEqual(expect.any(String))
    }
    expect(peer.leaves).toBe(0)
  })

  it('serves the views with the right token', async () => {
    const nodes = await get('/v1/nodes', TOKEN)
    expect(nodes.status).toBe(200)
    expect(await nodes.json()).toEqual(peer.nodes())
    const status = await get('/v1/status', TOKEN)
    expect(await status.json()).toEqual(peer.status())
    const leave = await get('/v1/leave', TOKEN, 'POST')
    expect(await leave.json()).toEqual({ left: true, id: 'peer-1', name: 'p1' })
    expect(peer.leaves).toBe(1)
  })

  it('answers unknown routes and handler failures with an error body', async () => {
    const nf = await get('/v1/nope', TOKEN)
    expect(nf.status).toBe(404)
    expect(await nf.json()).toMatchObject({ error: { code: 'not-found' } })
    peer.fail = new SkeinError('stuck', 'the peer is stuck', { hint: 'try later' })
    const res = await get('/v1/status', TOKEN)
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: { code: 'stuck', message: 'the peer is stuck', hint: 'try later' } })
    peer.fail = new SkeinError('busy', 'the peer is busy', { hint: 'try later' })
    expect((await get('/v1/status', TOKEN)).status).toBe(503)
  })

  it('voters and voters/remove: views, body checks and error statuses', async () => {
    const voters = await get('/v1/voters', TOKEN)
    expect(await voters.json()).toEqual(await peer.voters())
    const post = (body: unknown): Promise<Response> =>
      fetch(`${base}/v1/voters/remove`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
    const ok = await post({ name: 'p2' })
    expect(await ok.json()).toEqual({ removed: true, id: 'peer-2', name: 'p2', forced: false })
    expect((await post({ name: 'p2', force: true }).then((r) => r.json())) as RemoveVoterView).toMatchObject({ forced: true })
    expect((await post('not json')).status).toBe(400)
    expect((await post({ nom: 'p2' })).status).toBe(400)
    const missing = await post({ name: 'p9' })
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ error: { code: 'not-a-voter' } })
    expect((await post({ name: 'p3' })).status).toBe(503)
    expect((await get('/v1/debug/propose', TOKEN, 'POST')).status).toBe(404)
    const client = createApiClient({ address: server.address, token: TOKEN })
    expect(await client.voters()).toHaveLength(2)
    expect(await client.removeVoter('p2', { force: true })).toMatchObject({ removed: true, forced: true })
    await expect(client.removeVoter('p3')).rejects.toMatchObject({ code: 'no-leader' })
  })

  it('refuses a port in use with port-in-use', async () => {
    await expect(createApiServer({ listen: server.address, token: TOKEN, peer, logger })).rejects.toMatchObject({
      code: 'port-in-use',
      message: expect.stringContaining(server.address),
    })
  })

  it('the typed client reads the views and checks their shape', async () => {
    const client = createApiClient({ address: server.address, token: TOKEN })
    expect(await client.health()).toMatchObject({ ok: true })
    expect(await client.nodes()).toEqual(peer.nodes())
    expect((await client.status()).members.alive).toBe(1)
    expect(await client.leave()).toEqual({ left: true, id: 'peer-1', name: 'p1' })
  })

  it('the client maps 401 to a clear error, with and without a token', async () => {
    await expect(createApiClient({ address: server.address, token: 'nope' }).nodes()).rejects.toMatchObject({
      code: 'unauthorized',
      message: expect.stringMatching(/refused the API token/),
    })
    await expect(createApiClient({ address: server.address }).status()).rejects.toMatchObject({
      code: 'unauthorized',
      message: expect.stringMatching(/needs an API token/),
      hint: expect.stringMatching(/SKEIN_TOKEN/),
    })
  })

  it('says why it tried that address when the data dir named no running agent', async () => {
    const origin = '/srv/skein has no api.json (is its agent running?), so the default 127.0.0.1:7421 was tried'
    await expect(createApiClient({ address: server.address, token: 'nope', origin }).nodes()).rejects.toMatchObject({
      code: 'unauthorized', hint: expect.stringMatching(/^\/srv\/skein has no api\.json .*; pass the agent’s --data-dir/),
    })
    const dead = createServer()
    await new Promise<void>((ok) => dead.listen(0, '127.0.0.1', ok))
    const port = (dead.address() as { port: number }).port
    await new Promise<void>((ok) => dead.close(() => ok()))
    await expect(createApiClient({ address: `127.0.0.1:${port}`, token: TOKEN, origin }).nodes()).rejects.toMatchObject({
      code: 'agent-unreachable', hint: expect.stringMatching(/has no api\.json .*; start one with `skein agent`/),
    })
  })

  it('the client rejects an answer of the wrong shape', async () => {
    peer.nodes = () => [{ id: 1 }] as unknown as NodeView[]
    await expect(createApiClient({ address: server.address, token: TOKEN }).nodes()).rejects.toMatchObject({ code: 'bad-response' })
  })

  it('waitGone is true once the server has closed', async () => {
    const client = createApiClient({ address: server.address, token: TOKEN })
    expect(await client.waitGone(300)).toBe(false)
    await server.close()
    expect(await client.waitGone(3000)).toBe(true)
  })
})

describe('API client errors when nothing answers', () => {
  let silent: Server | undefined
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()))
    silent = undefined
  })

  it('connection refused → "no skein agent answers at …" with the hint', async () => {
    // Find a port with nothing on it: bind, note the port, close.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address()
        s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
      })
    })
    const address = `127.0.0.1:${port}`
    const err = await createApiClient({ address, token: TOKEN })
      .status()
      .then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(SkeinError)
    expect((err as SkeinError).code).toBe('agent-unreachable')
    expect((err as SkeinError).oneLine()).toBe(`no skein agent answers at ${address} (start one with \`skein agent\`, or pass --data-dir/--api)`)
  })

  it('a server that never answers → timeout error', async () => {
    // accept and say nothing
    silent = createServer((socket) => void sockets.push(socket))
    const port = await new Promise<number>((resolve) => {
      silent?.listen(0, '127.0.0.1', () => {
        const a = silent?.address()
        resolve(typeof a === 'object' && a !== null ? a.port : 0)
      })
    })
    await expect(createApiClient({ address: `127.0.0.1:${port}`, token: TOKEN, timeoutMs: 300 }).nodes()).rejects.toMatchObject({
      code: 'agent-timeout',
      message: expect.stringMatching(/did not answer within 0.3s/),
    })
  })

  it('maps wrapped errno codes', () => {
    const wrapped = new TypeError('fetch failed', { cause: new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]) })
    expect(connectError('h:1', wrapped, 1000).code).toBe('agent-unreachable')
    expect(connectError('h:1', new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) }), 1000).message).toMatch(/resolve/)
  })
})

describe('tokenMatches', () => {
  it('compares exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true)
    expect(tokenMatches('abc', 'abd')).toBe(false)
    expect(tokenMatches('abc', 'abcd')).toBe(false)
    expect(tokenMatches('', 'abc')).toBe(false)
  })
})
