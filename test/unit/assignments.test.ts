import { describe, expect, it } from 'vitest'
import { applyEntry, decodeAppState, decodeCommand, emptyAppState, encodeAppState, encodeCommand, MAX_CHANGES } from '../../src/consensus/commands.ts'
import type { Entry } from '../../src/consensus/types.ts'
import { AssignmentTable } from '../../src/scheduler/assignments.ts'
import { fitCommand } from '../../src/scheduler/service.ts'
import type { SchedulerCommand, SlotChange } from '../../src/scheduler/types.ts'
import { encode } from '../../src/transport/codec.ts'

const set = (service: string, slot: number, host: string, generation = 1, revision = 1): SlotChange => ({ service, slot, host, generation, revision })
const del = (service: string, slot: number, generation: number): SlotChange => ({ service, slot, host: null, generation, revision: 0 })
const cmd = (...changes: SlotChange[]): SchedulerCommand => ({ kind: 'placements', changes })
const entry = (index: number, term: number, c: SchedulerCommand): Entry => ({ index, term, type: 'normal', data: encodeCommand(c) })
const hosts = (t: AssignmentTable): string[] => t.all().map((a) => `${a.service}/${a.slot}@${a.host}#${a.generation}`)

describe('assignment table', () => {
  it('applies commands in log order, stamps each assignment with its position, and indexes by host', () => {
    const t = new AssignmentTable()
    expect(t.apply(cmd(set('web', 1, 'b'), set('web', 0, 'a'), set('db', 0, 'a')), { term: 1, index: 3 })).toEqual({ ok: true, changed: 3 })
    expect(hosts(t)).toEqual(['db/0@a#1', 'web/0@a#1', 'web/1@b#1'])
    expect(t.apply(cmd(set('web', 1, 'c', 2)), { term: 1, index: 4 }).ok).toBe(true)
    expect(t.get('web', 1)).toEqual({ service: 'web', slot: 1, host: 'c', revision: 1, generation: 2, term: 1, index: 4 })
    expect(t.forHost('a').map((a) => `${a.service}/${a.slot}`)).toEqual(['db/0', 'web/0'])
    expect(t.forHost('b')).toEqual([])
    expect(t.forHost('c').map((a) => a.slot)).toEqual([1])
    // A delete removes only the generation it names.
    expect(t.apply(cmd(del('web', 1, 1), del('web', 0, 1)), { term: 2, index: 5 }).ok).toBe(true)
    expect(hosts(t)).toEqual(['db/0@a#1', 'web/1@c#2'])
    expect(t.position()).toEqual({ term: 2, index: 5 })
    expect(t.size).toBe(2)
  })

  it('is idempotent on re-delivery: a position at or before the newest applied is skipped', () => {
    const t = new AssignmentTable()
    const place = cmd(set('web', 0, 'a'))
    t.apply(place, { term: 1, index: 5 })
    t.apply(cmd(del('web', 0, 1)), { term: 1, index: 6 })
    // The placement comes again (a restart replaying the log over a snapshot that covers it).
    expect(t.apply(place, { term: 1, index: 5 })).toEqual({ ok: false, reason: 'stale-index', newest: { term: 1, index: 6 } })
    expect(t.apply(cmd(del('web', 0, 1)), { term: 1, index: 6 })).toMatchObject({ ok: false, reason: 'duplicate' })
    expect(t.size).toBe(0)
  })

  it('refuses decisions from an older term than the newest applied', () => {
    const t = new AssignmentTable()
    t.apply(cmd(set('web', 0, 'b', 2)), { term: 7, index: 20 })
    expect(t.apply(cmd(set('web', 0, 'a', 3)), { term: 5, index: 30 })).toEqual({ ok: false, reason: 'stale-term', newest: { term: 7, index: 20 } })
    expect(t.get('web', 0)?.host).toBe('b')
    expect(t.apply(cmd(set('web', 0, 'c', 3)), { term: 8, index: 21 }).ok).toBe(true)
    expect(t.get('web', 0)?.host).toBe('c')
  })

  it('restores from a snapshot (de-duplicated, newest generation wins, sorted)', () => {
    const t = new AssignmentTable()
    t.apply(cmd(set('web', 0, 'a'), set('web', 1, 'b'), set('api', 2, 'c')), { term: 3, index: 9 })
    const back = AssignmentTable.restore(t.snapshot())
    expect(back.all()).toEqual(t.all())
    expect(back.position()).toEqual({ term: 3, index: 9 })
    const odd = AssignmentTable.restore({ term: 1, index: 1, assignments: [{ ...t.all()[2]!, host: 'z', generation: 9 }, ...t.all()] })
    expect(hosts(odd)).toEqual(['api/2@c#1', 'web/0@a#1', 'web/1@z#9'])
  })
})

