import { describe, expect, it } from 'vitest'
import { seededRng } from '../../src/core/rng.ts'
import { compareHlc } from '../../src/state/hlc.ts'
import { createStateReplica, type StateReplica } from '../../src/state/replica.ts'
import type { DirectMessage, Effect, Entry, PersistedState, StateConfig } from '../../src/state/types.ts'

const T0 = 1_700_000_000_000
const H = 60_000
const CFG: Partial<StateConfig> = { antiEntropyIntervalMs: 1000, tombstoneHorizonMs: H, gcIntervalMs: 1000, aliveEveryMs: 5000, maxDriftMs: 5000, historyLimit: 4, buckets: 16 }
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (e: Entry | undefined): string | null | undefined => (e === undefined ? undefined : e.value === null ? null : new TextDecoder().decode(e.value))

function replica(id: string, opts: { founder?: boolean; restore?: PersistedState; now?: number; config?: Partial<StateConfig> } = {}): StateReplica {
  return createStateReplica({ nodeId: id, rng: seededRng(id.length * 7 + id.charCodeAt(0)), now: opts.now ?? T0, config: { ...CFG, ...opts.config }, founder: opts.founder ?? true, ...(opts.restore ? { restore: opts.restore } : {}) })
}

/** A lossless in-order pump between replicas; records every direct message by type. */
class Pump {
  readonly nodes = new Map<string, StateReplica>()
  readonly sent: DirectMessage['t'][] = []
  readonly effects: Effect[] = []
  now = T0
  #queue: { from: string; to: string; msg: DirectMessage }[] = []

  add(...rs: StateReplica[]): this {
    for (const r of rs) this.nodes.set(r.nodeId, r)
    for (const r of rs) r.setPeers([...this.nodes.keys()])
    return this
  }

  exec(from: string, effects: Effect[]): void {
    for (const e of effects) {
      this.effects.push(e)
      if (e.type === 'send') this.#queue.push({ from, to: e.to, msg: e.msg })
      if (e.type === 'broadcast') {
        for (const [id, r] of this.nodes) if (id !== from) this.exec(id, r.receiveBroadcast(from, e.msg, this.now))
      }
    }
  }

  drain(): void {
    for (let m = this.#queue.shift(); m !== undefined; m = this.#queue.shift()) {
      this.sent.push(m.msg.t)
      const r = this.nodes.get(m.to)
      if (r !== undefined) this.exec(m.to, r.receive(m.from, m.msg, this.now))
    }
  }

  /** One anti-entropy round started by `from` to `to`. */
  round(from: StateReplica, to: string): void {
    this.#queue.push({ from: from.nodeId, to, msg: { t: 'root', cur: from.status() === 'current', root: from.root() } })
    this.drain()
  }
}

/** What a shell would have persisted from the effects. */
function disk(effects: Effect[]): PersistedState {
  const entries = new Map<string, Entry>()
  const history = new Map<string, Entry[]>()
  let meta: PersistedState['meta']
  for (const e of effects) {
    if (e.type === 'changed') entries.set(e.key, e.entry)
    if (e.type === 'history') history.set(e.key, e.entries)
    if (e.type === 'dropped') { entries.delete(e.key); history.delete(e.key) }
    if (e.type === 'meta') meta = e.meta
  }
  return { entries: [...entries.values()], history: [...history.values()], meta }
}

describe('local writes', () => {
  it('stamps a batch with increasing HLCs, persists before it broadcasts, and counts revisions', () => {
    const a = replica('a')
    const { results, effects } = a.apply([{ key: 'web', value: bytes('v1') }, { key: 'db', value: bytes('d1') }], T0)
    expect(results.map((r) => r.written)).toEqual([true, true])
    expect(compareHlc(results[1]!.entry!.hlc, results[0]!.entry!.hlc)).toBeGreaterThan(0)
    expect(effects.map((e) => e.type)).toEqual(['changed', 'history', 'changed', 'history', 'broadcast'])
    const bc = effects.at(-1)
    expect(bc?.type === 'broadcast' && bc.msg.entries.map((e) => e.k)).toEqual(['web', 'db'])
    expect(a.put('web', bytes('v2'), T0 + 1).result.entry?.revision).toBe(2)
    expect(a.remove('web', T0 + 2).result.entry).toMatchObject({ value: null, revision: 3 })
    expect(a.put('web', bytes('v3'), T0 + 3).result.entry?.revision).toBe(4)
    expect(a.history('web').map(text)).toEqual(['v1', 'v2', null, 'v3'])
  })

  it('writes nothing for an identical value or for removing what is not there', () => {
    const a = replica('a')
    a.put('web', bytes('v1'), T0)
    expect(a.put('web', bytes('v1'), T0 + 1)).toMatchObject({ result: { written: false }, effects: [] })
    expect(a.remove('nope', T0 + 1)).toMatchObject({ result: { written: false, entry: undefined }, effects: [] })
    a.remove('web', T0 + 2)
    expect(a.remove('web', T0 + 3).result.written).toBe(false)
  })

  it('applies nothing of a batch with an invalid write', () => {
    const a = replica('a')
    expect(() => a.apply([{ key: 'ok', value: bytes('x') }, { key: '', value: bytes('y') }], T0)).toThrow(RangeError)
    expect(() => a.apply([{ key: 'ok', value: bytes('x') }, { key: 'tab\there', value: bytes('y') }], T0)).toThrow(RangeError)
    expect(() => a.apply([{ key: 'k'.repeat(257), value: null }], T0)).toThrow(RangeError)
    expect(() => a.apply([{ key: 'ok', value: new Uint8Array(256 * 1024 + 1) }], T0)).toThrow(RangeError)
    expect(a.entries()).toEqual([])
  })
})

