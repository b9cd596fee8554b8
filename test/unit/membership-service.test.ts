import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { seededRng } from '../../src/core/rng.ts'
import { createMembershipService, type MembershipService, type PersistedMembershipState } from '../../src/membership/service.ts'
import { MEMBERSHIP_PROTOCOL, MEMBERSHIP_TOPIC, type Member, type MemberState } from '../../src/membership/types.ts'
import { encode } from '../../src/transport/codec.ts'
import type { DirectHandler, PeerId, TopicHandler, Transport, TransportEvents, Verdict } from '../../src/transport/types.ts'

/** A tiny in-memory transport hub: asynchronous delivery, refused connections for killed peers. */
class Hub {
  readonly nodes = new Map<PeerId, { address: string; direct: Map<string, DirectHandler>; topics: Map<string, TopicHandler> }>()
  readonly killed = new Set<PeerId>()

  transport(id: PeerId, address: string): Transport {
    const node = { address, direct: new Map<string, DirectHandler>(), topics: new Map<string, TopicHandler>() }
    this.nodes.set(id, node)
    const refuse = (to: PeerId): boolean => this.killed.has(to) || this.killed.has(id) || !this.nodes.has(to)
    return {
      selfId: id,
      listenAddresses: () => [address],
      send: async (to, protocol, data) => {
        if (refuse(to)) throw new Error(`connection refused by ${to}`)
        setImmediate(() => { if (!this.killed.has(to)) this.nodes.get(to)?.direct.get(protocol)?.(id, data) })
      },
      handle: (protocol, h) => { node.direct.set(protocol, h) },
      publish: async (topic, data) => {
        if (this.killed.has(id)) return
        for (const [other, n] of this.nodes) {
          if (other === id) continue
          setImmediate(() => {
            const h = n.topics.get(topic)
            if (h === undefined || this.killed.has(other)) return
            if (h.validate(id, data) === 'accept') h.deliver(id, data)
          })
        }
      },
      subscribe: (topic, h) => { node.topics.set(topic, h) },
      dial: async (addr) => {
        for (const [other, n] of this.nodes) if (n.address === addr && !this.killed.has(other)) return other
        throw new Error(`nothing listens on ${addr}`)
      },
      hangUp: async () => {},
      connectedPeers: () => [...this.nodes.keys()].filter((p) => p !== id && !this.killed.has(p)),
      on: <K extends keyof TransportEvents>(_e: K, _l: (d: TransportEvents[K]) => void) => {},
      stats: () => ({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, rejected: 0 }),
      stop: async () => {},
    }
  }

  /** Hand raw bytes to `to` as if `from` had sent them directly. */
  inject(from: PeerId, to: PeerId, data: Uint8Array): void {
    this.nodes.get(to)?.direct.get(MEMBERSHIP_PROTOCOL)?.(from, data)
  }

  /** Run `to`'s gossip validator on bytes published by `from`. */
  validate(from: PeerId, to: PeerId, data: Uint8Array): Verdict | undefined {
    return this.nodes.get(to)?.topics.get(MEMBERSHIP_TOPIC)?.validate(from, data)
  }
}

const FAST = { probeIntervalMs: 50, probeTimeoutMs: 25, pushPullIntervalMs: 500, suspicionMult: 4, suspicionMaxMult: 6 }

async function waitFor(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const running: MembershipService[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()))
})

function peer(hub: Hub, id: string, persisted: PersistedMembershipState[] = []): MembershipService {
  const address = `10.1.0.${id.charCodeAt(0)}:7946`
  const s = createMembershipService(
    { self: { id, name: `node-${id}`, address, labels: { role: 'test' } }, incarnation: 0, config: FAST, leaveGraceMs: 50, joinTimeoutMs: 1000 },
    { transport: hub.transport(id, address), clock: systemClock, rng: seededRng(id.charCodeAt(0)), logger: silentLogger(), persist: (p) => persisted.push(p) },
  )
  s.start()
  running.push(s)
  return s
}

const stateIn = (s: MembershipService, id: string): MemberState | undefined => s.members().find((m) => m.id === id)?.state

