import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApiClient } from '../../src/api/client.ts'
import { silentLogger } from '../../src/core/logger.ts'
import type { Member, MemberInfo } from '../../src/membership/types.ts'
import { chooseAdvertise, joinLoop } from '../../src/peer/agent-support.ts'
import { runAgent, type AgentDeps } from '../../src/peer/agent.ts'
import type { KeyFunctions } from '../../src/peer/datadir.ts'
import { countMembers, toNodeViews } from '../../src/peer/views.ts'
import type { Transport } from '../../src/transport/types.ts'

/** A stand-in for the membership service: records what the agent asks of it. */
const calls: string[] = []
let joinAnswers: (addresses: string[]) => { joined: string[]; failed: { address: string; error: string }[] } = () => ({ joined: [], failed: [] })
let lastInit: { self: MemberInfo; incarnation: number } | undefined
let persistFn: ((s: { incarnation: number; peers: { id: string; address: string }[] }) => void) | undefined

vi.mock('../../src/membership/service.ts', () => ({
  createMembershipService: (init: { self: MemberInfo; incarnation: number }, components: { persist?: typeof persistFn }) => {
    lastInit = init
    persistFn = components.persist
    const self: Member = { ...init.self, state: 'alive', incarnation: init.incarnation, since: Date.now() }
    const others: Member[] = []
    return {
      start: () => void calls.push('membership.start'),
      stop: async () => void calls.push('membership.stop'),
      join: async (addresses: string[]) => {
        calls.push(`join ${addresses.join(',')}`)
        const res = joinAnswers(addresses)
        for (const a of res.joined) others.push({ id: `id-${a}`, name: a, address: a, labels: {}, state: 'alive', incarnation: 0, since: Date.now() })
        return res
      },
      leave: async () => {
        calls.push('membership.leave')
        self.state = 'left'
      },
      members: () => [self, ...others],
      member: (id: string) => [self, ...others].find((m) => m.id === id),
      self: () => self,
      on: () => undefined,
      off: () => undefined,
    }
  },
}))

const keys: KeyFunctions = {
  generateIdentity: async () => new Uint8Array(randomBytes(36)),
  peerIdOfIdentity: (b) => `peer-${createHash('sha256').update(b).digest('hex').slice(0, 16)}`,
  generateClusterKey: () => new Uint8Array(randomBytes(32)),
}

function fakeTransport(identity: Uint8Array, listen: string): Transport {
  const port = listen.endsWith(':0') ? 45678 : Number(listen.split(':').pop())
  return {
    selfId: keys.peerIdOfIdentity(identity),
    listenAddresses: () => [`127.0.0.1:${port}`],
    send: async () => undefined,
    handle: () => undefined,
    publish: async () => undefined,
    subscribe: () => undefined,
    dial: async () => 'x',
    hangUp: async () => undefined,
    connectedPeers: () => [],
    on: () => undefined,
    stats: () => ({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, rejected: 0 }),
    stop: async () => void calls.push('transport.stop'),
  }
}

