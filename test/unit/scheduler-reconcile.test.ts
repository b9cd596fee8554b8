import { describe, expect, it } from 'vitest'
import { applyCommand, reconcile, toCommand } from '../../src/scheduler/index.ts'
import { asg, GiB, input, node, nodes, obs, perHost, quiet, runningFor, settle, svc, T0 } from './scheduler-helpers.ts'

describe('replicated mode', () => {
  it('places 6 replicas 2/2/2 over 3 hosts, slots 0..5, generation 1', () => {
    const out = reconcile(input({ services: [svc('web', { replicas: 6 })], nodes: nodes(3) }))
    expect(out.place.map((p) => [p.slot, p.host, p.generation])).toEqual([
      [0, 'h1', 1], [1, 'h2', 1], [2, 'h3', 1], [3, 'h1', 1], [4, 'h2', 1], [5, 'h3', 1],
    ])
    expect(out.move).toEqual([])
    expect(out.stop).toEqual([])
  })

  it('scale up places only the new slots, on the least loaded hosts', () => {
    const assignments = [asg('web', 0, 'h1'), asg('web', 1, 'h1'), asg('web', 2, 'h2')]
    const out = reconcile(input({ services: [svc('web', { replicas: 5 })], nodes: nodes(3), assignments, observed: runningFor(assignments) }))
    expect(out.place.map((p) => [p.slot, p.host])).toEqual([[3, 'h3'], [4, 'h2']])
  })

  it('scale down stops the highest slots and unassigns them', () => {
    const assignments = [0, 1, 2, 3].map((i) => asg('web', i, `h${(i % 2) + 1}`))
    const out = reconcile(input({ services: [svc('web', { replicas: 2 })], nodes: nodes(2), assignments, observed: runningFor(assignments) }))
    expect(out.stop.map((s) => [s.slot, s.host, s.unassign, s.reason, s.containerId])).toEqual([
      [2, 'h1', true, 'scale-down', 'c-web-2-h1-1'], [3, 'h2', true, 'scale-down', 'c-web-3-h2-1'],
    ])
    expect(out.place).toEqual([])
  })

  it('a removed service has all its slots unassigned', () => {
    const assignments = [asg('old', 0, 'h1'), asg('old', 1, 'h2')]
    const out = reconcile(input({ nodes: nodes(2), assignments }))
    expect(out.stop.map((s) => [s.service, s.slot, s.reason])).toEqual([['old', 0, 'service-removed'], ['old', 1, 'service-removed']])
  })

  it('a converged state decides nothing', () => {
    const assignments = [asg('web', 0, 'h1'), asg('web', 1, 'h2')]
    expect(quiet(reconcile(input({ services: [svc('web', { replicas: 2 })], nodes: nodes(2), assignments, observed: runningFor(assignments) })))).toBe(true)
  })

  it('bin-pack fills one host before the next', () => {
    const spec = svc('w', { replicas: 3, resources: { reservations: { memoryBytes: GiB } } })
    const out = reconcile(input({ services: [spec], nodes: nodes(3), config: { strategy: 'binpack' } }))
    expect(out.place.map((p) => p.host)).toEqual(['h1', 'h1', 'h1'])
  })

  it('spread over a label first balances zones', () => {
    const hs = [node('h1', { labels: { zone: 'a' } }), node('h2', { labels: { zone: 'a' } }), node('h3', { labels: { zone: 'b' } })]
    const out = reconcile(input({ services: [svc('w', { replicas: 4, placement: { spread: ['zone'] } })], nodes: hs }))
    expect(out.place.map((p) => p.host)).toEqual(['h1', 'h3', 'h2', 'h3'])
  })

  it('is deterministic whatever the input order', () => {
    const a = input({ services: [svc('a', { replicas: 3 }), svc('b', { replicas: 2 })], nodes: nodes(4) })
    const b = { ...a, services: [...a.services].reverse(), nodes: [...a.nodes].reverse() }
    expect(reconcile(b)).toEqual(reconcile(a))
  })
})

