import { describe, expect, it } from 'vitest'
import { decodeAdminMessage, encodeAdminMessage } from '../../src/consensus/admin.ts'
import {
  applyEntry, decodeAppState, decodeCommand, emptyAppState, encodeAppState, encodeCommand, Fence, toCommitted, type Command,
} from '../../src/consensus/commands.ts'
import { decodeConfChange, encodeConfChange } from '../../src/consensus/confchange.ts'
import { forcedRemovalEntries, voterInfos } from '../../src/consensus/status.ts'
import { describeRaftTiming, resolveRaftTiming } from '../../src/consensus/timing.ts'
import type { Entry, RaftStatus } from '../../src/consensus/types.ts'
import type { Member } from '../../src/membership/types.ts'
import { encode } from '../../src/transport/codec.ts'

const cmd: Command = { kind: 'assignments', service: 'web', revision: 3, slots: { 'web/0': 'peer-a', 'web/1': 'peer-b' } }
const entry = (index: number, term: number, type: Entry['type'], data: Uint8Array): Entry => ({ index, term, type, data })

describe('log commands', () => {
  it('round-trips an assignment set and checks its schema', () => {
    expect(decodeCommand(encodeCommand(cmd))).toEqual({ ok: true, value: cmd })
    for (const bad of [{ kind: 'nope' }, { ...cmd, service: '' }, { ...cmd, revision: -1 }, { ...cmd, slots: { a: 5 } }, 'text']) {
      expect(decodeCommand(encode(bad)).ok).toBe(false)
    }
    expect(decodeCommand(new Uint8Array([0xc1])).ok).toBe(false)
    const tooMany = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`s${i}`, 'p']))
    expect(decodeCommand(encode({ ...cmd, slots: tooMany }))).toMatchObject({ ok: false, reason: expect.stringMatching(/10000 slots/) })
  })

  it('classifies committed entries; undecodable ones are marked invalid, not thrown', () => {
    expect(toCommitted(entry(4, 2, 'normal', encodeCommand(cmd)))).toEqual({ term: 2, index: 4, kind: 'command', command: cmd })
    expect(toCommitted(entry(5, 2, 'conf', encodeConfChange({ type: 'remove', id: 'x' })))).toEqual({ term: 2, index: 5, kind: 'conf', change: { type: 'remove', id: 'x' } })
    expect(toCommitted(entry(6, 3, 'empty', new Uint8Array(0)))).toEqual({ term: 3, index: 6, kind: 'empty' })
    expect(toCommitted(entry(7, 3, 'normal', new Uint8Array([1, 2])))).toMatchObject({ kind: 'invalid', index: 7 })
    expect(toCommitted(entry(8, 3, 'conf', new Uint8Array([1, 2])))).toMatchObject({ kind: 'invalid', index: 8 })
    expect(decodeConfChange(encodeConfChange({ type: 'add-voter', id: 'y' }))).toEqual({ type: 'add-voter', id: 'y' })
  })

  it('the state machine keeps the latest assignment set per service, and snapshots round-trip', () => {
    const st = emptyAppState()
    applyEntry(st, entry(1, 1, 'normal', encodeCommand(cmd)))
    applyEntry(st, entry(2, 1, 'normal', encodeCommand({ ...cmd, service: 'db', slots: {} })))
    applyEntry(st, entry(3, 2, 'normal', encodeCommand({ ...cmd, revision: 4 })))
    applyEntry(st, entry(4, 2, 'empty', new Uint8Array(0)))
    expect(st.applied).toBe(4)
    expect(st.assignments.get('web')).toEqual({ revision: 4, slots: cmd.slots, term: 2, index: 3 })
    expect(st.fence.mark()).toEqual({ term: 2, index: 3 })
    const back = decodeAppState(encodeAppState(st), 4)
    expect(back.ok).toBe(true)
    if (!back.ok) return
    expect([...back.value.assignments]).toEqual([...st.assignments].sort(([a], [b]) => (a < b ? -1 : 1)))
    expect(back.value.fence.mark()).toEqual({ term: 2, index: 3 })
    expect(back.value.applied).toBe(4)
    expect(decodeAppState(new Uint8Array(0), 9)).toMatchObject({ ok: true, value: { applied: 9 } })
    expect(decodeAppState(encode({ v: 2 }), 9).ok).toBe(false)
  })

  it('restarting: round-trips, refuses hostile values, applies (latest wins, 0 clears) and survives snapshots', () => {
    const r: Command = { kind: 'restarting', host: 'peer-b', untilMs: 1_700_000_030_000 }
    expect(decodeCommand(encodeCommand(r))).toEqual({ ok: true, value: r })
    for (const bad of [
      { ...r, untilMs: -1 }, { ...r, untilMs: 1.5 }, { ...r, untilMs: Number.MAX_SAFE_INTEGER + 2 }, { ...r, untilMs: '1700000030000' }, { ...r, untilMs: null },
      { ...r, host: '' }, { ...r, host: 'p'.repeat(10_000) }, { ...r, host: 7 }, { kind: 'restarting', host: 'peer-b' }, { kind: 'restarting', untilMs: 5 },
    ]) {
      expect(decodeCommand(encode(bad)).ok).toBe(false)
    }
    const st = emptyAppState()
    applyEntry(st, entry(1, 1, 'normal', encodeCommand(r)))
    applyEntry(st, entry(2, 1, 'normal', encodeCommand({ ...r, host: 'peer-c', untilMs: 5 })))
    applyEntry(st, entry(3, 1, 'normal', encodeCommand({ ...r, untilMs: r.untilMs + 1000 })))
    expect([...st.restarting]).toEqual([['peer-b', r.untilMs + 1000], ['peer-c', 5]])
    applyEntry(st, entry(4, 2, 'normal', encodeCommand({ ...r, host: 'peer-c', untilMs: 0 })))
    expect([...st.restarting]).toEqual([['peer-b', r.untilMs + 1000]])
    expect(st.fence.mark()).toEqual({ term: 2, index: 4 })
    const back = decodeAppState(encodeAppState(st), 4)
    expect(back.ok && [...back.value.restarting]).toEqual([['peer-b', r.untilMs + 1000]])
    // A snapshot of the previous version (no `restarting` field) loads with none.
    const old = encode({ v: 3, assignments: [], fence: { term: 2, index: 4 }, table: { term: 0, index: 0, assignments: [] }, drained: ['peer-d'] })
    const loaded = decodeAppState(old, 4)
    expect(loaded.ok && loaded.value.restarting.size).toBe(0)
    expect(loaded.ok && [...loaded.value.drained]).toEqual(['peer-d'])
    // Hostile snapshot rows are refused.
    expect(decodeAppState(encode({ v: 3, assignments: [], fence: { term: 0, index: 0 }, restarting: [{ host: 'x', untilMs: -3 }] }), 1).ok).toBe(false)
    expect(decodeAppState(encode({ v: 3, assignments: [], fence: { term: 0, index: 0 }, restarting: 'all' }), 1).ok).toBe(false)
  })
})