describe('runAgent (composition root, with fakes)', () => {
  let dir: string
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'skein-agent-')), 'data')
    calls.length = 0
    joinAnswers = () => ({ joined: [], failed: [] })
  })
  afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }))

  const start = (opts: Partial<Parameters<typeof runAgent>[0]> = {}, extra: Partial<AgentDeps> = {}) => {
    const ctl = new AbortController()
    let ready!: (info: { peerId: string; address: string; apiAddress: string; joinToken: string }) => void
    const readyP = new Promise<{ peerId: string; address: string; apiAddress: string; joinToken: string }>((r) => (ready = r))
    const done = runAgent(
      { dataDir: dir, listen: '127.0.0.1:0', api: '127.0.0.1:0', ...opts },
      {
        logger: silentLogger(),
        keys,
        createTransport: async (init) => fakeTransport(init.identity, init.listen),
        handleSignals: false,
        signal: ctl.signal,
        onReady: (i) => ready(i),
        ...extra,
      },
    )
    return { ctl, ready: readyP, done }
  }

  it('starts in order, writes api.json, serves the API, and stops in reverse on abort', async () => {
    const a = start({ name: 'n1', labels: { zone: 'a' } })
    const info = await a.ready
    expect(info.address).toBe('127.0.0.1:45678')
    expect(info.joinToken).toMatch(/^skein1-/)
    const apiJson = JSON.parse(readFileSync(join(dir, 'api.json'), 'utf8')) as { address: string; pid: number }
    expect(apiJson).toMatchObject({ address: info.apiAddress, pid: process.pid })
    const token = readFileSync(join(dir, 'api.token'), 'utf8').trim()
    const client = createApiClient({ address: info.apiAddress, token })
    const nodes = await client.nodes()
    expect(nodes).toEqual([expect.objectContaining({ id: info.peerId, name: 'n1', labels: { zone: 'a' }, state: 'alive', self: true })])
    const status = await client.status()
    expect(status).toMatchObject({ id: info.peerId, name: 'n1', members: { alive: 1, total: 1 }, incarnation: 0 })
    expect(lastInit?.self).toEqual({ id: info.peerId, name: 'n1', address: '127.0.0.1:45678', labels: { zone: 'a' } })
    a.ctl.abort()
    await a.done
    expect(calls).toEqual(['membership.start', 'membership.stop', 'transport.stop'])
    expect(existsSync(join(dir, 'api.json'))).toBe(false)
    expect(await client.waitGone(1000)).toBe(true)
  })

  it('the first agent of a new cluster bootstraps Raft and leads it alone', async () => {
    const a = start({ name: 'solo' })
    const info = await a.ready
    const client = createApiClient({ address: info.apiAddress, token: readFileSync(join(dir, 'api.token'), 'utf8').trim() })
    await vi.waitFor(async () => expect(await client.status()).toMatchObject({ role: 'leader', leader: 'solo', leaderId: info.peerId }), { timeout: 5000, interval: 50 })
    const status = await client.status()
    expect(status.term).toBeGreaterThanOrEqual(2)
    expect(status.commitIndex).toBeGreaterThanOrEqual(2)
    expect(await client.voters()).toEqual([{ id: info.peerId, name: 'solo', role: 'voter', match: expect.any(Number), health: 'alive', leader: true, self: true }])
    await expect(client.removeVoter('nobody')).rejects.toMatchObject({ code: 'not-a-voter' })
    a.ctl.abort()
    await a.done
    // A restart keeps the Raft state: same term or later, nothing bootstrapped twice.
    const b = start({ name: 'solo' })
    const again = await b.ready
    const c2 = createApiClient({ address: again.apiAddress, token: readFileSync(join(dir, 'api.token'), 'utf8').trim() })
    expect((await c2.status()).term).toBeGreaterThanOrEqual(status.term)
    b.ctl.abort()
    await b.done
  })

  it('leave: broadcasts left, then the agent stops by itself', async () => {
    const a = start()
    const info = await a.ready
    const client = createApiClient({ address: info.apiAddress, token: readFileSync(join(dir, 'api.token'), 'utf8').trim() })
    expect(await client.leave()).toMatchObject({ left: true, id: info.peerId })
    await a.done
    expect(calls).toEqual(['membership.start', 'membership.leave', 'membership.stop', 'transport.stop'])
  })

  it('restarts as the same peer with a higher incarnation and rejoins persisted peers', async () => {
    const a = start({ name: 'n1', listen: '127.0.0.1:45999' })
    const first = await a.ready
    persistFn?.({ incarnation: 0, peers: [{ id: 'p2', address: '127.0.0.1:47001' }] })
    a.ctl.abort()
    await a.done
    calls.length = 0
    joinAnswers = (addrs) => ({ joined: addrs, failed: [] })
    // no name, no listen: both come from the data dir
    const b = start({ listen: undefined })
    const second = await b.ready
    expect(second.peerId).toBe(first.peerId)
    expect(second.address).toBe('127.0.0.1:45999')
    expect(lastInit?.incarnation).toBe(1)
    expect(lastInit?.self.name).toBe('n1')
    await vi.waitFor(() => expect(calls).toContain('join 127.0.0.1:47001'))
    b.ctl.abort()
    await b.done
  })

  it('refuses a second agent on the same data dir', async () => {
    const a = start()
    await a.ready
    await expect(runAgent({ dataDir: dir, listen: '127.0.0.1:0', api: '127.0.0.1:0' }, { logger: silentLogger(), keys, handleSignals: false })).rejects.toMatchObject({
      code: 'already-running',
    })
    a.ctl.abort()
    await a.done
  })

  it('a taken API port: port-in-use, and everything started is stopped', async () => {
    const a = start()
    const info = await a.ready
    const other = join(dir, '..', 'other')
    await expect(
      runAgent({ dataDir: other, listen: '127.0.0.1:0', api: info.apiAddress }, { logger: silentLogger(), keys, handleSignals: false, createTransport: async (i) => fakeTransport(i.identity, i.listen) }),
    ).rejects.toMatchObject({ code: 'port-in-use' })
    expect(calls.slice(-2)).toEqual(['membership.stop', 'transport.stop'])
    a.ctl.abort()
    await a.done
  })
})