describe('host loss', () => {
  const six = [0, 1, 2, 3, 4, 5].map((i) => asg('web', i, `h${(i % 3) + 1}`))
  const dead = (since: number) => [node('h1'), node('h2', { state: 'dead', since }), node('h3')]

  it('a dead host has its replicas moved at once, with a new generation', () => {
    const out = reconcile(input({ services: [svc('web', { replicas: 6 })], nodes: dead(T0 - 1), assignments: six, observed: runningFor(six) }))
    expect(out.move.map((m) => [m.slot, m.from, m.to, m.generation, m.reason])).toEqual([[1, 'h2', 'h1', 2, 'host-dead'], [4, 'h2', 'h3', 2, 'host-dead']])
    expect(out.stop).toEqual([]) // the dead host's copies are not listed while it cannot hear
  })

  it('onHostLoss wait keeps the replicas until the delay has passed', () => {
    const spec = svc('web', { replicas: 6, onHostLoss: { action: 'wait', afterMs: 30_000 } })
    const early = reconcile(input({ services: [spec], nodes: dead(T0 - 10_000), assignments: six }))
    expect(early.move).toEqual([])
    expect(early.pending.map((p) => [p.slot, p.kind, p.host])).toEqual([[1, 'waiting', 'h2'], [4, 'waiting', 'h2']])
    expect(early.explain.web).toBe('2 of 6 replicas waiting for lost host h2')
    const late = reconcile(input({ services: [spec], nodes: dead(T0 - 30_000), assignments: six }))
    expect(late.move).toHaveLength(2)
  })

  describe('a host that announced a graceful restart', () => {
    const spec = svc('web', { replicas: 6 })
    const restarting = (state: 'alive' | 'suspect' | 'dead', until: number, since = T0 - 5_000) =>
      [node('h1'), node('h2', { state, since, restartingUntil: until }), node('h3')]

    it.each([
      ['dead, restart grace not over: waits, explained with the end of the grace', 'dead', T0 + 25_000, 'wait'],
      ['dead, grace just over: moves', 'dead', T0, 'move'],
      ['dead, grace long over: moves', 'dead', T0 - 60_000, 'move'],
      ['alive with a grace still running: nothing to do', 'alive', T0 + 25_000, 'quiet'],
      ['suspect with a grace still running: nothing to do', 'suspect', T0 + 25_000, 'quiet'],
    ] as const)('%s', (_what, state, until, expected) => {
      const out = reconcile(input({ services: [spec], nodes: restarting(state, until), assignments: six, observed: runningFor(six) }))
      if (expected === 'wait') {
        expect(out.move).toEqual([])
        expect(out.pending.map((p) => [p.slot, p.kind, p.host])).toEqual([[1, 'waiting', 'h2'], [4, 'waiting', 'h2']])
        // T0 + 25 s = 2023-11-14T22:13:45Z
        expect(out.explain.web).toBe('2 of 6 replicas waiting for restarting host h2 (until 22:13:45 UTC)')
      } else if (expected === 'move') {
        expect(out.move.map((m) => [m.slot, m.from, m.reason])).toEqual([[1, 'h2', 'host-dead'], [4, 'h2', 'host-dead']])
        expect(out.explain).toEqual({})
      } else {
        expect(quiet(out)).toBe(true)
        expect(out.pending).toEqual([])
      }
    })

    it('onHostLoss wait longer than the grace still waits its own time; a shorter one waits for the grace', () => {
      const long = svc('web', { replicas: 6, onHostLoss: { action: 'wait', afterMs: 120_000 } })
      // The grace has run out 10 s ago; the host died 40 s ago: the service's own 2 min still hold.
      const after = reconcile(input({ services: [long], nodes: restarting('dead', T0 - 10_000, T0 - 40_000), assignments: six }))
      expect(after.move).toEqual([])
      expect(after.explain.web).toBe('2 of 6 replicas waiting for lost host h2')
      const expired = reconcile(input({ services: [long], nodes: restarting('dead', T0 - 10_000, T0 - 120_000), assignments: six }))
      expect(expired.move).toHaveLength(2)
      const short = svc('web', { replicas: 6, onHostLoss: { action: 'wait', afterMs: 5_000 } })
      const within = reconcile(input({ services: [short], nodes: restarting('dead', T0 + 20_000, T0 - 10_000), assignments: six }))
      expect(within.move).toEqual([])
      expect(within.explain.web).toMatch(/waiting for restarting host h2/)
    })

    it('names every restarting host with the end of its grace', () => {
      const hs = [node('h1'), node('h2', { state: 'dead', since: T0 - 5_000, restartingUntil: T0 + 1_000 }), node('h3', { state: 'dead', since: T0 - 5_000, restartingUntil: T0 + 3_600_000 })]
      const out = reconcile(input({ services: [spec], nodes: hs, assignments: six }))
      expect(out.move).toEqual([])
      expect(out.explain.web).toBe('4 of 6 replicas waiting for restarting host h2 (until 22:13:21 UTC), h3 (until 23:13:20 UTC)')
    })
  })

  it('a host that left or vanished from membership is replaced too', () => {
    const out = reconcile(input({ services: [svc('web', { replicas: 6 })], nodes: [node('h1'), node('h2', { state: 'left' })], assignments: six }))
    expect(out.move.map((m) => m.reason).sort()).toEqual(['host-left', 'host-left', 'host-unknown', 'host-unknown'])
    expect(out.move.every((m) => m.to === 'h1')).toBe(true)
  })

  it('a suspect host keeps its replicas', () => {
    const out = reconcile(input({ services: [svc('web', { replicas: 6 })], nodes: [node('h1'), node('h2', { state: 'suspect' }), node('h3')], assignments: six, observed: runningFor(six) }))
    expect(quiet(out)).toBe(true)
  })

  it('with nowhere to go, the lost replicas are pending and explained', () => {
    const spec = svc('web', { replicas: 2, placement: { maxPerNode: 1 } })
    const as = [asg('web', 0, 'h1'), asg('web', 1, 'h2')]
    const out = reconcile(input({ services: [spec], nodes: [node('h1'), node('h2', { state: 'dead' })], assignments: as }))
    expect(out.move).toEqual([])
    expect(out.explain.web).toBe('1 of 2 replicas pending: host not alive on h2; max 1 per node reached on h1')
  })

  it('a returning host has its stale copies stopped (not unassigned)', () => {
    const moved = six.map((a) => (a.host === 'h2' ? { ...a, host: a.slot === 1 ? 'h1' : 'h3', generation: 2 } : a))
    const observed = [...runningFor(moved), obs('web', 1, 'h2'), obs('web', 4, 'h2'), obs('web', 0, 'h2', 0, { state: 'stopped' })]
    const out = reconcile(input({ services: [svc('web', { replicas: 6 })], nodes: nodes(3), assignments: moved, observed }))
    expect(out.stop.map((s) => [s.slot, s.host, s.generation, s.unassign, s.reason])).toEqual([[1, 'h2', 1, false, 'stale'], [4, 'h2', 1, false, 'stale']])
    expect(out.place).toEqual([])
    expect(out.move).toEqual([])
    expect(toCommand(out)).toBeNull()
  })

  it('an old generation on the right host is stale too', () => {
    const a = [asg('web', 0, 'h1', 3)]
    const out = reconcile(input({ services: [svc('web', { replicas: 1 })], nodes: nodes(1), assignments: a, observed: [obs('web', 0, 'h1', 1), obs('web', 0, 'h1', 3)] }))
    expect(out.stop.map((s) => s.generation)).toEqual([1])
  })
})

