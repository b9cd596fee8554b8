import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiClient, type ApiClient } from '../../src/api/client.ts'
import type { EventView, LogItemView } from '../../src/api/running.ts'
import { createApiServer, type ApiServer } from '../../src/api/server.ts'
import type { PeerApi } from '../../src/api/types.ts'
import { applyEntry, decodeAppState, decodeCommand, emptyAppState, encodeAppState, encodeCommand, type Command } from '../../src/consensus/commands.ts'
import type { Entry } from '../../src/consensus/types.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { createLogger } from '../../src/core/logger.ts'
import { answerSchema, eventToWire } from '../../src/peer/query.ts'
import { announceRestart, commitRestarting, createClusterEvents, MAX_RESTARTING_AHEAD_MS, proposeDrain, resolveHost } from '../../src/peer/running-extras.ts'
import { encode } from '../../src/transport/codec.ts'

const entry = (index: number, term: number, cmd: Command): Entry => ({ index, term, type: 'normal', data: encodeCommand(cmd) })

describe('the drain command', () => {
  it('checks its schema', () => {
    const cmd: Command = { kind: 'drain', host: 'peer-a', drained: true }
    expect(decodeCommand(encodeCommand(cmd))).toEqual({ ok: true, value: cmd })
    for (const bad of [{ kind: 'drain', host: '', drained: true }, { kind: 'drain', host: 'a' }, { kind: 'drain', host: 'a', drained: 'yes' }]) expect(decodeCommand(encode(bad)).ok).toBe(false)
  })

  it('applies into the drained set, and snapshots carry it; v2 snapshots load with none drained', () => {
    const st = emptyAppState()
    applyEntry(st, entry(1, 1, { kind: 'drain', host: 'a', drained: true }))
    applyEntry(st, entry(2, 1, { kind: 'drain', host: 'b', drained: true }))
    applyEntry(st, entry(3, 2, { kind: 'drain', host: 'a', drained: false }))
    expect([...st.drained]).toEqual(['b'])
    expect(st.fence.mark()).toEqual({ term: 2, index: 3 })
    const back = decodeAppState(encodeAppState(st), 3)
    expect(back.ok && [...back.value.drained]).toEqual(['b'])
    const v2 = encode({ v: 2, assignments: [], fence: { term: 1, index: 1 }, table: { term: 0, index: 0, assignments: [] } })
    const old = decodeAppState(v2, 1)
    expect(old.ok && old.value.drained.size).toBe(0)
  })
})

describe('drain through the leader', () => {
  const members = [{ id: 'p1', name: 'h1', state: 'alive' as const }, { id: 'p2', name: 'h2', state: 'alive' as const }]
  it('resolves names and ids, and refuses unknown hosts', () => {
    expect(resolveHost(members, 'h2').id).toBe('p2')
    expect(resolveHost(members, 'p1').name).toBe('h1')
    expect(() => resolveHost(members, 'h9')).toThrow(/no host is named h9/)
  })
  it('proposes on the leader; a follower names the leader', async () => {
    const proposed: Command[] = []
    const leader = { status: () => ({ role: 'leader', leaderId: 'p1', leader: 'h1' }), proposeAndWait: async (c: Command) => (proposed.push(c), { term: 1, index: 1 }) }
    await expect(proposeDrain(leader as never, members, 'h2', true)).resolves.toEqual({ id: 'p2', name: 'h2', drained: true })
    expect(proposed).toEqual([{ kind: 'drain', host: 'p2', drained: true }])
    const follower = { ...leader, status: () => ({ role: 'follower', leaderId: 'p1', leader: 'h1' }) }
    await expect(proposeDrain(follower as never, members, 'h2', true)).rejects.toMatchObject({ code: 'not-leader', message: expect.stringMatching(/leader, h1/) })
  })
  it('a follower forwards to the leader when it can; without a leader it says so', async () => {
    const forwarded: string[] = []
    const follower = { status: () => ({ role: 'follower', leaderId: 'p1', leader: 'h1' }), proposeAndWait: async () => expect.fail('a follower does not propose') }
    const forward = async (leaderId: string, m: { id: string; name: string }) => (forwarded.push(`${leaderId}:${m.id}`), { id: m.id, name: m.name, drained: false })
    await expect(proposeDrain(follower as never, members, 'h2', false, forward)).resolves.toEqual({ id: 'p2', name: 'h2', drained: false })
    expect(forwarded).toEqual(['p1:p2'])
    await expect(proposeDrain(follower as never, members, 'h9', false, forward)).rejects.toMatchObject({ code: 'unknown-host' })
    const alone = { ...follower, status: () => ({ role: 'candidate', leaderId: null, leader: null }) }
    await expect(proposeDrain(alone as never, members, 'h2', true, forward)).rejects.toMatchObject({ code: 'no-leader', hint: expect.stringMatching(/skein status/) })
    expect(forwarded).toHaveLength(1)
  })
})

