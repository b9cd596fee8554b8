// Table tests of the agent's pure step: adopt, start, restart with backoff and limits, stale copies,
// fencing, and static stability with unknown assignments.
import { describe, expect, it } from 'vitest'
import { backoffMs, emptyBook, GENERATION_LABEL, step, type SlotBook, type StepInput } from '../../src/agent/step.ts'
import { serviceSpecSchema, type ServiceSpec, type ServiceSpecInput } from '../../src/model/index.ts'
import { LABELS } from '../../src/runtime/labels.ts'
import type { ContainerInfo } from '../../src/runtime/types.ts'
import type { Assignment } from '../../src/scheduler/types.ts'

const T0 = 1_700_000_000_000
const svc = (fields: Partial<ServiceSpecInput> = {}): ServiceSpec => serviceSpecSchema.parse({ stack: 's', name: 'web', image: 'local/busybox:1', ...fields })
const asg = (fields: Partial<Assignment> = {}): Assignment => ({ service: 'web', slot: 0, host: 'h1', revision: 0, generation: 1, term: 1, index: 10, ...fields })

function ctr(id: string, fields: Partial<ContainerInfo> = {}, label: { generation?: number; revision?: number; host?: string; slot?: number } = {}): ContainerInfo {
  return {
    id, name: `skein-web.0-${id}`, image: 'local/busybox:1', state: 'running', exitCode: null, startedAt: T0 - 60_000, finishedAt: null, health: 'none',
    restartCount: 0, oomKilled: false, ports: [], ip: '127.0.0.1',
    labels: {
      [LABELS.cluster]: 'c', [LABELS.service]: 'web', [LABELS.slot]: String(label.slot ?? 0), [LABELS.host]: label.host ?? 'h1',
      [LABELS.revision]: String(label.revision ?? 0), [LABELS.term]: '1', [LABELS.index]: '10', [GENERATION_LABEL]: String(label.generation ?? 1),
    },
    ...fields,
  }
}

const input = (fields: Partial<StepInput> = {}): StepInput => ({
  cluster: 'c', host: 'h1', service: 'web', slot: 0, assignment: asg(), containers: [], spec: svc(), book: null, now: T0, ...fields,
})
const kinds = (i: StepInput) => step(i).actions.map((a) => a.kind + ('id' in a ? ` ${a.id}` : ''))

