import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { seededRng } from '../../src/core/rng.ts'
import { suspicionBounds, suspicionTimeout, expectedConfirmations } from '../../src/membership/formulas.ts'
import { createMembership, type Membership } from '../../src/membership/table.ts'
import {
  DEFAULT_MEMBERSHIP_CONFIG,
  type DirectMessage, type Effect, type MemberRecord, type MemberState, type MembershipConfig, type Update,
} from '../../src/membership/types.ts'

const cfg: MembershipConfig = { ...DEFAULT_MEMBERSHIP_CONFIG }

const info = (id: string, inc = 0) => ({ id, name: `${id}-n${inc}`, address: `${id}.example:7946`, labels: { inc: String(inc) } })
const rec = (id: string, state: MemberState = 'alive', inc = 0): MemberRecord => ({ ...info(id, inc), state, incarnation: inc })
const alive = (id: string, inc = 0): Update => ({ kind: 'alive', ...info(id, inc), inc })

function core(id = 'a', opts: { config?: Partial<MembershipConfig>; seed?: number; incarnation?: number; now?: number } = {}): Membership {
  return createMembership({ self: info(id, opts.incarnation ?? 0), incarnation: opts.incarnation ?? 0, config: { ...cfg, ...opts.config }, rng: seededRng(opts.seed ?? 7), now: opts.now ?? 0 })
}

/** Teach `c` about members through a push-pull answer from the first of them. */
function seed(c: Membership, records: MemberRecord[], now = 0): Effect[] {
  const from = records[0]?.id ?? 'x'
  return c.receive(from, { t: 'push-pull', from, reply: true, members: records }, now)
}

const sends = (effs: Effect[]): { to: string; msg: DirectMessage }[] => effs.flatMap((e) => (e.type === 'send' ? [{ to: e.to, msg: e.msg }] : []))
const published = (effs: Effect[]): Update[] => effs.flatMap((e) => (e.type === 'broadcast' ? e.msg.updates : []))
const stateOf = (c: Membership, id: string): MemberState | undefined => c.member(id)?.state

/** Tick every 10 ms from `from` to `to` (inclusive), collecting effects. */
function tickRange(c: Membership, from: number, to: number, step = 10): Effect[] {
  const out: Effect[] = []
  for (let t = from; t <= to; t += step) out.push(...c.tick(t))
  return out
}

/** Put member `id` of a fresh core in `state` at `inc`. */
function withState(state: MemberState, inc: number): Membership {
  const c = core('a')
  seed(c, [rec('w', 'alive', 0), rec('m', state, inc)])
  expect(c.member('m')).toMatchObject({ state, incarnation: inc })
  return c
}

/** Apply a claim the way it would arrive: alive/left from the member itself, suspect/dead from a third peer. */
function claim(c: Membership, kind: MemberState, id: string, inc: number, now = 1): Effect[] {
  const u: Update = kind === 'alive' ? alive(id, inc) : kind === 'left' ? { kind, id, inc } : { kind, id, inc, from: 'z' }
  const from = kind === 'alive' || kind === 'left' ? id : 'z'
  return c.receiveBroadcast(from, { t: 'updates', from, updates: [u] }, now)
}

/** The SWIM precedence rules, as stated in the design (independently of the implementation). */
function expectedState(cur: MemberState, i: number, kind: MemberState, j: number): MemberState {
  switch (kind) {
    case 'alive': return j > i ? 'alive' : cur
    case 'suspect': return (cur === 'alive' ? j >= i : j > i) ? 'suspect' : cur
    case 'dead': return cur === 'alive' || cur === 'suspect' ? (j >= i ? 'dead' : cur) : cur === 'left' && j > i ? 'dead' : cur
    case 'left': return cur !== 'left' && j >= i ? 'left' : cur
  }
}