describe('views', () => {
  const m = (id: string, name: string, state: Member['state']): Member => ({ id, name, address: `${name}:7420`, labels: {}, state, incarnation: 1, since: Date.parse('2025-01-01T00:00:00Z') })
  it('counts members by state and sorts node views by name, marking self', () => {
    const members = [m('c', 'zeta', 'alive'), m('a', 'alpha', 'dead'), m('b', 'mid', 'suspect'), m('d', 'mid', 'left')]
    expect(countMembers(members)).toEqual({ alive: 1, suspect: 1, dead: 1, left: 1, total: 4 })
    const views = toNodeViews(members, 'c')
    expect(views.map((v) => v.id)).toEqual(['a', 'b', 'd', 'c'])
    expect(views.filter((v) => v.self).map((v) => v.name)).toEqual(['zeta'])
    expect(views[0]?.since).toBe('2025-01-01T00:00:00.000Z')
  })
})

describe('agent helpers', () => {
  it('chooseAdvertise: a specific listen host, else a LAN address, with the bound port', () => {
    const ifaces = { lo: [{ family: 'IPv4', internal: true, address: '127.0.0.1' }], eth0: [{ family: 'IPv4', internal: false, address: '192.168.1.5' }] } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>
    expect(chooseAdvertise('127.0.0.1:7420', [], ifaces)).toBe('127.0.0.1:7420')
    expect(chooseAdvertise('127.0.0.1:0', ['127.0.0.1:40001'], ifaces)).toBe('127.0.0.1:40001')
    expect(chooseAdvertise('0.0.0.0:7420', ['0.0.0.0:7420'], ifaces)).toBe('192.168.1.5:7420')
    expect(chooseAdvertise('0.0.0.0:7420', [], {})).toBe('127.0.0.1:7420')
  })

  it('joinLoop retries with backoff until a peer answers', async () => {
    let attempts = 0
    const ctl = new AbortController()
    await joinLoop({
      membership: {
        join: async (a) => (++attempts < 3 ? { joined: [], failed: a.map((address) => ({ address, error: 'refused' })) } : { joined: a, failed: [] }),
        members: () => [],
      },
      addresses: ['10.0.0.1:7420'],
      selfId: 'me',
      logger: silentLogger(),
      signal: ctl.signal,
      firstDelayMs: 5,
    })
    expect(attempts).toBe(3)
  })

  it('joinLoop stops when aborted or when another member reaches us', async () => {
    const ctl = new AbortController()
    let attempts = 0
    let reached = false
    const loop = joinLoop({
      membership: {
        join: async () => {
          attempts++
          if (attempts === 2) reached = true
          return { joined: [], failed: [] }
        },
        members: () => (reached ? [{ id: 'other', state: 'alive' } as Member] : []),
      },
      addresses: ['10.0.0.1:7420'],
      selfId: 'me',
      logger: silentLogger(),
      signal: ctl.signal,
      firstDelayMs: 5,
    })
    await loop
    expect(attempts).toBe(2)
    let n = 0
    const never = joinLoop({ membership: { join: async () => (n++, { joined: [], failed: [] }), members: () => [] }, addresses: ['x:1'], selfId: 'me', logger: silentLogger(), signal: ctl.signal, firstDelayMs: 60_000 })
    await new Promise((r) => setTimeout(r, 20))
    ctl.abort()
    await never
    expect(n).toBe(1)
  })
})