describe('gossip', () => {
  it('merges a broadcast write and reports the change; a late older write loses', () => {
    const a = replica('a')
    const b = replica('b')
    const p = new Pump().add(a, b)
    p.exec('a', a.put('web', bytes('v1'), T0).effects)
    expect(text(b.get('web'))).toBe('v1')
    p.exec('b', b.put('web', bytes('v2'), T0 + 5).effects)
    expect(text(a.get('web'))).toBe('v2')
    const changed = p.effects.filter((e) => e.type === 'changed' && e.key === 'web')
    expect(changed.length).toBe(4)
    // An old write arriving again changes nothing.
    expect(b.receiveBroadcast('a', { t: 'write', cur: true, entries: [{ k: 'web', w: T0, l: 0, n: 'a', r: 1, v: bytes('v1') }] }, T0 + 6)
      .filter((e) => e.type === 'changed')).toEqual([])
  })

  it('a write that causally follows a remote one wins even against a clock that runs behind', () => {
    const a = replica('a')
    const b = replica('b')
    const p = new Pump().add(a, b)
    p.exec('a', a.put('web', bytes('from a'), T0 + 3000).effects) // a's clock is 3 s ahead
    p.exec('b', b.put('web', bytes('from b'), T0).effects)
    expect(text(a.get('web'))).toBe('from b')
    expect(text(b.get('web'))).toBe('from b')
  })
})

describe('anti-entropy', () => {
  it('a round between peers in sync costs one root and one reply', () => {
    const a = replica('a')
    const b = replica('b')
    const p = new Pump().add(a, b)
    for (let i = 0; i < 50; i++) p.exec('a', a.put(`svc-${i}`, bytes(`spec ${i}`), T0 + i).effects)
    p.sent.length = 0
    p.exec('a', a.tick(T0 + 5000))
    p.drain()
    expect(p.sent).toEqual(['root', 'same'])
    expect(a.stats().roundsInSync).toBe(1)
  })

  it('transfers only what differs, both ways, in one round', () => {
    const a = replica('a')
    const b = replica('b')
    const p = new Pump().add(a, b)
    for (let i = 0; i < 40; i++) p.exec('a', a.put(`svc-${i}`, bytes(`spec ${i}`), T0).effects)
    // Written apart: a has svc-100, b has svc-200 and a newer svc-3, a has a newer svc-4.
    a.put('svc-100', bytes('only a'), T0 + 10)
    b.put('svc-200', bytes('only b'), T0 + 10)
    b.put('svc-3', bytes('b newer'), T0 + 20)
    a.put('svc-4', bytes('a newer'), T0 + 30)
    p.sent.length = 0
    p.round(a, 'b')
    expect(p.sent.slice(0, 3)).toEqual(['root', 'buckets', 'stamps'])
    expect(Buffer.from(a.root())).toEqual(Buffer.from(b.root()))
    expect(text(a.get('svc-200'))).toBe('only b')
    expect(text(b.get('svc-100'))).toBe('only a')
    expect(text(a.get('svc-3'))).toBe('b newer')
    expect(text(b.get('svc-4'))).toBe('a newer')
    expect(a.stats().entriesSent + b.stats().entriesSent).toBe(4)
  })

  it('ignores stamps bucketed with another bucket count (they would look like absences)', () => {
    const a = replica('a', { founder: false })
    a.receiveBroadcast('b', { t: 'write', cur: false, entries: [{ k: 'old', w: T0 - 5 * H, l: 0, n: 'b', r: 1, v: bytes('x') }] }, T0)
    expect(a.receive('b', { t: 'stamps', cur: true, n: 32, buckets: Array.from({ length: 16 }, (_, i) => i), stamps: [] }, T0)).toEqual([])
    expect(text(a.get('old'))).toBe('x')
    // With the same count, the same message makes the joining replica drop its settled copy.
    expect(a.receive('b', { t: 'stamps', cur: true, n: 16, buckets: Array.from({ length: 16 }, (_, i) => i), stamps: [] }, T0))
      .toContainEqual(expect.objectContaining({ type: 'dropped', key: 'old', reason: 'stale' }))
  })

  it('refuses an invalid node id', () => {
    expect(() => replica('')).toThrow(RangeError)
    expect(() => replica('n'.repeat(129))).toThrow(RangeError)
  })

  it('exposes its digest material', () => {
    const a = replica('a')
    a.put('web', bytes('v'), T0)
    const d = a.digest()
    expect(d.root).toEqual(a.root())
    expect(d.buckets.byteLength).toBe(8 * 16)
  })

  it('picks partners only from the peer list, never itself', () => {
    const a = replica('a')
    a.setPeers(['a'])
    expect(a.tick(T0 + 5000).filter((e) => e.type === 'send')).toEqual([])
    a.setPeers(['a', 'b'])
    const sends = a.tick(T0 + 10_000).filter((e) => e.type === 'send')
    expect(sends).toMatchObject([{ to: 'b', msg: { t: 'root' } }])
  })
})