describe('precedence of claims', () => {
  const states: MemberState[] = ['alive', 'suspect', 'dead', 'left']
  for (const cur of states) {
    for (const kind of states) {
      it(`${kind} over ${cur}`, () => {
        for (const j of [1, 2, 3]) {
          const c = withState(cur, 2)
          claim(c, kind, 'm', j)
          expect(stateOf(c, 'm'), `${kind}(${j}) over ${cur}(2)`).toBe(expectedState(cur, 2, kind, j))
        }
      })
    }
  }

  it('emits a changed effect when a member appears and on every state change', () => {
    const c = core('a')
    const e1 = seed(c, [rec('b')])
    expect(e1).toContainEqual(expect.objectContaining({ type: 'changed', previous: undefined, member: expect.objectContaining({ id: 'b', state: 'alive' }) }))
    const e2 = claim(c, 'suspect', 'b', 0)
    expect(e2).toContainEqual(expect.objectContaining({ type: 'changed', previous: 'alive', member: expect.objectContaining({ id: 'b', state: 'suspect' }) }))
    expect(claim(c, 'suspect', 'b', 0)).toEqual([])
  })

  it('never lowers an incarnation and never marks itself non-alive, whatever the claims (property)', () => {
    const ids = ['a', 'b', 'c', 'd']
    const upd = fc.record({ kind: fc.constantFrom<MemberState>('alive', 'suspect', 'dead', 'left'), id: fc.constantFrom(...ids), inc: fc.integer({ min: 0, max: 6 }) })
    fc.assert(fc.property(fc.array(upd, { maxLength: 60 }), (list) => {
      const c = core('a')
      const seen = new Map<string, number>()
      let selfInc = c.incarnation()
      for (const [n, u] of list.entries()) {
        for (const e of claim(c, u.kind, u.id, u.inc, n)) {
          if (e.type !== 'changed') continue
          const before = seen.get(e.member.id) ?? -1
          expect(e.member.incarnation).toBeGreaterThanOrEqual(before)
          seen.set(e.member.id, e.member.incarnation)
        }
        expect(c.self().state).toBe('alive')
        expect(c.incarnation()).toBeGreaterThanOrEqual(selfInc)
        selfInc = c.incarnation()
      }
    }))
  })

  it('ends in the same table whatever order the same claims arrive in (property)', () => {
    const upd = fc.record({ kind: fc.constantFrom<MemberState>('alive', 'suspect', 'dead', 'left'), id: fc.constantFrom('b', 'c', 'd'), inc: fc.integer({ min: 0, max: 4 }) })
    fc.assert(fc.property(fc.array(upd, { minLength: 1, maxLength: 30 }).chain((list) => fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }))), ([list, perm]) => {
      const view = (order: typeof list): string => {
        const c = core('a')
        order.forEach((u, n) => claim(c, u.kind, u.id, u.inc, n))
        return JSON.stringify(c.members().map((m) => [m.id, m.state, m.incarnation, m.name, m.labels]))
      }
      expect(view(perm)).toBe(view(list))
    }))
  })
})

describe('refutation', () => {
  it('outbids suspect, dead and left claims about itself and broadcasts alive', () => {
    const c = core('a')
    const e1 = claim(c, 'suspect', 'a', 0)
    expect(c.incarnation()).toBe(1)
    expect(published(e1)).toEqual([expect.objectContaining({ kind: 'alive', id: 'a', inc: 1 })])
    expect(c.awareness()).toBe(1)
    seed(c, [rec('b'), rec('a', 'dead', 5)])
    expect(c.incarnation()).toBe(6)
    claim(c, 'suspect', 'a', 3)
    expect(c.incarnation()).toBe(6)
    expect(c.self().state).toBe('alive')
  })

  it('outbids an alive claim from an older life with a higher incarnation', () => {
    const c = core('a', { incarnation: 2 })
    seed(c, [rec('b'), { ...rec('a', 'alive', 4) }])
    expect(c.incarnation()).toBe(5)
  })

  it('does not refute after leaving', () => {
    const c = core('a')
    c.leave(0)
    expect(claim(c, 'dead', 'a', 0)).toEqual([])
    expect(c.self().state).toBe('left')
  })
})