describe('the restart announcement of a graceful stop', () => {
  const now = 1_700_000_000_000
  const leaderOf = (proposed: Command[]) => ({ status: () => ({ role: 'leader', leaderId: 'p1', leader: 'h1' }), proposeAndWait: async (c: Command) => (proposed.push(c), { term: 1, index: 1 }) })
  it('the leader commits its own; a follower asks the leader; without a leader it says so', async () => {
    const proposed: Command[] = []
    await expect(announceRestart(leaderOf(proposed) as never, () => expect.fail('the leader does not ask'), 'p1', now + 30_000, now)).resolves.toEqual({ via: 'self', leaderId: 'p1' })
    expect(proposed).toEqual([{ kind: 'restarting', host: 'p1', untilMs: now + 30_000 }])
    const asked: unknown[] = []
    const follower = { status: () => ({ role: 'follower', leaderId: 'p1', leader: 'h1' }), proposeAndWait: async () => expect.fail('a follower does not propose') }
    const ask = async (to: string, q: unknown, timeoutMs: number) => (asked.push([to, q, timeoutMs]), { k: 'ok', items: [] })
    await expect(announceRestart(follower as never, ask as never, 'p2', now + 30_000, now)).resolves.toEqual({ via: 'leader', leaderId: 'p1' })
    expect(asked).toEqual([['p1', { k: 'restarting', untilMs: now + 30_000 }, 1500]])
    const alone = { ...follower, status: () => ({ role: 'candidate', leaderId: null, leader: null }) }
    await expect(announceRestart(alone as never, ask as never, 'p2', now + 30_000, now)).rejects.toMatchObject({ code: 'no-leader' })
  })
  it('the leader refuses an end too far ahead of its clock, and answers not-leader when it no longer leads', async () => {
    const proposed: Command[] = []
    await expect(commitRestarting(leaderOf(proposed) as never, 'p2', now + MAX_RESTARTING_AHEAD_MS + 1, now)).rejects.toMatchObject({ code: 'bad-request' })
    await commitRestarting(leaderOf(proposed) as never, 'p2', now + MAX_RESTARTING_AHEAD_MS, now)
    expect(proposed).toEqual([{ kind: 'restarting', host: 'p2', untilMs: now + MAX_RESTARTING_AHEAD_MS }])
    const follower = { status: () => ({ role: 'follower', leaderId: 'p3', leader: 'h3' }), proposeAndWait: async () => expect.fail('not the leader') }
    await expect(commitRestarting(follower as never, 'p2', now + 30_000, now)).rejects.toMatchObject({ code: 'not-leader' })
  })
  it('shows in the events', () => {
    const ev = createClusterEvents('p1', (id) => (id === 'p1' ? 'h1' : 'h2'), () => now)
    ev.committed({ term: 3, index: 9, kind: 'command', command: { kind: 'restarting', host: 'p2', untilMs: now + 30_000 } })
    expect(ev.events().map((e) => [e.kind, e.host, e.reason])).toEqual([['restarting', 'h2', 'stopping gracefully, back before 2023-11-14T22:13:50.000Z, log entry 3.9']])
  })
})