describe('placements in the log', () => {
  it('round-trips a placements command and checks its bounds', () => {
    const c = cmd(set('web', 0, 'peer-a', 2, 4), del('web', 1, 3))
    expect(decodeCommand(encodeCommand(c))).toEqual({ ok: true, value: c })
    const bad = [
      { kind: 'placements', changes: [{ ...set('web', 0, 'a'), slot: -1 }] },
      { kind: 'placements', changes: [{ ...set('web', 0, 'a'), host: '' }] },
      { kind: 'placements', changes: [{ ...set('', 0, 'a') }] },
      { kind: 'placements', changes: [{ ...set('web', 0, 'a'), generation: 1.5 }] },
      { kind: 'placements', changes: [{ ...set('web', 0, 'a'), host: 'x'.repeat(257) }] },
      { kind: 'placements' },
    ]
    for (const b of bad) expect(decodeCommand(encode(b)).ok, JSON.stringify(b).slice(0, 80)).toBe(false)
    const many = Array.from({ length: MAX_CHANGES + 1 }, (_, i) => set('w', i, 'a'))
    expect(decodeCommand(encode({ kind: 'placements', changes: many })).ok).toBe(false)
  })

  it('every peer state machine applies placements to its table; the Raft snapshot keeps it; old snapshots load with an empty table', () => {
    const st = emptyAppState()
    applyEntry(st, entry(1, 1, cmd(set('web', 0, 'a'), set('web', 1, 'b'))))
    applyEntry(st, { index: 2, term: 1, type: 'normal', data: encodeCommand({ kind: 'assignments', service: 'x', revision: 1, slots: {} }) })
    applyEntry(st, entry(3, 2, cmd(set('web', 1, 'c', 2))))
    expect(hosts(st.table)).toEqual(['web/0@a#1', 'web/1@c#2'])
    expect(st.fence.mark()).toEqual({ term: 2, index: 3 })
    const back = decodeAppState(encodeAppState(st), 3)
    expect(back.ok).toBe(true)
    if (!back.ok) return
    expect(back.value.table.all()).toEqual(st.table.all())
    expect(back.value.table.position()).toEqual({ term: 2, index: 3 })
    expect(back.value.assignments.get('x')).toMatchObject({ revision: 1 })
    // Replaying an entry the snapshot covers changes nothing.
    applyEntry(back.value, entry(1, 1, cmd(set('web', 0, 'a'), set('web', 1, 'b'))))
    expect(back.value.table.all()).toEqual(st.table.all())
    const v1 = decodeAppState(encode({ v: 1, assignments: [], fence: { term: 1, index: 1 } }), 5)
    expect(v1.ok && v1.value.table.size).toBe(0)
  })

  it('fitCommand keeps the leading changes that fit one entry', () => {
    const big = cmd(...Array.from({ length: 5000 }, (_, i) => set('web', i, 'h'.repeat(200))))
    const fit = fitCommand(big)
    expect(fit.changes.length).toBeGreaterThan(100)
    expect(fit.changes.length).toBeLessThan(5000)
    expect(encodeCommand(fit).byteLength).toBeLessThan(256 * 1024)
    expect(fit.changes[0]).toEqual(big.changes[0])
    const small = cmd(set('web', 0, 'a'))
    expect(fitCommand(small)).toBe(small)
  })
})