describe('probing', () => {
  function cluster(n: number, config: Partial<MembershipConfig> = {}): { c: Membership; ids: string[] } {
    const c = core('a', { config })
    const ids = Array.from({ length: n }, (_, i) => `m${i}`)
    seed(c, ids.map((id) => rec(id)))
    return { c, ids }
  }

  /** Tick until a probe ping goes out; returns its time, target and seq. */
  function nextPing(c: Membership, from: number): { t: number; to: string; seq: number } {
    for (let t = from; t < from + 10_000; t += 10) {
      const ping = sends(c.tick(t)).find((s) => s.msg.t === 'ping')
      if (ping !== undefined && ping.msg.t === 'ping') return { t, to: ping.to, seq: ping.msg.seq }
    }
    throw new Error('no probe')
  }

  it('probes every member once per round in random order', () => {
    const { c, ids } = cluster(6)
    const targets: string[] = []
    let t = 0
    for (let i = 0; i < ids.length; i++) {
      const p = nextPing(c, t)
      targets.push(p.to)
      c.receive(p.to, { t: 'ack', seq: p.seq, from: p.to }, p.t + 1)
      t = p.t + 10
    }
    expect([...targets].sort()).toEqual([...ids].sort())
  })

  it('answers a ping with an ack carrying the same seq', () => {
    const c = core('a')
    expect(sends(c.receive('b', { t: 'ping', seq: 42, from: 'b' }, 0))).toEqual([{ to: 'b', msg: { t: 'ack', seq: 42, from: 'a' } }])
  })

  it('asks k others to probe after the direct timeout, and an indirect ack clears the probe', () => {
    const { c } = cluster(6)
    const p = nextPing(c, 0)
    const req = sends(tickRange(c, p.t + 10, p.t + cfg.probeTimeoutMs)).filter((s) => s.msg.t === 'ping-req')
    expect(req).toHaveLength(cfg.indirectChecks)
    for (const r of req) expect(r.msg).toMatchObject({ t: 'ping-req', seq: p.seq, target: p.to, from: 'a', address: `${p.to}.example:7946` })
    expect(new Set(req.map((r) => r.to)).has(p.to)).toBe(false)
    const relay = req[0]?.to as string
    c.receive(relay, { t: 'ack', seq: p.seq, from: relay }, p.t + cfg.probeTimeoutMs + 20)
    const after = tickRange(c, p.t + cfg.probeTimeoutMs + 30, p.t + cfg.probeIntervalMs + 50)
    expect(stateOf(c, p.to)).toBe('alive')
    expect(published(after)).toEqual([])
  })

  it('suspects the target when neither direct nor indirect probes answer; nacks keep awareness down', () => {
    const { c } = cluster(6)
    const p = nextPing(c, 0)
    const req = sends(tickRange(c, p.t + 10, p.t + cfg.probeTimeoutMs)).filter((s) => s.msg.t === 'ping-req')
    for (const r of req) c.receive(r.to, { t: 'nack', seq: p.seq, from: r.to }, p.t + cfg.probeTimeoutMs + 30)
    const effs = tickRange(c, p.t + cfg.probeTimeoutMs + 40, p.t + cfg.probeIntervalMs)
    expect(stateOf(c, p.to)).toBe('suspect')
    expect(published(effs)).toContainEqual({ kind: 'suspect', id: p.to, inc: 0, from: 'a' })
    expect(c.awareness()).toBe(0)
  })

  it('raises awareness for missing nacks, lowers it on a direct ack, and slows probing while raised', () => {
    const { c } = cluster(6)
    const p = nextPing(c, 0)
    // The failing tick also starts the next probe (it was due), with the raised awareness.
    let r: { t: number; to: string; seq: number } | undefined
    for (let t = p.t + 10; t <= p.t + cfg.probeIntervalMs && r === undefined; t += 10) {
      const ping = sends(c.tick(t)).find((x) => x.msg.t === 'ping')
      if (ping?.msg.t === 'ping') r = { t, to: ping.to, seq: ping.msg.seq }
    }
    expect(c.awareness()).toBe(cfg.indirectChecks)
    if (r === undefined) throw new Error('no second probe')
    c.receive(r.to, { t: 'ack', seq: r.seq, from: r.to }, r.t + 5)
    expect(c.awareness()).toBe(cfg.indirectChecks - 1)
    // That probe started with awareness 3, so the one after comes 4 intervals later.
    const q = nextPing(c, r.t + 10)
    expect(q.t - r.t).toBeGreaterThanOrEqual(cfg.probeIntervalMs * (cfg.indirectChecks + 1))
  })

  it('serves ping-req: pings the target with its own seq, relays the ack, or nacks in time', () => {
    const c = core('b')
    seed(c, [rec('a'), rec('t')])
    const out = sends(c.receive('a', { t: 'ping-req', seq: 9, from: 'a', target: 't', address: 'elsewhere:1' }, 100))
    expect(out).toHaveLength(1)
    const ping = out[0]
    expect(ping?.to).toBe('t')
    if (ping?.msg.t !== 'ping') throw new Error('expected a ping')
    expect(sends(c.receive('t', { t: 'ack', seq: ping.msg.seq, from: 't' }, 110))).toEqual([{ to: 'a', msg: { t: 'ack', seq: 9, from: 'b' } }])
    // A second request that the target does not answer: a nack before the requester's window closes.
    const ping2 = sends(c.receive('a', { t: 'ping-req', seq: 10, from: 'a', target: 't', address: '' }, 200))[0]
    expect(ping2?.msg.t).toBe('ping')
    const nack = sends(tickRange(c, 200, 200 + cfg.probeIntervalMs - cfg.probeTimeoutMs)).find((s) => s.msg.t === 'nack')
    expect(nack).toEqual({ to: 'a', msg: { t: 'nack', seq: 10, from: 'b' } })
  })

  it('moves to the indirect stage at once when a send fails, and never declares death on its own', () => {
    const { c } = cluster(6)
    const p = nextPing(c, 0)
    const req = sends(c.sendFailed(p.to, p.t + 1)).filter((s) => s.msg.t === 'ping-req')
    expect(req).toHaveLength(cfg.indirectChecks)
    for (let i = 0; i < 20; i++) expect(c.sendFailed(p.to, p.t + 2).some((e) => e.type === 'changed')).toBe(false)
    expect(stateOf(c, p.to)).toBe('alive')
  })

  it('treats a long gap between ticks as its own stall: awareness up, pending deadlines moved', () => {
    const { c } = cluster(6)
    claim(c, 'suspect', 'm1', 0, 0)
    const { max } = suspicionBounds(7, cfg)
    tickRange(c, 0, 50)
    const before = c.awareness()
    c.tick(50 + max + 100) // stalled for longer than the whole suspicion
    expect(c.awareness()).toBe(before + 1)
    expect(stateOf(c, 'm1')).toBe('suspect')
  })
})

