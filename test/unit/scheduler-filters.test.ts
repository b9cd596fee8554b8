import { describe, expect, it } from 'vitest'
import { askOf, Cluster } from '../../src/scheduler/cluster.ts'
import { DYNAMIC_FILTERS, firstRejection, formatRejections, STATIC_FILTERS, type Rejections } from '../../src/scheduler/filters.ts'
import { reconcile } from '../../src/scheduler/index.ts'
import { canAdvance, isActive } from '../../src/scheduler/states.ts'
import type { ReplicaState } from '../../src/scheduler/types.ts'
import { asg, GiB, input, node, nodes, svc } from './scheduler-helpers.ts'

const zone = (op: 'in' | 'notIn', ...values: string[]) => ({ attribute: 'node.labels' as const, label: 'zone', op, values })

describe('filters, one host at a time', () => {
  const web = svc('web', { replicas: 3, ports: [{ target: 80, published: 80 }], resources: { reservations: { memoryBytes: 2 * GiB, milliCpu: 500 } } })
  const cases: { name: string; host: ReturnType<typeof node>; spec?: ReturnType<typeof svc>; before?: number; want: string | null }[] = [
    { name: 'fits', host: node('h1'), want: null },
    { name: 'dead host', host: node('h1', { state: 'dead' }), want: 'host not alive' },
    { name: 'suspect host', host: node('h1', { state: 'suspect' }), want: 'host not alive' },
    { name: 'drained host', host: node('h1', { drained: true }), want: 'host drained' },
    { name: 'in: label matches', host: node('h1', { labels: { zone: 'a' } }), spec: svc('x', { placement: { constraints: [zone('in', 'a', 'b')] } }), want: null },
    { name: 'in: label missing', host: node('h1'), spec: svc('x', { placement: { constraints: [zone('in', 'a')] } }), want: 'constraint node.labels.zone == a not met' },
    { name: 'notIn: label missing matches', host: node('h1'), spec: svc('x', { placement: { constraints: [zone('notIn', 'a')] } }), want: null },
    { name: 'notIn: label equal', host: node('h1', { labels: { zone: 'a' } }), spec: svc('x', { placement: { constraints: [zone('notIn', 'a', 'b')] } }), want: 'constraint node.labels.zone not in (a, b) not met' },
    { name: 'hostname', host: node('h1', { name: 'pi' }), spec: svc('x', { placement: { constraints: [{ attribute: 'node.hostname', label: null, op: 'in', values: ['nuc'] }] } }), want: 'constraint node.hostname == nuc not met' },
    { name: 'memory full', host: node('h1', { capacity: { milliCpu: 4000, memoryBytes: 3 * GiB } }), spec: svc('x', { resources: { reservations: { memoryBytes: 2 * GiB } } }), before: 1, want: 'insufficient memory' },
    { name: 'cpu full', host: node('h1', { capacity: { milliCpu: 900, memoryBytes: null } }), spec: svc('x', { resources: { reservations: { milliCpu: 500 } } }), before: 1, want: 'insufficient cpu' },
    { name: 'unknown capacity fits', host: node('h1', { capacity: { milliCpu: null, memoryBytes: null } }), spec: svc('x', { resources: { reservations: { milliCpu: 500, memoryBytes: GiB } } }), before: 100, want: null },
    { name: 'port taken', host: node('h1'), spec: web, before: 1, want: 'port 80 taken' },
    { name: 'udp port taken', host: node('h1'), spec: svc('dns', { ports: [{ target: 53, published: 53, protocol: 'udp', mode: 'host' }] }), before: 1, want: 'port 53/udp taken' },
    { name: 'unpublished port never conflicts', host: node('h1'), spec: svc('x', { ports: [{ target: 80 }] }), before: 5, want: null },
    { name: 'max per node', host: node('h1'), spec: svc('x', { placement: { maxPerNode: 2 } }), before: 2, want: 'max 2 per node reached' },
    { name: 'under max per node', host: node('h1'), spec: svc('x', { placement: { maxPerNode: 2 } }), before: 1, want: null },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const spec = c.spec ?? svc('x')
      const ask = askOf(spec)
      const cluster = new Cluster([c.host])
      for (let i = 0; i < (c.before ?? 0); i++) cluster.add(ask, c.host.id)
      const h = cluster.hosts[0]!
      const ctx = { cluster, pin: null }
      const why = firstRejection(STATIC_FILTERS, h, ask, ctx) ?? firstRejection(DYNAMIC_FILTERS, h, ask, ctx)
      expect(why).toBe(c.want)
    })
  }

  it('a port taken by another service blocks this one', () => {
    const a = askOf(svc('a', { ports: [{ target: 8080, published: 80 }] }))
    const b = askOf(svc('b', { ports: [{ target: 80, published: 80, mode: 'host' }] }))
    const cluster = new Cluster([node('h1')])
    cluster.add(a, 'h1')
    expect(firstRejection(DYNAMIC_FILTERS, cluster.hosts[0]!, b, { cluster, pin: null })).toBe('port 80 taken')
    cluster.remove(a, 'h1')
    expect(firstRejection(DYNAMIC_FILTERS, cluster.hosts[0]!, b, { cluster, pin: null })).toBe(null)
  })
})