describe('cluster events', () => {
  it('diffs membership, and reads drains and placements from the log', () => {
    let now = 0
    const ev = createClusterEvents('p1', (id) => (id === 'p1' ? 'h1' : 'h2'), () => now)
    const seen: EventView[] = []
    ev.onEvent((e) => seen.push(e))
    const m = { id: 'p2', name: 'h2', state: 'alive' } as never
    ev.members([m])
    now = 1000
    ev.members([{ ...(m as object), state: 'dead' } as never])
    ev.committed({ term: 2, index: 5, kind: 'command', command: { kind: 'drain', host: 'p2', drained: true } })
    ev.committed({ term: 2, index: 6, kind: 'command', command: { kind: 'placements', changes: [{ service: 'web', slot: 0, host: 'p1', generation: 2, revision: 1 }] } })
    ev.agent({ time: 2000, kind: 'started', service: 'web', slot: 0, containerId: 'c'.repeat(64) })
    expect(seen.map((e) => `${e.kind} ${e.host}`)).toEqual(['host-dead h2', 'drained h2', 'assigned h1', 'started h1'])
    expect(ev.events()).toHaveLength(4)
    expect(seen[0]?.reason).toBe('was alive')
  })

  it('passes a pull event\'s image, duration and bytes on, and they survive the peer-query wire', () => {
    const ev = createClusterEvents('p1', () => 'h1', () => 0)
    const v = ev.agent({ time: 5, kind: 'pulled', service: 'web', slot: 0, image: 'nginx:1.27', durationMs: 2800, bytes: 8 * 1024 * 1024, reason: 'nginx:1.27 in 2s800ms' })
    expect(v).toMatchObject({ kind: 'pulled', image: 'nginx:1.27', durationMs: 2800, bytes: 8 * 1024 * 1024 })
    const started = ev.agent({ time: 6, kind: 'started', service: 'web', slot: 0 })
    expect(Object.keys(started)).not.toContain('image')
    const wire = answerSchema.parse({ k: 'events', boot: 1, next: 2, items: [eventToWire(v), eventToWire(started)] })
    expect(wire.k === 'events' ? wire.items : []).toEqual([v, started])
  })

  it('keeps the newest `capacity` events, oldest first', () => {
    const ev = createClusterEvents('p1', () => 'h1', () => 0, 3)
    for (let i = 0; i < 5; i++) ev.agent({ time: i, kind: 'started', slot: i })
    expect(ev.events().map((e) => e.slot)).toEqual([2, 3, 4])
  })
})

/** Serve `peer` on a free port for the tests of the enclosing describe block. */
function serve(peer: PeerApi, token: string): { client: () => ApiClient; address: () => string } {
  let server: ApiServer | undefined
  beforeAll(async () => {
    server = await createApiServer({ listen: '127.0.0.1:0', token, peer, logger: createLogger({ level: 'silent' }) })
  })
  afterAll(async () => {
    await server?.close()
  })
  const address = (): string => {
    if (server === undefined) throw new Error('the API server has not started')
    return server.address
  }
  return { client: () => createApiClient({ address: address(), token }), address }
}