describe('suspicion', () => {
  const n = 10 // self + 9 members: k = 2
  function ten(): Membership {
    const c = core('a')
    seed(c, Array.from({ length: n - 1 }, (_, i) => rec(`m${i}`)))
    return c
  }
  const bounds = suspicionBounds(n, cfg)
  const k = expectedConfirmations(n, cfg)

  /**
   * Tick from 0 in 5 ms steps, answering every probe at once except those to `down`, until m1
   * is dead; returns that time and everything published.
   */
  function deathTime(c: Membership, down = new Set<string>()): { t: number; published: Update[] } {
    const pub: Update[] = []
    const handle = (effs: Effect[], now: number): void => {
      pub.push(...published(effs))
      for (const s of sends(effs)) {
        if (s.msg.t === 'ping' && !down.has(s.to)) handle(c.receive(s.to, { t: 'ack', seq: s.msg.seq, from: s.to }, now), now)
        if (s.msg.t === 'ping-req') handle(c.receive(s.to, { t: down.has(s.msg.target) ? 'nack' : 'ack', seq: s.msg.seq, from: s.to }, now), now)
      }
    }
    for (let t = 0; t < bounds.max + 1000; t += 5) {
      handle(c.tick(t), t)
      if (stateOf(c, 'm1') === 'dead') return { t, published: pub }
    }
    return { t: Number.POSITIVE_INFINITY, published: pub }
  }
  const accuse = (c: Membership, by: string, t = 0) => c.receiveBroadcast(by, { t: 'updates', from: by, updates: [{ kind: 'suspect', id: 'm1', inc: 0, from: by }] }, t)

  it('runs for the longest timeout without confirmations', () => {
    const c = ten()
    accuse(c, 'm2')
    expect(k).toBe(2)
    const { t } = deathTime(c)
    expect(t).toBeGreaterThanOrEqual(bounds.max)
    expect(t).toBeLessThan(bounds.max + 50)
  })

  it('shortens with confirmations from distinct accusers only', () => {
    const once = ten()
    accuse(once, 'm2')
    accuse(once, 'm3')
    accuse(once, 'm3')
    const t1 = deathTime(once).t
    const want1 = suspicionTimeout(1, k, bounds)
    expect(t1).toBeGreaterThanOrEqual(want1)
    expect(t1).toBeLessThan(want1 + 50)

    const twice = ten()
    for (const by of ['m2', 'm3', 'm4', 'm5']) accuse(twice, by)
    const t2 = deathTime(twice).t
    expect(t2).toBeGreaterThanOrEqual(bounds.min)
    expect(t2).toBeLessThan(bounds.min + 50)
  })

  it('is ended by the member\'s refutation', () => {
    const c = ten()
    accuse(c, 'm2')
    claim(c, 'alive', 'm1', 1, 100)
    expect(deathTime(c).t).toBe(Number.POSITIVE_INFINITY)
    expect(c.member('m1')).toMatchObject({ state: 'alive', incarnation: 1 })
  })

  it('lets only accusers broadcast the death', () => {
    const bystander = ten()
    accuse(bystander, 'm2')
    const quiet = deathTime(bystander)
    expect(quiet.t).toBeLessThan(Number.POSITIVE_INFINITY)
    expect(quiet.published.filter((u) => u.kind === 'dead')).toEqual([])

    const accuser = ten()
    accuse(accuser, 'm2')
    const loud = deathTime(accuser, new Set(['m1']))
    expect(loud.published).toContainEqual({ kind: 'suspect', id: 'm1', inc: 0, from: 'a' })
    expect(loud.published).toContainEqual({ kind: 'dead', id: 'm1', inc: 0, from: 'a' })
  })

  it('tells a suspect that answers a ping about the suspicion', () => {
    const c = ten()
    accuse(c, 'm2')
    const out = sends(c.receive('m1', { t: 'ping', seq: 1, from: 'm1' }, 10))
    expect(out).toContainEqual({ to: 'm1', msg: { t: 'push-pull', from: 'a', reply: true, members: [expect.objectContaining({ id: 'm1', state: 'suspect', incarnation: 0 })] } })
  })
})