describe('tombstones and the horizon', () => {
  it('a current replica collects a tombstone once it is older than the horizon, not before', () => {
    const a = replica('a')
    a.put('web', bytes('v'), T0)
    a.remove('web', T0 + 1)
    expect(a.tick(T0 + H - 1000).filter((e) => e.type === 'dropped')).toEqual([])
    const dropped = a.tick(T0 + H + 2000).filter((e) => e.type === 'dropped')
    expect(dropped).toMatchObject([{ key: 'web', reason: 'collected' }])
    expect(a.get('web')).toBeUndefined()
    expect(a.history('web')).toEqual([])
  })

  it('a joining replica collects nothing', () => {
    const j = replica('j', { founder: false })
    j.receiveBroadcast('a', { t: 'write', cur: true, entries: [{ k: 'web', w: T0, l: 0, n: 'a', r: 2, v: null }] }, T0)
    expect(j.status()).toBe('joining')
    expect(j.tick(T0 + 2 * H).filter((e) => e.type === 'dropped')).toEqual([])
    expect(j.get('web')?.value).toBeNull()
  })

  it('a current replica refuses a settled entry for an unknown key from a joining peer', () => {
    const a = replica('a')
    const old = { k: 'web', w: T0 - 2 * H, l: 0, n: 'z', r: 1, v: bytes('stale') }
    expect(a.receive('j', { t: 'entries', cur: false, entries: [old] }, T0)).toMatchObject([{ type: 'refused', reason: 'settled' }])
    expect(a.get('web')).toBeUndefined()
    // From a current peer, a settled live entry is taken (nothing could have collected its tombstone there) ...
    expect(a.receive('c', { t: 'entries', cur: true, entries: [old] }, T0).map((e) => e.type)).toContain('changed')
    // ... but a settled tombstone for an unknown key is not (it would be collected at once).
    expect(a.receive('c', { t: 'entries', cur: true, entries: [{ ...old, k: 'gone', v: null }] }, T0)).toMatchObject([{ type: 'refused', reason: 'settled' }])
    // A recent entry is always taken.
    expect(a.receive('j', { t: 'entries', cur: false, entries: [{ ...old, k: 'new', w: T0 - 10 }] }, T0).map((e) => e.type)).toContain('changed')
  })

  it('refuses an entry stamped too far in the future, and takes it once the clock catches up', () => {
    const a = replica('a')
    const future = { k: 'web', w: T0 + 10_000, l: 0, n: 'z', r: 1, v: bytes('future') }
    expect(a.receive('z', { t: 'entries', cur: true, entries: [future] }, T0)).toMatchObject([{ type: 'refused', reason: 'drift' }])
    a.receive('z', { t: 'entries', cur: true, entries: [future] }, T0 + 6000)
    expect(text(a.get('web'))).toBe('future')
    expect(a.put('web', bytes('mine'), T0 + 6001).result.entry!.hlc.wall).toBeGreaterThanOrEqual(T0 + 10_000)
  })

  it('a joining replica drops settled entries a current peer lacks, pushes recent ones, then becomes current', () => {
    const a = replica('a')
    a.put('keep', bytes('k'), T0)
    // j was away: it holds 'deleted' (whose tombstone a collected long ago) and wrote 'fresh' recently.
    const stale: Entry = { key: 'deleted', hlc: { wall: T0 - 3 * H, logical: 0, node: 'a' }, value: bytes('old'), revision: 1 }
    const fresh: Entry = { key: 'fresh', hlc: { wall: T0 - 1000, logical: 0, node: 'j' }, value: bytes('new'), revision: 1 }
    const j = replica('j', { restore: { entries: [stale, fresh], history: [], meta: { status: 'current', aliveAt: T0 - H, joiningSince: undefined, clock: { wall: T0 - 1000, logical: 0 } } } })
    expect(j.status()).toBe('joining')
    const p = new Pump().add(a, j)
    p.round(j, 'a')
    expect(j.get('deleted')).toBeUndefined()
    expect(a.get('deleted')).toBeUndefined()
    expect(text(a.get('fresh'))).toBe('new')
    expect(text(j.get('keep'))).toBe('k')
    expect(p.effects).toContainEqual(expect.objectContaining({ type: 'dropped', key: 'deleted', reason: 'stale' }))
    p.round(j, 'a')
    expect(j.status()).toBe('current')
  })

  it('the same drop happens when the current peer starts the round', () => {
    const a = replica('a')
    a.put('keep', bytes('k'), T0)
    const stale: Entry = { key: 'deleted', hlc: { wall: T0 - 3 * H, logical: 0, node: 'a' }, value: bytes('old'), revision: 1 }
    const j = replica('j', { founder: false, restore: { entries: [stale], history: [], meta: undefined } })
    const p = new Pump().add(a, j)
    p.round(a, 'j')
    expect(j.get('deleted')).toBeUndefined()
    expect(a.get('deleted')).toBeUndefined()
    p.round(a, 'j')
    expect(j.status()).toBe('current')
  })

  it('a fresh joiner learns settled entries from a current peer', () => {
    const a = replica('a')
    a.receive('c', { t: 'entries', cur: true, entries: [{ k: 'old', w: T0 - 5 * H, l: 0, n: 'c', r: 1, v: bytes('ancient') }] }, T0)
    const j = replica('j', { founder: false })
    const p = new Pump().add(a, j)
    p.round(j, 'a')
    expect(text(j.get('old'))).toBe('ancient')
  })
})