describe('membership service', () => {
  it('joins through one address, detects a killed peer, and persists', async () => {
    const hub = new Hub()
    const savedA: PersistedMembershipState[] = []
    const a = peer(hub, 'a', savedA)
    const b = peer(hub, 'b')
    const c = peer(hub, 'c')
    const aAddr = a.self().address
    const res = await b.join([aAddr, '10.9.9.9:1', b.self().address])
    expect(res.joined).toEqual([aAddr])
    expect(res.failed.map((f) => f.address).sort()).toEqual(['10.9.9.9:1', b.self().address].sort())
    await c.join([aAddr])
    for (const s of [a, b, c]) await waitFor('3 alive', () => s.members().filter((m) => m.state === 'alive').length === 3)

    const changes: [Member, MemberState | undefined][] = []
    a.on('change', (m, prev) => changes.push([m, prev]))
    a.on('change', () => { throw new Error('a listener that throws') })
    hub.killed.add('c')
    await waitFor('c dead at a and b', () => stateIn(a, 'c') === 'dead' && stateIn(b, 'c') === 'dead', 5000)
    expect(changes.some(([m, prev]) => m.id === 'c' && m.state === 'dead' && prev !== 'dead')).toBe(true)
    expect(stateIn(a, 'b')).toBe('alive')
    await waitFor('persisted peers', () => savedA.some((p) => p.peers.some((x) => x.id === 'b')), 3000)
    expect(savedA[0]?.incarnation).toBe(0)
  })

  it('drops invalid and forged messages, counts them, and rejects them at the gossip validator', async () => {
    const hub = new Hub()
    const a = peer(hub, 'a')
    const b = peer(hub, 'b')
    await b.join([a.self().address])
    hub.inject('b', 'a', new Uint8Array([1, 2, 3]))
    hub.inject('b', 'a', encode({ t: 'ping', seq: 1, from: 'someone-else' }))
    expect(hub.validate('b', 'a', encode({ t: 'updates', from: 'b', updates: [{ kind: 'alive', id: 'x', inc: 9, name: 'x', address: 'x:1', labels: {} }] }))).toBe('reject')
    expect(hub.validate('b', 'a', encode({ nonsense: true }))).toBe('reject')
    expect(hub.validate('b', 'a', encode({ t: 'updates', from: 'b', updates: [{ kind: 'suspect', id: 'a', inc: 0, from: 'b' }] }))).toBe('accept')
    const st = a.stats()
    expect(st.invalid).toBe(2)
    expect(st.forged).toBe(2)
    expect(a.members().map((m) => m.id)).toEqual(['a', 'b'])
  })

  it('refutes a suspicion about itself with a higher, persisted incarnation', async () => {
    const hub = new Hub()
    const saved: PersistedMembershipState[] = []
    const a = peer(hub, 'a', saved)
    const b = peer(hub, 'b')
    await b.join([a.self().address])
    const data = encode({ t: 'updates', from: 'b', updates: [{ kind: 'suspect', id: 'a', inc: 0, from: 'b' }] })
    expect(hub.validate('b', 'a', data)).toBe('accept')
    hub.nodes.get('a')?.topics.get(MEMBERSHIP_TOPIC)?.deliver('b', data)
    expect(a.self().incarnation).toBe(1)
    expect(saved.at(-1)?.incarnation).toBe(1)
    await waitFor('b sees a at incarnation 1', () => b.members().find((m) => m.id === 'a')?.incarnation === 1, 2000)
  })

  it('leaves: the others list it as left, not dead', async () => {
    const hub = new Hub()
    const a = peer(hub, 'a')
    const b = peer(hub, 'b')
    await b.join([a.self().address])
    await waitFor('a knows b', () => stateIn(a, 'b') === 'alive')
    await b.leave()
    await b.stop()
    hub.killed.add('b')
    await waitFor('b left at a', () => stateIn(a, 'b') === 'left', 2000)
    await new Promise((r) => setTimeout(r, 1500))
    expect(stateIn(a, 'b')).toBe('left')
    expect(b.self().state).toBe('left')
  })

  it('spreads a label change', async () => {
    const hub = new Hub()
    const a = peer(hub, 'a')
    const b = peer(hub, 'b')
    await b.join([a.self().address])
    b.updateSelf({ labels: { role: 'db' } })
    await waitFor('a sees the new label', () => a.members().find((m) => m.id === 'b')?.labels.role === 'db', 2000)
  })
})