describe('agent step', () => {
  it('creates a container for a new assignment, with the identity of the decision', () => {
    const out = step(input())
    expect(out.actions).toEqual([{ kind: 'create', service: 'web', slot: 0, generation: 1, image: 'local/busybox:1', identity: { cluster: 'c', service: 'web', slot: '0', revision: 0, host: 'h1', term: 1, index: 10 } }])
    expect(out.observed).toMatchObject([{ state: 'preparing', generation: 1, host: 'h1', containerId: null }])
  })

  it('stops with the service\'s grace period, or the agent\'s default when the spec is unknown', () => {
    const moved = { assignment: asg({ host: 'h2', generation: 2 }), containers: [ctr('a')] }
    const graceOf = (i: StepInput) => step(i).actions.flatMap((a) => (a.kind === 'stop' ? [a.graceMs] : []))
    expect(graceOf(input({ ...moved, spec: svc({ stopGracePeriodMs: 45_000 }) }))).toEqual([45_000])
    expect(graceOf(input({ ...moved, spec: null, config: { stopGraceMs: 3000 } }))).toEqual([3000])
  })

  it('adopts a running matching container and never restarts it', () => {
    const c = ctr('a')
    const out = step(input({ containers: [c] }))
    expect(out.actions.map((a) => a.kind)).toEqual(['adopt'])
    expect(out.observed).toMatchObject([{ state: 'running', containerId: 'a', startedAt: c.startedAt, restarts: 0 }])
    // Once adopted, nothing more.
    expect(step(input({ containers: [c], book: out.book })).actions).toEqual([])
  })

  const table: [string, Partial<StepInput>, string[]][] = [
    ['unknown assignments: nothing, even with stale-looking copies', { assignment: 'unknown', containers: [ctr('a'), ctr('b', {}, { generation: 9 })] }, []],
    ['unknown assignments: a crashed copy is not restarted', { assignment: 'unknown', containers: [ctr('a', { state: 'exited', exitCode: 1, finishedAt: T0 })] }, []],
    ['unknown, last known here: an exited copy (a reboot) is started again', { assignment: 'unknown', lastKnown: asg(), containers: [ctr('a', { state: 'exited', exitCode: 137, finishedAt: T0 - 10_000 })] }, ['start a']],
    ['unknown, last known here: a created copy is started', { assignment: 'unknown', lastKnown: asg(), containers: [ctr('a', { state: 'created', startedAt: null })] }, ['start a']],
    ['unknown, last known here: nothing created when the copy is gone', { assignment: 'unknown', lastKnown: asg(), containers: [] }, []],
    ['unknown, last known here: other copies are neither stopped nor removed', { assignment: 'unknown', lastKnown: asg(), containers: [ctr('a', { state: 'exited', exitCode: 137, finishedAt: T0 - 10_000 }), ctr('b', {}, { generation: 9 })] }, ['start a']],
    ['unknown, last known elsewhere: nothing', { assignment: 'unknown', lastKnown: asg({ host: 'h2' }), containers: [ctr('a', { state: 'exited', exitCode: 137, finishedAt: T0 - 10_000 })] }, []],
    ['unknown, last known here but another generation: nothing', { assignment: 'unknown', lastKnown: asg({ generation: 2 }), containers: [ctr('a', { state: 'exited', exitCode: 137, finishedAt: T0 - 10_000 })] }, []],
    ['unknown, last known here, restart condition none: not started', { assignment: 'unknown', lastKnown: asg(), spec: svc({ restart: { condition: 'none' } }), containers: [ctr('a', { state: 'exited', exitCode: 137, finishedAt: T0 - 10_000 })] }, []],
    ['unknown, last known here, unhealthy: not stopped', { assignment: 'unknown', lastKnown: asg(), containers: [ctr('a', { health: 'unhealthy' })] }, ['adopt a']],
    ['slot unassigned: stop and remove', { assignment: null, containers: [ctr('a')] }, ['stop a', 'remove a']],
    ['slot moved to another host: stop and remove', { assignment: asg({ host: 'h2', generation: 2 }), containers: [ctr('a')] }, ['stop a', 'remove a']],
    ['older generation on this host: replaced', { assignment: asg({ generation: 3 }), containers: [ctr('a', {}, { generation: 2 })] }, ['stop a', 'remove a', 'create']],
    ['older revision: replaced', { assignment: asg({ revision: 2 }), containers: [ctr('a', {}, { revision: 1 })] }, ['stop a', 'remove a', 'create']],
    ['an exited stale copy is only removed', { assignment: null, containers: [ctr('a', { state: 'exited', exitCode: 0, finishedAt: T0 })] }, ['remove a']],
    ['duplicate copies: the running one is kept', { containers: [ctr('a', { state: 'exited', exitCode: 0, finishedAt: T0 }), ctr('b')] }, ['remove a', 'adopt b']],
    ['a created container is started', { containers: [ctr('a', { state: 'created', startedAt: null })] }, ['start a']],
    ['no spec known: nothing is created', { spec: null }, []],
    ['a container of another slot label is not judged here (the shell groups by slot)', { containers: [] }, ['create']],
  ]
  it.each(table)('%s', (_name, fields, want) => {
    expect(kinds(input(fields))).toEqual(want)
  })

  it('reports stale copies as orphaned', () => {
    const out = step(input({ assignment: asg({ host: 'h2', generation: 2 }), containers: [ctr('a')] }))
    expect(out.observed).toMatchObject([{ state: 'orphaned', generation: 1, containerId: 'a' }])
  })

  it('fences: an assignment older than the newest applied for the slot is ignored', () => {
    const newer = asg({ host: 'h2', generation: 2, term: 3, index: 50 })
    const book: SlotBook = { ...emptyBook(), applied: newer }
    // A replayed older decision that put the slot here: not acted on.
    expect(kinds(input({ assignment: asg({ term: 2, index: 90 }), book }))).toEqual([])
    expect(kinds(input({ assignment: asg({ term: 3, index: 49 }), book, containers: [ctr('a')] }))).toEqual(['stop a', 'remove a'])
    // A newer one is.
    expect(kinds(input({ assignment: asg({ generation: 3, term: 3, index: 51 }), book }))).toEqual(['create'])
  })

  describe('restart policy', () => {
    const exited = (code: number, at: number, id = 'a') => ctr(id, { state: 'exited', exitCode: code, finishedAt: at, startedAt: at - 1000 })
    const run = (policy: ServiceSpecInput['restart'], code: number) => {
      const spec = svc({ restart: policy })
      // Adopt first, then the container exits.
      let book = step(input({ spec, containers: [ctr('a')] })).book
      const out = step(input({ spec, containers: [exited(code, T0)], book, now: T0 }))
      book = out.book
      return { out, book, spec }
    }

    it('any: restarts after the delay, doubling with the streak, reset after a stable run', () => {
      const { out, book, spec } = run({ condition: 'any', delayMs: 1000 }, 137)
      expect(out.actions).toEqual([])
      expect(out.observed[0]).toMatchObject({ state: 'running', exitCode: 137, restarts: 0, streakSince: T0 })
      expect(step(input({ spec, containers: [exited(137, T0)], book, now: T0 + 999 })).actions).toEqual([])
      const r1 = step(input({ spec, containers: [exited(137, T0)], book, now: T0 + 1000 }))
      expect(r1.actions).toMatchObject([{ kind: 'start', id: 'a', restart: true }])
      expect(r1.observed[0]).toMatchObject({ state: 'running', restarts: 1, streak: 1 })
      // Second exit: 2 s.
      const e2 = T0 + 1500
      const w = step(input({ spec, containers: [exited(1, e2)], book: r1.book, now: e2 }))
      expect(w.actions).toEqual([])
      expect(step(input({ spec, containers: [exited(1, e2)], book: w.book, now: e2 + 1999 })).actions).toEqual([])
      const r2 = step(input({ spec, containers: [exited(1, e2)], book: w.book, now: e2 + 2000 }))
      expect(r2.observed[0]).toMatchObject({ restarts: 2, streak: 2, streakSince: T0 })
      // Runs stably: the streak resets, restarts stay.
      const stable = step(input({ spec, containers: [ctr('a', { startedAt: e2 + 2000 })], book: r2.book, now: e2 + 2000 + 10_000 }))
      expect(stable.observed[0]).toMatchObject({ restarts: 2, streak: 0, streakSince: null })
    })

    it('on-failure: exit 0 is terminal (stopped), a failure restarts', () => {
      expect(run({ condition: 'on-failure', delayMs: 0 }, 0).out.observed[0]).toMatchObject({ state: 'stopped', exitCode: 0 })
      const { out, book, spec } = run({ condition: 'on-failure', delayMs: 0 }, 2)
      expect(out.actions).toMatchObject([{ kind: 'start', restart: true }])
      expect(step(input({ spec, containers: [exited(2, T0)], book, now: T0 + 5 })).actions).toEqual([]) // same exit: handled once
    })

    it('none: never restarts; a failure is failed', () => {
      const { out } = run({ condition: 'none' }, 3)
      expect(out.actions).toEqual([])
      expect(out.observed[0]).toMatchObject({ state: 'failed', exitCode: 3 })
    })

    it('maxAttempts: gives up (failed) after that many restarts', () => {
      const spec = svc({ restart: { condition: 'any', delayMs: 0, maxAttempts: 2 } })
      let book = step(input({ spec, containers: [ctr('a')] })).book
      const states: string[] = []
      for (let n = 1; n <= 3; n++) {
        const out = step(input({ spec, containers: [exited(1, T0 + n * 10)], book, now: T0 + n * 10 }))
        book = out.book
        states.push(`${out.actions.length}:${out.observed[0]?.state}`)
      }
      expect(states).toEqual(['1:running', '1:running', '0:failed'])
      // Terminal: a later round does nothing.
      expect(step(input({ spec, containers: [exited(1, T0 + 30)], book, now: T0 + 99_999 })).actions).toEqual([])
    })

    it('window: only restarts inside the window count towards maxAttempts', () => {
      const spec = svc({ restart: { condition: 'any', delayMs: 0, maxAttempts: 1, windowMs: 1000 } })
      let book: SlotBook | null = step(input({ spec, containers: [ctr('a')] })).book
      book = step(input({ spec, containers: [exited(1, T0)], book, now: T0 })).book // restart 1 at T0
      const late = step(input({ spec, containers: [exited(1, T0 + 5000)], book, now: T0 + 5000 }))
      expect(late.actions).toMatchObject([{ kind: 'start' }])
      const soon = step(input({ spec, containers: [exited(1, T0 + 5100)], book: late.book, now: T0 + 5100 }))
      expect(soon.observed[0]?.state).toBe('failed')
    })

    it('backoff is capped', () => {
      expect(backoffMs(1000, 0, 60_000)).toBe(1000)
      expect(backoffMs(1000, 3, 60_000)).toBe(8000)
      expect(backoffMs(1000, 100, 60_000)).toBe(60_000)
    })
  })

  describe('unhealthy replicas (the engine\'s check or the agent\'s probe)', () => {
    const sick = () => ctr('a', { health: 'unhealthy' })
    const gone = (at: number, code = 137) => ctr('a', { state: 'exited', exitCode: code, finishedAt: at, health: 'unhealthy' })
    const adopted = (spec: ServiceSpec) => step(input({ spec, containers: [ctr('a')] })).book

    it('stops it; its exit is a failure (even exit 0), restarted through the policy after the backoff', () => {
      const spec = svc({ restart: { condition: 'on-failure', delayMs: 1000 } })
      const s1 = step(input({ spec, containers: [sick()], book: adopted(spec), now: T0 }))
      expect(s1.actions).toEqual([{ kind: 'stop', service: 'web', slot: 0, generation: 1, id: 'a', graceMs: 10_000, reason: 'unhealthy; restart policy on-failure' }])
      expect(s1.observed[0]).toMatchObject({ state: 'running', health: 'unhealthy', restarts: 0 })
      // A graceful stop exits 0: still a failure, so on-failure restarts it, after the delay.
      const w = step(input({ spec, containers: [gone(T0 + 10, 0)], book: s1.book, now: T0 + 10 }))
      expect(w.actions).toEqual([])
      expect(w.observed[0]).toMatchObject({ state: 'running', health: 'none', exitCode: 0, streakSince: T0 + 10 })
      expect(step(input({ spec, containers: [gone(T0 + 10, 0)], book: w.book, now: T0 + 1009 })).actions).toEqual([])
      const r = step(input({ spec, containers: [gone(T0 + 10, 0)], book: w.book, now: T0 + 1010 }))
      expect(r.actions).toMatchObject([{ kind: 'start', id: 'a', restart: true, reason: 'stopped for being unhealthy; restart 1 (policy on-failure)' }])
      expect(r.observed[0]).toMatchObject({ state: 'running', restarts: 1, streak: 1 })
      // The same container exiting 0 on its own later is a clean exit again.
      const later = ctr('a', { state: 'exited', exitCode: 0, finishedAt: T0 + 90_000, startedAt: T0 + 1010 })
      expect(step(input({ spec, containers: [later], book: r.book, now: T0 + 90_000 })).observed[0]?.state).toBe('stopped')
    })

    it('condition none: it keeps running and is reported unhealthy', () => {
      const spec = svc({ restart: { condition: 'none' } })
      const out = step(input({ spec, containers: [sick()], book: adopted(spec) }))
      expect(out.actions).toEqual([])
      expect(out.observed[0]).toMatchObject({ state: 'running', health: 'unhealthy' })
    })

    it('maxAttempts: an unhealthy replica fails after that many restarts', () => {
      const spec = svc({ restart: { condition: 'any', delayMs: 0, maxAttempts: 1 } })
      let book = adopted(spec)
      book = step(input({ spec, containers: [sick()], book })).book
      const r1 = step(input({ spec, containers: [gone(T0)], book, now: T0 }))
      expect(r1.actions).toMatchObject([{ kind: 'start', restart: true }])
      const again = ctr('a', { health: 'unhealthy', startedAt: T0 + 1 })
      book = step(input({ spec, containers: [again], book: r1.book, now: T0 + 5 })).book
      const end = step(input({ spec, containers: [{ ...again, state: 'exited', exitCode: 137, finishedAt: T0 + 6 }], book, now: T0 + 6 }))
      expect(end.actions).toEqual([])
      expect(end.observed[0]).toMatchObject({ state: 'failed', restarts: 1 })
      expect(end.book?.failure).toBe('stopped for being unhealthy after 1 restarts (maxAttempts 1)')
    })

    it('an unhealthy container does not count as a stable run (the streak stays)', () => {
      const spec = svc({ restart: { condition: 'any', delayMs: 1000 } })
      const book: SlotBook = { ...emptyBook(), applied: asg(), generation: 1, containerId: 'a', state: 'running', streak: 3, streakSince: T0 - 99_000 }
      expect(step(input({ spec, containers: [sick()], book })).observed[0]).toMatchObject({ streak: 3 })
      expect(step(input({ spec, containers: [ctr('a', { health: 'healthy' })], book })).observed[0]).toMatchObject({ streak: 0 })
    })

    it('unknown assignments or no spec: left alone', () => {
      expect(kinds(input({ assignment: 'unknown', containers: [sick()] }))).toEqual([])
      expect(kinds(input({ spec: null, containers: [sick()], book: adopted(svc()) }))).toEqual([])
    })
  })

  it('a new generation starts a new record; states never move backwards', () => {
    const book = step(input({ containers: [ctr('a')] })).book
    const out = step(input({ assignment: asg({ generation: 2, index: 11 }), containers: [ctr('a')], book }))
    expect(out.observed.find((r) => r.generation === 2)).toMatchObject({ state: 'preparing', restarts: 0 })
    // Running then seen as created again (odd engine state): still reported running.
    const b2 = step(input({ containers: [ctr('a')] })).book
    expect(step(input({ containers: [ctr('a', { state: 'created' })], book: b2 })).observed[0]?.state).toBe('running')
  })

  it('forgets a slot with no assignment and no containers', () => {
    expect(step(input({ assignment: null })).book).toBeNull()
  })
})
