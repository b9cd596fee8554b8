/**
 * In-process helpers for consensus service tests: an in-memory transport network, a fake
 * membership view, and services on temporary SQLite stores with fast timing.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConsensusService, type ConsensusService, type ConsensusServiceInit } from '../../src/consensus/service.ts'
import { systemClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { seededRng } from '../../src/core/rng.ts'
import type { Member, MemberState } from '../../src/membership/types.ts'
import { openStore, type Store } from '../../src/storage/store.ts'
import type { DirectHandler, Transport } from '../../src/transport/types.ts'

/** Direct messages between in-process peers, delivered asynchronously; a peer can be cut off. */
export class MemNet {
  readonly handlers = new Map<string, Map<string, DirectHandler>>()
  readonly down = new Set<string>()
  delivered = 0

  transport(selfId: string): Transport {
    const { handlers, down } = this
    const delivered = (): void => {
      this.delivered++
    }
    return {
      selfId,
      listenAddresses: () => [`mem:${selfId}`],
      async send(to, protocol, data): Promise<void> {
        if (down.has(selfId) || down.has(to)) throw new Error(`${to} unreachable`)
        const h = handlers.get(to)?.get(protocol)
        if (h === undefined) throw new Error(`${to} does not handle ${protocol}`)
        setImmediate(() => {
          if (down.has(selfId) || down.has(to)) return
          delivered()
          h(selfId, data)
        })
      },
      handle(protocol, handler): void {
        let m = handlers.get(selfId)
        if (m === undefined) handlers.set(selfId, (m = new Map()))
        m.set(protocol, handler)
      },
      publish: async () => undefined,
      subscribe: () => undefined,
      dial: async () => selfId,
      hangUp: async () => undefined,
      connectedPeers: () => [],
      on: () => undefined,
      stats: () => ({ bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, rejected: 0 }),
      stop: async () => undefined,
    }
  }

  /** Hand raw bytes to `to` as if `from` had sent them. */
  inject(from: string, to: string, protocol: string, data: Uint8Array): void {
    this.handlers.get(to)?.get(protocol)?.(from, data)
  }
}

/** What every peer's membership says: name = id, state from `states` (default alive). */
export class FakeMembership {
  readonly states = new Map<string, { state: MemberState; since: number }>()
  readonly ids: string[]

  constructor(ids: string[]) {
    this.ids = ids
  }

  view(selfId: string): { members(): Member[]; self(): Member } {
    const member = (id: string): Member => {
      const s = this.states.get(id) ?? { state: 'alive' as const, since: 0 }
      return { id, name: id, address: `mem:${id}`, labels: {}, state: id === selfId ? 'alive' : s.state, incarnation: 0, since: s.since }
    }
    return { members: () => this.ids.map(member), self: () => member(selfId) }
  }

  set(id: string, state: MemberState): void {
    this.states.set(id, { state, since: Date.now() })
  }
}

/** A test peer: its store path and running service. */
export interface TestPeer {
  id: string
  path: string
  store: Store
  svc: ConsensusService
  fatal: unknown[]
}

/** A cluster of services over MemNet; `start` bootstraps the first peer. */
export class TestCluster {
  readonly net = new MemNet()
  readonly membership: FakeMembership
  readonly dir = mkdtempSync(join(tmpdir(), 'skein-consensus-'))
  readonly peers = new Map<string, TestPeer>()
  readonly init: Partial<ConsensusServiceInit>

  constructor(ids: string[], init: Partial<ConsensusServiceInit> = {}) {
    this.membership = new FakeMembership(ids)
    this.init = { timing: { tickMs: 10, electionTicks: 10, heartbeatTicks: 2 }, voters: { deadGraceMs: 500 }, ...init }
  }

  start(id: string, opts: { bootstrap?: boolean } = {}): TestPeer {
    const path = join(this.dir, `${id}.db`)
    const store = openStore(path, { logger: silentLogger() })
    const fatal: unknown[] = []
    const svc = createConsensusService(
      { selfId: id, bootstrap: opts.bootstrap === true, ...this.init },
      { transport: this.net.transport(id), store, clock: systemClock, logger: silentLogger(), rng: seededRng(id.charCodeAt(id.length - 1)), membership: this.membership.view(id), onFatal: (e) => fatal.push(e) },
    )
    svc.start()
    const peer = { id, path, store, svc, fatal }
    this.net.down.delete(id)
    this.peers.set(id, peer)
    return peer
  }

  peer(id: string): TestPeer {
    const p = this.peers.get(id)
    if (p === undefined) throw new Error(`no peer ${id}`)
    return p
  }

  /** Stop a peer's service and close its store (a clean stop; its state stays on disk). */
  async stop(id: string): Promise<void> {
    const p = this.peers.get(id)
    if (p === undefined) return
    this.net.down.add(id)
    await p.svc.stop()
    p.store.close()
    this.peers.delete(id)
  }

  leader(): TestPeer | undefined {
    return [...this.peers.values()].find((p) => p.svc.status().role === 'leader')
  }

  async close(): Promise<void> {
    for (const id of [...this.peers.keys()]) await this.stop(id)
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Poll `pred` every 10 ms until it holds; throws after `ms`. */
export async function until(what: string, pred: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (pred()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  if (!pred()) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}
