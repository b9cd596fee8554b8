import { describe, expect, it } from 'vitest'
import { canonicalService } from '../../src/model/canonical.ts'
import { diffServices, planIsEmpty, planStack } from '../../src/model/plan.ts'
import { displayPath, formatValue, renderPlan } from '../../src/model/plan-render.ts'
import { parseStackText } from '../../src/model/stack.ts'
import type { ServiceSpec, ServiceSpecInput, Stack } from '../../src/model/spec.ts'

const spec = (input: Omit<ServiceSpecInput, 'stack'> & { stack?: string }): ServiceSpec => canonicalService({ stack: 'media', ...input })
const stackOf = (services: ServiceSpec[], name = 'media'): Stack => ({ name, services, volumes: {}, configs: {}, secrets: {} })

function parse(text: string): Stack {
  const r = parseStackText(text, { file: 'stack.yaml' })
  if (!r.ok) throw new Error(r.errors.map((e) => e.text).join('\n'))
  return r.stack
}

describe('planStack', () => {
  const web = spec({ name: 'web', image: 'nginx:1.27', replicas: 3 })
  const db = spec({ name: 'db', image: 'postgres:16' })
  const old = spec({ name: 'old', image: 'busybox' })
  const other = spec({ name: 'blog', image: 'wordpress', stack: 'blog' })

  it('sorts services into create, change, unchanged, and keeps absent ones without prune', () => {
    const plan = planStack([web, db, old, other], stackOf([{ ...web, replicas: 5 }, db, spec({ name: 'cache', image: 'redis:7' })]))
    expect(plan.create.map((s) => s.name)).toEqual(['cache'])
    expect(plan.change).toEqual([{ name: 'web', diff: [{ path: 'replicas', from: 3, to: 5 }], from: web, to: { ...web, replicas: 5 } }])
    expect(plan.unchanged).toEqual(['db'])
    expect(plan.remove).toEqual([])
    expect(plan.absent).toEqual(['old'])
    expect(plan.conflicts).toEqual([])
  })

  it('removes only services of this stack, and only with prune', () => {
    const plan = planStack([web, old, other], stackOf([web]), { prune: true })
    expect(plan.remove.map((s) => s.name)).toEqual(['old'])
    expect(plan.absent).toEqual([])
  })

  it('reports a name taken by another stack as a conflict, not a change', () => {
    const plan = planStack([other], stackOf([spec({ name: 'blog', image: 'ghost:5' })]))
    expect(plan.conflicts).toEqual([{ name: 'blog', stack: 'blog' }])
    expect(plan.change).toEqual([])
    expect(plan.create).toEqual([])
  })

  it('is empty when applying the same file twice', () => {
    const stack = stackOf([web, db])
    const plan = planStack(stack.services, stack, { prune: true })
    expect(planIsEmpty(plan)).toBe(true)
    expect(plan.unchanged).toEqual(['db', 'web'])
  })
})

describe('diffServices', () => {
  it('diffs nested fields, map entries and list elements by identity', () => {
    const a = spec({
      name: 'web', image: 'nginx:1.26', env: { TZ: 'UTC', OLD: '1' },
      ports: [{ target: 80, published: 8080 }, { target: 443, published: 8443 }],
      mounts: [{ type: 'bind', source: '/srv', target: '/srv' }],
      resources: { limits: { memoryBytes: 256 * 1024 ** 2 } },
    })
    const b = spec({
      name: 'web', image: 'nginx:1.27', env: { TZ: 'Europe/Berlin', NEW: '2' },
      ports: [{ target: 8080, published: 8080 }, { target: 443, published: 8443 }, { target: 53, published: 53, protocol: 'udp' }],
      mounts: [{ type: 'bind', source: '/srv', target: '/srv', readOnly: true }],
      resources: { limits: { memoryBytes: 512 * 1024 ** 2 } },
    })
    expect(diffServices(a, b)).toEqual([
      { path: 'env.NEW', to: '2' },
      { path: 'env.OLD', from: '1' },
      { path: 'env.TZ', from: 'UTC', to: 'Europe/Berlin' },
      { path: 'image', from: 'nginx:1.26', to: 'nginx:1.27' },
      { path: 'mounts[/srv].readOnly', from: false, to: true },
      { path: 'ports[8080/tcp].target', from: 80, to: 8080 },
      { path: 'ports[53/udp]', to: { hostIp: null, mode: 'ingress', protocol: 'udp', published: 53, target: 53 } },
      { path: 'resources.limits.memoryBytes', from: 256 * 1024 ** 2, to: 512 * 1024 ** 2 },
    ])
  })

  it('treats a change of variant (healthcheck kind, host-loss action) as one change', () => {
    const a = spec({ name: 'web', image: 'nginx', healthcheck: { kind: 'tcp', port: 80 } })
    const b = spec({ name: 'web', image: 'nginx', healthcheck: { kind: 'http', port: 80, path: '/health' }, onHostLoss: { action: 'wait', afterMs: 60_000 } })
    const d = diffServices(a, b)
    expect(d.map((c) => c.path)).toEqual(['healthcheck', 'onHostLoss'])
    expect(d[0]?.to).toMatchObject({ kind: 'http', path: '/health' })
  })

  it('quotes map keys that are not plain words', () => {
    const a = spec({ name: 'web', image: 'nginx', labels: { 'traefik.enable': 'false' } })
    const b = spec({ name: 'web', image: 'nginx', labels: { 'traefik.enable': 'true' } })
    expect(diffServices(a, b)).toEqual([{ path: 'labels["traefik.enable"]', from: 'false', to: 'true' }])
  })
})

