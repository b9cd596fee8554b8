import { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.ts'
import { MEMBERSHIP_PROTOCOL, MEMBERSHIP_TOPIC } from '../../src/membership/types.ts'
import { readClusterKey } from '../../src/peer/datadir.ts'
import { PEER_QUERY_PROTOCOL, decodeQueryMessage, encodeQueryMessage, type QueryMessage } from '../../src/peer/query.ts'
import { encode } from '../../src/transport/codec.ts'
import { createLibp2pTransport } from '../../src/transport/libp2p.ts'
import { generateIdentity } from '../../src/transport/libp2p-keys.ts'
import type { Transport } from '../../src/transport/types.ts'
import { cli, startAgent, stopAll, waitFor, type Agent, type NodeView } from './harness/agents.ts'

/**
 * Hostile input against real agents. The attacker here even holds the cluster key (the worst
 * case: a compromised host), so its traffic reaches the membership layer; what it sends must be
 * rejected there, and the agents must stay up with a correct view.
 */
describe('agents under hostile input', () => {
  const agents: Agent[] = []
  let attacker: Transport | undefined

  const healthy = async (): Promise<void> => {
    for (const a of agents) {
      expect(a.running, `${a.name} is still running`).toBe(true)
      const view: NodeView[] = await a.nodes()
      expect(view.map((n) => `${n.name}:${n.state}`).sort()).toEqual(['h1:alive', 'h2:alive', 'h3:alive'])
    }
  }

  /** Every agent's debug log names at least `invalid` invalid and one forged `what` from `sender`. */
  const expectDropped = (sender: string, what: string, invalid: number): void => {
    for (const a of agents) {
      const lines = a.output.split('\n').filter((l) => l.includes(sender))
      expect(lines.filter((l) => l.includes(`dropped an invalid ${what}`)).length, a.name).toBeGreaterThanOrEqual(invalid)
      expect(lines.some((l) => l.includes(`dropped a forged ${what}`)), a.name).toBe(true)
    }
  }

  beforeAll(async () => {
    const first = await startAgent({ name: 'h1' })
    agents.push(first)
    await waitFor('h1 API', async () => (await first.nodes()).length === 1)
    const token = (await cli(['token', '--data-dir', first.dir])).stdout.trim()
    agents.push(await startAgent({ name: 'h2', join: [first.address], token }))
    agents.push(await startAgent({ name: 'h3', join: [first.address], token }))
    for (const a of agents) await waitFor(`${a.name} sees 3 alive`, async () => (await a.nodes()).filter((n) => n.state === 'alive').length === 3, 20_000)
    const clusterKey = readClusterKey(first.dir)
    if (!clusterKey) throw new Error('no cluster key in the data dir')
    attacker = await createLibp2pTransport({ identity: await generateIdentity(), clusterKey, listen: '127.0.0.1:0', logger: silentLogger() })
    // Subscribing makes the agents' gossipsub forward the topic to us, and lets us publish into it.
    attacker.subscribe(MEMBERSHIP_TOPIC, { validate: () => 'accept', deliver: () => {} })
    for (const a of agents) await attacker.dial(a.address)
  }, 60_000)

  afterAll(async () => {
    await attacker?.stop()
    await stopAll()
  })

  it('survives raw garbage on the peer port', async () => {
    const payloads = [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.alloc(70_000, 0xff), Buffer.from([0, 1, 2, 3, 4, 5])]
    const hits = agents.flatMap((a) => payloads.map((payload) => ({ port: a.listenPort, payload })))
    await Promise.all(
      hits.map(
        ({ port, payload }) =>
          new Promise<void>((ok) => {
            const s = new Socket()
            const done = (): void => (s.destroy(), ok())
            s.on('error', done)
            s.on('close', done)
            s.connect(port, '127.0.0.1', () => s.end(payload))
            setTimeout(done, 2000).unref()
          }),
      ),
    )
    await healthy()
  })

  it('rejects malformed, oversized and forged direct messages', async () => {
    const t = attacker!
    const victims = await Promise.all(agents.map(async (a) => ({ a, id: await a.id() })))
    const bad: Uint8Array[] = [
      new Uint8Array([0xc1, 0xc1, 0xc1]), // not msgpack
      encode({ t: 'ping' }), // missing fields
      encode({ t: 'ping', seq: -1, from: t.selfId }), // out of range
      encode({ t: 'ping', seq: 1, from: victims[1]!.id }), // forged sender
      encode({ t: 'push-pull', from: t.selfId, reply: true, members: 'x'.repeat(100) }),
      encode({ t: 'push-pull', from: t.selfId, reply: true, members: Array.from({ length: 5000 }, () => ({ id: 'x' })) }),
      new Uint8Array(2 * 1024 * 1024), // over the frame limit
    ]
    for (const { a, id } of victims) {
      for (const data of bad) await t.send(id, MEMBERSHIP_PROTOCOL, data, { address: a.address }).catch(() => {})
    }
    await new Promise((r) => setTimeout(r, 1000))
    await healthy()
    // Each agent says what it dropped, and whom from (its debug log).
    expectDropped(t.selfId, 'membership message', 4)
  }, 30_000)

  it('rejects malformed and forged gossip, and the peers stay correct', async () => {
    const t = attacker!
    const victimId = await agents[1]!.id()
    const gossip: Uint8Array[] = [
      new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      encode({ t: 'updates', from: t.selfId, updates: [{ kind: 'nonsense' }] }),
      // Forged: claims to come from h2 and declares h3 dead.
      encode({ t: 'updates', from: victimId, updates: [{ kind: 'dead', id: await agents[2]!.id(), inc: 99, from: victimId }] }),
      // Forged liveness about someone else: only a peer may speak for itself.
      encode({ t: 'updates', from: t.selfId, updates: [{ kind: 'left', id: victimId, inc: 99 }] }),
      new Uint8Array(300 * 1024),
    ]
    for (const data of gossip) await t.publish(MEMBERSHIP_TOPIC, data).catch(() => {})
    await new Promise((r) => setTimeout(r, 1500))
    await healthy()
    const logs = agents.map((a) => a.output.split('\n').filter((l) => l.includes(t.selfId)).join('\n')).join('\n')
    expect(logs).toMatch(/rejected an invalid membership broadcast/)
    expect(logs).toMatch(/rejected a forged membership broadcast/)
  }, 30_000)

  it('drops malformed and forged peer queries, and bounds the follow sessions one peer may open', async () => {
    const t = attacker!
    const answers: QueryMessage[] = []
    t.handle(PEER_QUERY_PROTOCOL, (_from, data) => {
      const d = decodeQueryMessage(data)
      if (d.ok) answers.push(d.value)
    })
    const victims = await Promise.all(agents.map(async (a) => ({ a, id: await a.id() })))
    const other = victims[1]!.id
    const bad: Uint8Array[] = [
      new Uint8Array([0xc1, 0xc1, 0xc1]),
      encode({ t: 'q', from: t.selfId, req: 1, q: { k: 'drain', host: '', drained: true } }),
      encode({ t: 'q', from: t.selfId, req: 2, q: { k: 'logs', service: 'web', tail: 10 ** 9, follow: true, session: 1, since: 0 } }),
      encode({ t: 'a', from: t.selfId, req: 3, part: 0, last: true, a: { k: 'logs', next: 0, items: 'x'.repeat(100) } }),
      encode({ t: 'q', from: other, req: 4, q: { k: 'explain' } }), // forged sender
      new Uint8Array(300 * 1024), // over the message limit
    ]
    for (const { a, id } of victims) for (const data of bad) await t.send(id, PEER_QUERY_PROTOCOL, data, { address: a.address }).catch(() => {})
    // 20 follow sessions from one peer: past 8, the agent refuses (busy) rather than keep them all.
    const { a: h1, id: h1Id } = victims[0]!
    for (let session = 1; session <= 20; session++) {
      const q = encodeQueryMessage({ t: 'q', from: t.selfId, req: 100 + session, q: { k: 'logs', service: 'web', tail: 1, follow: true, session, since: 0 } })
      await t.send(h1Id, PEER_QUERY_PROTOCOL, q, { address: h1.address }).catch(() => {})
    }
    await waitFor('answers to the follow sessions', async () => answers.filter((m) => m.req > 100).length >= 20, 10_000)
    const busy = answers.filter((m) => m.t === 'e' && m.code === 'busy')
    expect(busy.length).toBeGreaterThanOrEqual(12)
    expect(answers.filter((m) => m.t === 'a' && m.req > 100).length).toBeLessThanOrEqual(8)
    await healthy()
    expectDropped(t.selfId, 'peer-query message', 4)
  }, 30_000)
})