describe('status and restarts', () => {
  it('restores exactly what was persisted, and stamps above it', () => {
    const a = replica('a')
    const log: Effect[] = [...a.tick(T0)]
    for (let i = 0; i < 6; i++) log.push(...a.put('web', bytes(`v${i}`), T0 + i).effects)
    log.push(...a.remove('web', T0 + 10).effects, ...a.put('db', bytes('d'), T0 + 11).effects)
    const b = replica('a', { restore: disk(log), now: T0 + 12 })
    expect(b.entries()).toEqual(a.entries())
    expect(b.history('web')).toEqual(a.history('web'))
    expect(Buffer.from(b.root())).toEqual(Buffer.from(a.root()))
    expect(b.status()).toBe('current')
    // Even with the physical clock set back, new stamps follow the persisted ones.
    const next = b.put('web', bytes('again'), T0 - 50_000).result.entry!
    expect(compareHlc(next.hlc, a.get('db')!.hlc)).toBeGreaterThan(0)
    expect(next.revision).toBe(a.history('web').at(-1)!.revision + 1)
  })

  it('comes back joining after being away longer than rejoinAfter (H / 2)', () => {
    const a = replica('a')
    const log = [...a.tick(T0), ...a.put('web', bytes('v'), T0).effects]
    expect(replica('a', { restore: disk(log), now: T0 + H / 2 - 1 }).status()).toBe('current')
    expect(replica('a', { restore: disk(log), now: T0 + H / 2 + 1 }).status()).toBe('joining')
  })

  it('turns joining after a stall longer than rejoinAfter', () => {
    const a = replica('a')
    a.tick(T0)
    const effects = a.tick(T0 + H)
    expect(a.status()).toBe('joining')
    expect(effects).toContainEqual(expect.objectContaining({ type: 'meta', meta: expect.objectContaining({ status: 'joining' }) }))
  })

  it('a joining replica that never meets a current peer promotes itself after promoteAfter', () => {
    const j = replica('j', { founder: false })
    j.tick(T0)
    for (let t = T0; t < T0 + H; t += 1000) j.tick(t)
    expect(j.status()).toBe('joining')
    j.tick(T0 + H)
    expect(j.status()).toBe('current')
    const k = replica('k', { founder: false })
    k.receive('a', { t: 'buckets', cur: true, hashes: new Uint8Array(8 * 16) }, T0)
    for (let t = T0; t <= T0 + 2 * H; t += 1000) k.tick(t)
    expect(k.status()).toBe('joining')
  })

  it('emits its meta periodically, so that aliveAt stays fresh on disk', () => {
    const a = replica('a')
    const metas = [0, 1000, 5000, 9000, 10_000].flatMap((dt) => a.tick(T0 + dt)).filter((e) => e.type === 'meta')
    expect(metas.map((e) => e.type === 'meta' && e.meta.aliveAt)).toEqual([T0, T0 + 5000, T0 + 10_000])
    expect(a.nextDeadline()).toBeLessThanOrEqual(T0 + 15_000)
  })
})