describe('fence', () => {
  it('refuses decisions older than the newest applied one; equal and newer pass', () => {
    const f = new Fence()
    expect(f.check(0, 0)).toEqual({ ok: true })
    f.advance(5, 40)
    expect(f.check(5, 40)).toEqual({ ok: true })
    expect(f.check(5, 41)).toEqual({ ok: true })
    expect(f.check(6, 1)).toEqual({ ok: true })
    expect(f.check(5, 39)).toEqual({ ok: false, reason: 'stale-index', newest: { term: 5, index: 40 } })
    expect(f.check(4, 100)).toEqual({ ok: false, reason: 'stale-term', newest: { term: 5, index: 40 } })
    // The mark never goes back.
    f.advance(4, 100)
    f.advance(5, 10)
    expect(f.mark()).toEqual({ term: 5, index: 40 })
    f.advance(7, 41)
    expect(f.check(6, 1000)).toMatchObject({ ok: false, reason: 'stale-term' })
  })

  it('lets an older-term entry committed by a newer leader through: log order never goes back', () => {
    // Entry (term 5, index 50) was proposed in term 5 and committed by the term-7 leader, which
    // then appended its own (7, 51). Applied in log order, both pass.
    const f = new Fence({ term: 5, index: 49 })
    expect(f.check(5, 50).ok).toBe(true)
    f.advance(5, 50)
    expect(f.check(7, 51).ok).toBe(true)
  })
})