describe('renderPlan', () => {
  const before = parse([
    'stack: media',
    'services:',
    '  web: { image: "nginx:1.27", replicas: 3 }',
    '  api:',
    '    image: ghcr.io/acme/api:1.0',
    '    resources: { limits: { cpu: 1, memory: 512M } }',
    '    update: { delay: 10s }',
    '    placement: { constraints: ["node.labels.zone == attic"] }',
    '  old: { image: busybox }',
    '',
  ].join('\n'))
  const after = parse([
    'stack: media',
    'services:',
    '  web: { image: "nginx:1.27", replicas: 5 }',
    '  api:',
    '    image: ghcr.io/acme/api:1.1',
    '    resources: { limits: { cpu: 1.5, memory: 1G } }',
    '    update: { delay: 1m30s }',
    '    placement: { constraints: ["node.labels.zone in (attic, cellar)"] }',
    '    onHostLoss: wait 5m',
    '  cache: { image: "redis:7", mode: global }',
    '  db: { image: "postgres:16", replicas: 1 }',
    '',
  ].join('\n'))

  it('renders creates, one-line and multi-line changes, and removals', () => {
    expect(renderPlan(planStack(before.services, after, { prune: true }))).toBe([
      'stack media: 2 to create, 2 to change, 1 to remove, 0 unchanged',
      '+ create cache (image redis:7, global)',
      '+ create db (image postgres:16, 1 replica)',
      '~ change api:',
      '    image ghcr.io/acme/api:1.0 → ghcr.io/acme/api:1.1',
      '    onHostLoss replace → wait 5m',
      '    placement.constraints node.labels.zone == attic → node.labels.zone in (attic, cellar)',
      '    resources.limits.memory 512M → 1G',
      '    resources.limits.cpu 1 → 1.5',
      '    update.delay 10s → 1m30s',
      '~ change web: replicas 3 → 5',
      '- remove old',
    ].join('\n'))
  })

  it('says which services stay without prune, and shows conflicts', () => {
    const text = renderPlan(planStack([...before.services, spec({ name: 'db', image: 'mysql', stack: 'legacy' })], after))
    expect(text.split('\n')).toContain('! conflict db: the name belongs to a service of stack legacy')
    expect(text.split('\n').at(-1)).toBe('  (not in the file, kept: old; --prune removes them)')
  })

  it('colours lines for a terminal when asked', () => {
    const text = renderPlan(planStack([], stackOf([spec({ name: 'web', image: 'nginx' })])), { color: true })
    expect(text.split('\n')[1]).toBe('\u001b[32m+ create web (image nginx, 1 replica)\u001b[0m')
  })

  it('formats values by unit and paths without unit suffixes', () => {
    expect(displayPath('resources.reservations.milliCpu')).toBe('resources.reservations.cpu')
    expect(displayPath('mounts[/tmp].sizeBytes')).toBe('mounts[/tmp].size')
    expect(displayPath('healthcheck.startPeriodMs')).toBe('healthcheck.startPeriod')
    expect(formatValue('healthcheck.intervalMs', 90_000)).toBe('1m30s')
    expect(formatValue('secrets[/run/secrets/x].mode', 0o440)).toBe('0440')
    expect(formatValue('ports[80/tcp]', { target: 80, published: 80, protocol: 'tcp', mode: 'host', hostIp: '127.0.0.1' })).toBe('127.0.0.1:80:80/tcp (host)')
    expect(formatValue('mounts[/data]', { type: 'volume', source: 'data', target: '/data', readOnly: true })).toBe('data:/data:ro')
    expect(formatValue('command', ['a', 'b c'])).toBe('["a","b c"]')
    expect(formatValue('user', null)).toBe('none')
    expect(formatValue('env.GREETING', 'hello world')).toBe('"hello world"')
  })
})