describe('API routes: drain, events, logs', () => {
  const TOKEN = 'b'.repeat(64)
  const listeners = new Set<(e: EventView) => void>()
  const ev = (kind: string): EventView => ({ time: '2025-01-01T00:00:00.000Z', kind, host: 'h1', hostId: 'p1', service: 'web', slot: 0, generation: 1, containerId: null, reason: null })
  const peer = {
    drain: async (host: string, drained: boolean) => {
      if (host === 'nope') throw new SkeinError('not-leader', 'this peer is not the leader; drain through the leader, h1')
      return { id: 'p2', name: host, drained }
    },
    events: () => [ev('placed')],
    onEvent: (fn: (e: EventView) => void) => {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
    async *logs(service: string, opts: { tail?: number | undefined; follow?: boolean }): AsyncIterable<LogItemView> {
      if (service === 'nope') throw new SkeinError('unknown-service', 'no replica of nope is assigned')
      yield { service, slot: 0, host: 'h1', kind: 'line', stream: 'stdout', time: null, text: `tail=${opts.tail} follow=${opts.follow}` }
      yield { service, slot: 1, host: 'h2', kind: 'elsewhere', stream: null, time: null, text: null }
    },
  } as unknown as PeerApi
  const { client, address } = serve(peer, TOKEN)

  it('drains, and passes the not-leader error on', async () => {
    await expect(client().drain('h2', true)).resolves.toEqual({ id: 'p2', name: 'h2', drained: true })
    await expect(client().drain('nope', true)).rejects.toMatchObject({ code: 'not-leader' })
    const res = await fetch(`http://${address()}/v1/nodes/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' })
    expect(res.status).toBe(400)
  })

  it('lists events, and follows them as server-sent events', async () => {
    expect(await client().events()).toEqual([ev('placed')])
    const abort = new AbortController()
    const got: string[] = []
    const done = (async () => {
      for await (const e of client().followEvents(abort.signal)) {
        got.push(e.kind)
        if (got.length === 2) abort.abort()
      }
    })()
    while (listeners.size === 0) await new Promise((r) => setTimeout(r, 10))
    for (const l of listeners) l(ev('started'))
    await done
    expect(got).toEqual(['placed', 'started'])
  })

  it('gathers logs, with and without follow', async () => {
    const once: LogItemView[] = []
    for await (const i of client().logs('web', { tail: 5 })) once.push(i)
    expect(once.map((i) => i.text ?? i.kind)).toEqual(['tail=5 follow=false', 'elsewhere'])
    const followed: LogItemView[] = []
    for await (const i of client().logs('web', { follow: true, signal: AbortSignal.timeout(5000) })) followed.push(i)
    expect(followed.map((i) => i.text ?? i.kind)).toEqual(['tail=undefined follow=true', 'elsewhere'])
  })

  it('answers an unknown service as an error, with and without follow', async () => {
    await expect(client().logs('nope', {})[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'unknown-service' })
    await expect(client().logs('nope', { follow: true, signal: AbortSignal.timeout(5000) })[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'unknown-service' })
  })
})

describe('API routes answered asynchronously (gathered from other peers)', () => {
  const TOKEN = 'c'.repeat(64)
  const ev = (kind: string, host: string): EventView => ({ time: '2025-01-01T00:00:00.000Z', kind, host, hostId: host, service: null, slot: null, generation: null, containerId: null, reason: null })
  const follows: AbortSignal[] = []
  const peer = {
    events: async () => [ev('placed', 'h1'), ev('started', 'h2')],
    onEvent: () => () => expect.fail('followEvents is used when present'),
    async *followEvents(signal: AbortSignal): AsyncIterable<EventView> {
      follows.push(signal)
      yield ev('placed', 'h1')
      yield ev('exited', 'h3')
      await new Promise((r) => signal.addEventListener('abort', r, { once: true }))
    },
    replicas: async (service: string | undefined) => [{ service: service ?? 'all', slot: 0, host: null, hostId: null, state: 'pending', health: 'none', containerId: null, startedAt: null, restarts: 0, exitCode: null, generation: null, explain: 'from the leader' }],
    services: async () => [],
  } as unknown as PeerApi
  const { client } = serve(peer, TOKEN)

  it('awaits the gathered lists', async () => {
    expect((await client().events()).map((e) => e.host)).toEqual(['h1', 'h2'])
    expect(await client().replicas('web')).toMatchObject([{ service: 'web', explain: 'from the leader' }])
    expect(await client().services()).toEqual([])
  })

  it('follows with followEvents, and stops it when the client goes away', async () => {
    const abort = new AbortController()
    const got: string[] = []
    for await (const e of client().followEvents(abort.signal)) {
      got.push(`${e.kind}@${e.host}`)
      if (got.length === 2) abort.abort()
    }
    expect(got).toEqual(['placed@h1', 'exited@h3'])
    for (let i = 0; i < 100 && follows[0]?.aborted !== true; i++) await new Promise((r) => setTimeout(r, 10))
    expect(follows[0]?.aborted).toBe(true)
  })
})