describe('drain, constraints, failures, volumes', () => {
  it('a drained host has its replicas moved off; never placed on', () => {
    const as = [asg('web', 0, 'h1'), asg('web', 1, 'h2')]
    const out = reconcile(input({ services: [svc('web', { replicas: 3 })], nodes: [node('h1', { drained: true }), node('h2'), node('h3')], assignments: as, observed: runningFor(as) }))
    expect(out.move.map((m) => [m.slot, m.from, m.to, m.reason])).toEqual([[0, 'h1', 'h3', 'drained']])
    expect(out.place.map((p) => p.host)).toEqual(['h2'])
  })

  it('a drained sole host keeps its replica and says why', () => {
    const as = [asg('web', 0, 'h1')]
    const out = reconcile(input({ services: [svc('web', { replicas: 1 })], nodes: [node('h1', { drained: true })], assignments: as, observed: runningFor(as) }))
    expect(out.move).toEqual([])
    expect(out.explain.web).toBe('1 of 1 replicas cannot move off h1: host drained on h1')
  })

  it('a host that no longer matches the constraints loses its replica', () => {
    const spec = svc('w', { replicas: 1, placement: { constraints: [{ attribute: 'node.labels', label: 'ssd', op: 'in', values: ['1'] }] } })
    const out = reconcile(input({ services: [spec], nodes: [node('h1'), node('h2', { labels: { ssd: '1' } })], assignments: [asg('w', 0, 'h1')] }))
    expect(out.move.map((m) => [m.to, m.reason])).toEqual([['h2', 'constraint']])
  })

  it('repeated failure within the window moves the replica to another host', () => {
    const a = [asg('w', 0, 'h1')]
    const failing = obs('w', 0, 'h1', 1, { restarts: 7, streak: 5, streakSince: T0 - 60_000 })
    const out = reconcile(input({ services: [svc('w', { replicas: 1 })], nodes: nodes(2), assignments: a, observed: [failing] }))
    expect(out.move.map((m) => [m.from, m.to, m.reason])).toEqual([['h1', 'h2', 'failing']])
    const slow = obs('w', 0, 'h1', 1, { streak: 5, streakSince: T0 - 3_600_000 })
    expect(reconcile(input({ services: [svc('w', { replicas: 1 })], nodes: nodes(2), assignments: a, observed: [slow] })).move).toEqual([])
    const few = obs('w', 0, 'h1', 1, { streak: 4, streakSince: T0 - 1 })
    expect(reconcile(input({ services: [svc('w', { replicas: 1 })], nodes: nodes(2), assignments: a, observed: [few] })).move).toEqual([])
  })

  it('a failed replica (restart policy exhausted) is moved unless the condition is none', () => {
    const a = [asg('w', 0, 'h1')]
    const failed = [obs('w', 0, 'h1', 1, { state: 'failed', exitCode: 1 })]
    expect(reconcile(input({ services: [svc('w', { replicas: 1 })], nodes: nodes(2), assignments: a, observed: failed })).move).toHaveLength(1)
    const none = svc('w', { replicas: 1, restart: { condition: 'none' } })
    expect(reconcile(input({ services: [none], nodes: nodes(2), assignments: a, observed: failed })).move).toEqual([])
  })

  it('a named local volume keeps a re-placed slot on the host holding its data', () => {
    const spec = svc('db', { replicas: 1, resources: { reservations: { memoryBytes: GiB } }, mounts: [{ type: 'volume', source: 'data', target: '/var/lib/db' }] })
    const old = [obs('db', 0, 'h3', 4, { state: 'stopped' })]
    const out = reconcile(input({ services: [spec], nodes: nodes(3), observed: old }))
    expect(out.place.map((p) => [p.host, p.generation])).toEqual([['h3', 5]])
    const full = reconcile(input({ services: [spec, svc('x', { replicas: 1, resources: { reservations: { memoryBytes: 8 * GiB } } })], nodes: nodes(3), observed: old, assignments: [asg('x', 0, 'h3')] }))
    expect(full.place.filter((p) => p.service === 'db')).toEqual([])
    expect(full.explain.db).toBe('1 of 1 replicas pending: volume data is on h3, not on h1, h2; insufficient memory on h3')
  })
})