describe('leave, dead and reaping', () => {
  it('leaving broadcasts left at the current incarnation and stops probing', () => {
    const c = core('a', { incarnation: 3 })
    seed(c, [rec('b'), rec('c')])
    const effs = c.leave(10)
    expect(published(effs)).toEqual([{ kind: 'left', id: 'a', inc: 3 }])
    expect(c.self()).toMatchObject({ state: 'left', incarnation: 3 })
    expect(tickRange(c, 20, 3000)).toEqual([])
  })

  it('keeps a left member left when later dead or suspect claims arrive for that incarnation', () => {
    const c = core('a')
    seed(c, [rec('b'), rec('m')])
    claim(c, 'left', 'm', 0)
    claim(c, 'dead', 'm', 0)
    claim(c, 'suspect', 'm', 0)
    expect(stateOf(c, 'm')).toBe('left')
    claim(c, 'alive', 'm', 1)
    expect(stateOf(c, 'm')).toBe('alive')
  })

  it('reaps dead and left members after reapAfterMs, keeps live ones', () => {
    const c = core('a', { config: { reapAfterMs: 1000 } })
    seed(c, [rec('b'), rec('d'), rec('l')])
    claim(c, 'dead', 'd', 0, 0)
    claim(c, 'left', 'l', 0, 0)
    tickRange(c, 0, 900, 50)
    expect(stateOf(c, 'd')).toBe('dead')
    tickRange(c, 950, 2000, 50)
    expect(c.member('d')).toBeUndefined()
    expect(c.member('l')).toBeUndefined()
    expect(stateOf(c, 'b')).not.toBeUndefined()
  })
})

describe('push-pull', () => {
  it('join sends our full state to the seed and announces us', () => {
    const c = core('a')
    const effs = c.join('s', 's.example:1', 0)
    expect(sends(effs)).toEqual([{ to: 's', msg: { t: 'push-pull', from: 'a', reply: false, members: [expect.objectContaining({ id: 'a', state: 'alive' })] } }])
    expect(published(effs)).toEqual([expect.objectContaining({ kind: 'alive', id: 'a' })])
  })

  it('answers a push-pull with its own full state, once', () => {
    const c = core('s')
    seed(c, [rec('b'), rec('c')])
    const out = sends(c.receive('j', { t: 'push-pull', from: 'j', reply: false, members: [rec('j')] }, 5))
    expect(out).toHaveLength(1)
    const msg = out[0]?.msg
    if (msg?.t !== 'push-pull') throw new Error('expected push-pull')
    expect(msg.reply).toBe(true)
    expect(msg.members.map((m) => m.id).sort()).toEqual(['b', 'c', 'j', 's'])
    expect(sends(c.receive('j', { ...msg, from: 'j', members: [rec('j')] }, 6))).toEqual([])
  })

  it('a joiner learns the whole table from one seed', () => {
    const s = core('s')
    seed(s, [rec('b'), rec('c', 'suspect'), rec('d', 'dead'), rec('e', 'left')])
    const j = core('j')
    const req = sends(j.join('s', 's.example:1', 0))[0]
    if (req?.msg.t !== 'push-pull') throw new Error('expected push-pull')
    const reply = sends(s.receive('j', req.msg, 1))[0]
    if (reply?.msg.t !== 'push-pull') throw new Error('expected push-pull')
    j.receive('s', reply.msg, 2)
    expect(j.members().map((m) => [m.id, m.state])).toEqual([['b', 'alive'], ['c', 'suspect'], ['d', 'dead'], ['e', 'left'], ['j', 'alive'], ['s', 'alive']])
  })

  it('treats a dead row about a member it holds alive as a suspicion to check, and announces it', () => {
    const c = core('a')
    seed(c, [rec('b'), rec('m')])
    const effs = c.receive('b', { t: 'push-pull', from: 'b', reply: true, members: [rec('m', 'dead', 0)] }, 10)
    expect(stateOf(c, 'm')).toBe('suspect')
    expect(published(effs)).toEqual([{ kind: 'suspect', id: 'm', inc: 0, from: 'a' }])
  })
})
