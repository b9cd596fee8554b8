import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiClient } from '../../src/api/client.ts'
import type { EventView, LogItemView } from '../../src/api/running.ts'
import { createApiServer, type ApiServer } from '../../src/api/server.ts'
import type { PeerApi } from '../../src/api/types.ts'
import { applyEntry, decodeAppState, decodeCommand, emptyAppState, encodeAppState, encodeCommand, type Command } from '../../src/consensus/commands.ts'
import type { Entry } from '../../src/consensus/types.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { createLogger } from '../../src/core/logger.ts'
import { createClusterEvents, proposeDrain, resolveHost } from '../../src/peer/running-extras.ts'
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
})

describe('API routes: drain, events, logs', () => {
  let server: ApiServer
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
      yield { service, slot: 0, host: 'h1', kind: 'line', stream: 'stdout', time: null, text: `tail=${opts.tail} follow=${opts.follow}` }
      yield { service, slot: 1, host: 'h2', kind: 'elsewhere', stream: null, time: null, text: null }
    },
  } as unknown as PeerApi
  beforeAll(async () => {
    server = await createApiServer({ listen: '127.0.0.1:0', token: TOKEN, peer, logger: createLogger({ level: 'silent' }) })
  })
  afterAll(async () => {
    await server.close()
  })
  const client = () => createApiClient({ address: server.address, token: TOKEN })

  it('drains, and passes the not-leader error on', async () => {
    await expect(client().drain('h2', true)).resolves.toEqual({ id: 'p2', name: 'h2', drained: true })
    await expect(client().drain('nope', true)).rejects.toMatchObject({ code: 'not-leader' })
    const res = await fetch(`http://${server.address}/v1/nodes/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' })
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
})