describe('global mode', () => {
  const gpu = [{ attribute: 'node.labels' as const, label: 'gpu', op: 'in' as const, values: ['yes'] }]
  const hs = [node('h1', { labels: { gpu: 'yes' } }), node('h2'), node('h3', { labels: { gpu: 'yes' } }), node('h4', { labels: { gpu: 'yes' }, state: 'dead' })]

  it('one replica per matching alive host, lowest free slots in host order', () => {
    const out = reconcile(input({ services: [svc('agent', { mode: 'global', placement: { constraints: gpu } })], nodes: hs }))
    expect(out.place.map((p) => [p.slot, p.host])).toEqual([[0, 'h1'], [1, 'h3']])
  })

  it('keeps a dead host slot, drops a drained or non-matching one, fills a new host', () => {
    const spec = svc('agent', { mode: 'global', placement: { constraints: gpu } })
    const as = [asg('agent', 0, 'h1'), asg('agent', 1, 'h2'), asg('agent', 2, 'h4')]
    const drained = hs.map((h) => (h.id === 'h1' ? { ...h, drained: true } : h))
    const out = reconcile(input({ services: [spec], nodes: drained, assignments: as, observed: runningFor(as) }))
    expect(out.stop.map((s) => [s.slot, s.host, s.reason])).toEqual([[0, 'h1', 'not-eligible'], [1, 'h2', 'not-eligible']])
    expect(out.place.map((p) => [p.slot, p.host])).toEqual([[0, 'h3']])
  })

  it('a host that cannot take it is explained', () => {
    const spec = svc('agent', { mode: 'global', ports: [{ target: 9100, published: 9100 }] })
    const out = reconcile(input({ services: [spec, svc('other', { replicas: 1, ports: [{ target: 1, published: 9100 }] })], nodes: nodes(2), assignments: [asg('other', 0, 'h1')] }))
    expect(out.place.filter((p) => p.service === 'agent').map((p) => p.host)).toEqual(['h2'])
    expect(out.explain.agent).toBe('1 of 2 replicas pending: port 9100 taken on h1')
  })
})