describe('explain strings', () => {
  it('orders reasons by host count, names hosts sorted', () => {
    const rej: Rejections = new Map([['port 80 taken', ['h1']], ['insufficient memory', ['h3', 'h2']]])
    expect(formatRejections(rej)).toBe('insufficient memory on h2, h3; port 80 taken on h1')
  })
  it('summarises more than five hosts', () => {
    expect(formatRejections(new Map([['host drained', ['a', 'b', 'c', 'd', 'e', 'f']]]))).toBe('host drained on 6 hosts')
    expect(formatRejections(new Map())).toBe('no hosts')
  })

  it('a published port allows one replica per host, and a port held by another service blocks a host', () => {
    const web = svc('web', { replicas: 6, ports: [{ target: 80, published: 80 }] })
    const proxy = svc('proxy', { replicas: 1, ports: [{ target: 8080, published: 80 }] })
    const hs = [node('id1', { name: 'h1' }), node('id2', { name: 'h2' }), node('id3', { name: 'h3' }), node('id4', { name: 'h4' })]
    const out = reconcile(input({ services: [web, proxy], nodes: hs, assignments: [asg('proxy', 0, 'id1')] }))
    expect(out.place.map((p) => p.host)).toEqual(['id2', 'id3', 'id4'])
    expect(out.explain.web).toBe('3 of 6 replicas pending: port 80 taken on h1, h2, h3, h4')
  })

  it('the issue example: memory and port reasons together, host names not ids', () => {
    const web = svc('web', { replicas: 6, resources: { reservations: { memoryBytes: 3 * GiB } }, ports: [{ target: 80, published: 80 }] })
    const hs = [node('id1', { name: 'h1' }), node('id2', { name: 'h2', capacity: { milliCpu: null, memoryBytes: 2 * GiB } }), node('id3', { name: 'h3', capacity: { milliCpu: null, memoryBytes: 2 * GiB } })]
    const out = reconcile(input({ services: [web], nodes: hs, assignments: [asg('web', 0, 'id1')] }))
    expect(out.place).toHaveLength(0)
    expect(out.explain.web).toBe('5 of 6 replicas pending: insufficient memory on h2, h3; port 80 taken on h1')
  })

  it('an impossible constraint is explained', () => {
    const spec = svc('gpu', { replicas: 2, placement: { constraints: [{ attribute: 'node.labels', label: 'gpu', op: 'in', values: ['yes'] }] } })
    const out = reconcile(input({ services: [spec], nodes: nodes(3) }))
    expect(out.place).toEqual([])
    expect(out.pending).toHaveLength(2)
    expect(out.explain.gpu).toBe('2 of 2 replicas pending: constraint node.labels.gpu == yes not met on h1, h2, h3')
  })

  it('dead and drained hosts appear in the explanation', () => {
    const spec = svc('w', { replicas: 1 })
    const out = reconcile(input({ services: [spec], nodes: [node('h1', { state: 'dead' }), node('h2', { drained: true })] }))
    expect(out.explain.w).toBe('1 of 1 replicas pending: host drained on h2; host not alive on h1')
  })

  it('no explanation when everything is placed', () => {
    expect(reconcile(input({ services: [svc('w', { replicas: 2 })], nodes: nodes(2) })).explain).toEqual({})
  })
})

describe('replica states only move forward', () => {
  const order: ReplicaState[] = ['assigned', 'preparing', 'starting', 'running', 'stopping']
  it('forward and repeated moves are allowed, backward ones are not', () => {
    for (let i = 0; i < order.length; i++) {
      for (let j = 0; j < order.length; j++) expect(canAdvance(order[i]!, order[j]!)).toBe(j >= i)
    }
  })
  it('terminal states are final; any live state may become orphaned', () => {
    for (const t of ['stopped', 'failed', 'orphaned'] as const) {
      expect(canAdvance(t, 'running')).toBe(false)
      expect(canAdvance(t, t)).toBe(true)
      expect(isActive(t)).toBe(false)
    }
    expect(canAdvance('running', 'orphaned')).toBe(true)
    expect(canAdvance('stopping', 'failed')).toBe(true)
    expect(canAdvance('running', 'starting')).toBe(false)
  })
})