describe('timing', () => {
  it('presets, overrides and checks', () => {
    expect(resolveRaftTiming()).toEqual({ tickMs: 50, electionTicks: 9, heartbeatTicks: 2 })
    expect(resolveRaftTiming({ preset: 'wan' })).toEqual({ tickMs: 100, electionTicks: 20, heartbeatTicks: 3 })
    expect(resolveRaftTiming({ preset: 'lan', tickMs: 20 })).toEqual({ tickMs: 20, electionTicks: 9, heartbeatTicks: 2 })
    expect(describeRaftTiming(resolveRaftTiming())).toBe('tick 50 ms, heartbeat 100 ms, election timeout 450–900 ms')
    expect(() => resolveRaftTiming({ preset: 'moon' })).toThrow(/unknown --raft-timing/)
    expect(() => resolveRaftTiming({ electionTicks: 3, heartbeatTicks: 3 })).toThrow(/must be shorter/)
    expect(() => resolveRaftTiming({ tickMs: 1 })).toThrow(/--raft-tick-ms must be an integer from 5/)
  })
})

describe('status helpers', () => {
  it('forced removal entries: remove, and add this peer when no voter would remain', () => {
    const two = forcedRemovalEntries({ self: 's', voters: ['s', 'x'], learners: [], id: 'x', term: 8, lastIndex: 20 })
    expect(two.map((e) => [e.index, e.term, e.type, decodeConfChange(e.data)])).toEqual([[21, 8, 'conf', { type: 'remove', id: 'x' }]])
    const last = forcedRemovalEntries({ self: 'l', voters: ['x'], learners: ['l'], id: 'x', term: 3, lastIndex: 5 })
    expect(last.map((e) => decodeConfChange(e.data))).toEqual([{ type: 'remove', id: 'x' }, { type: 'add-voter', id: 'l' }])
    expect(last.map((e) => e.index)).toEqual([6, 7])
    expect(forcedRemovalEntries({ self: 's', voters: ['s'], learners: [], id: 's', term: 2, lastIndex: 1 })).toEqual([])
  })

  it('voter infos: voters then learners by name, match from the leader or the remote answer, health from membership', () => {
    const m = (id: string, name: string, state: Member['state']): Member => ({ id, name, address: '', labels: {}, state, incarnation: 0, since: 0 })
    const st: RaftStatus = { id: 'b', term: 3, vote: null, role: 'follower', leader: 'a', commit: 9, applied: 9, firstIndex: 1, lastIndex: 9, voters: ['c', 'a', 'b'], learners: ['z'] }
    const members = new Map([['a', m('a', 'alpha', 'alive')], ['c', m('c', 'gamma', 'dead')]])
    const rows = voterInfos(st, { term: 3, lastIndex: 9, members: [{ id: 'a', match: 9, recentActive: true }, { id: 'c', match: 4, recentActive: false }] }, 'b', members, m('b', 'beta', 'alive'))
    expect(rows.map((r) => [r.name, r.role, r.match, r.health, r.leader, r.self])).toEqual([
      ['alpha', 'voter', 9, 'alive', true, false],
      ['beta', 'voter', null, 'alive', false, true],
      ['gamma', 'voter', 4, 'dead', false, false],
      [null, 'learner', null, 'unknown', false, false],
    ])
  })
})

describe('admin messages', () => {
  it('round-trip; junk is refused without throwing', () => {
    const msg = { t: 'remove' as const, from: 'a', req: 3, id: 'b' }
    expect(decodeAdminMessage(encodeAdminMessage(msg))).toEqual({ ok: true, value: msg })
    for (const junk of [new Uint8Array(0), new Uint8Array([0xc1]), encode({ t: 'remove', from: '', req: 1, id: 'b' }), encode({ t: 'zap' }), new Uint8Array(300 * 1024)]) {
      expect(decodeAdminMessage(junk).ok).toBe(false)
    }
  })
})