describe('rebalance', () => {
  it('moves at most one replica per round toward a joined host, then settles evenly', () => {
    const spec = svc('web', { replicas: 6, rebalance: true })
    const as = [0, 1, 2, 3, 4, 5].map((i) => asg('web', i, `h${(i % 2) + 1}`))
    const once = reconcile(input({ services: [spec], nodes: nodes(3), assignments: as, observed: runningFor(as) }))
    expect(once.move.map((m) => [m.slot, m.from, m.to, m.reason])).toEqual([[4, 'h1', 'h3', 'rebalance']])
    const end = settle(input({ services: [spec], nodes: nodes(3), assignments: as, observed: runningFor(as) }))
    expect(end.quiet).toBe(true)
    expect(perHost(end.state.assignments, 'web')).toEqual({ h1: 2, h2: 2, h3: 2 })
  })

  it('without rebalance nothing moves to a joined host', () => {
    const as = [0, 1, 2, 3].map((i) => asg('web', i, `h${(i % 2) + 1}`))
    expect(quiet(reconcile(input({ services: [svc('web', { replicas: 4 })], nodes: nodes(3), assignments: as, observed: runningFor(as) })))).toBe(true)
  })
})

describe('commit', () => {
  it('a delete of an older generation does not undo a newer assignment', () => {
    const now = [asg('w', 0, 'h2', 3)]
    const next = applyCommand(now, { kind: 'placements', changes: [{ service: 'w', slot: 0, host: null, generation: 2, revision: 0 }] }, { term: 2, index: 9 })
    expect(next).toEqual(now)
  })
  it('applied decisions carry the fencing position', () => {
    const out = reconcile(input({ services: [svc('w', { replicas: 1 })], nodes: nodes(1) }))
    const cmd = toCommand(out)
    expect(cmd?.changes).toEqual([{ service: 'w', slot: 0, host: 'h1', generation: 1, revision: 0 }])
    expect(applyCommand([], cmd!, { term: 4, index: 17 })).toEqual([{ service: 'w', slot: 0, host: 'h1', generation: 1, revision: 0, term: 4, index: 17 }])
  })
})
