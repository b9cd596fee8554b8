import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseStackText } from '../../src/model/stack.ts'
import type { ParseOptions, StackResult } from '../../src/model/result.ts'
import type { ServiceSpec, Stack } from '../../src/model/spec.ts'

const fixture = (name: string) => readFileSync(new URL(`../fixtures/native/${name}`, import.meta.url), 'utf8')

function ok(text: string, opts: ParseOptions = {}): Stack {
  const r = parseStackText(text, { file: 'stack.yaml', ...opts })
  if (!r.ok) throw new Error(`expected success, got:\n${r.errors.map((e) => e.text).join('\n')}`)
  return r.stack
}

function service(text: string, name = 'web', opts: ParseOptions = {}): ServiceSpec {
  const s = ok(text, opts).services.find((x) => x.name === name)
  if (s === undefined) throw new Error(`no service ${name}`)
  return s
}

function errors(text: string, opts: ParseOptions = {}): string[] {
  const r: StackResult = parseStackText(text, { file: 'stack.yaml', ...opts })
  if (r.ok) throw new Error('expected errors, got a stack')
  return r.errors.map((e) => e.text)
}

/** A one-service native spec with the given YAML lines under the service. */
const web = (...lines: string[]) => ['stack: demo', 'services:', '  web:', '    image: nginx:1.27', ...lines.map((l) => `    ${l}`), ''].join('\n')

describe('native format: a full homelab stack', () => {
  const stack = ok(fixture('media.yaml'), { file: 'media.yaml', baseDir: '/srv/stacks/media' })

  it('reads the stack, its services in name order and its declarations', () => {
    expect(stack.name).toBe('media')
    expect(stack.services.map((s) => s.name)).toEqual(['jellyfin', 'sonarr'])
    expect(stack.volumes['sonarr-config']).toEqual({
      name: 'media_sonarr-config', driver: 'local', external: false, labels: {},
      options: { device: ':/export/sonarr', o: 'addr=10.0.0.5,rw', type: 'nfs' },
    })
    expect(stack.configs['sonarr_ini']).toEqual({ name: 'media_sonarr_ini', from: { kind: 'file', path: './sonarr.ini' } })
    expect(stack.secrets['api_key']).toEqual({ name: 'api_key', from: { kind: 'external' } })
  })

  it('fills the merge-key defaults into both services', () => {
    for (const s of stack.services) {
      expect(s.restart).toEqual({ condition: 'on-failure', delayMs: 10_000, maxAttempts: 5, windowMs: 0 })
      expect(s.onHostLoss).toEqual({ action: 'wait', afterMs: 300_000 })
    }
  })

  it('keeps environment values as written', () => {
    const j = stack.services[0]
    expect(j?.env).toEqual({ JELLYFIN_PublishedServerUrl: 'https://media.example.com', TZ: 'Europe/Berlin', VERSION: '1.10' })
  })

  it('converts units and structures placement', () => {
    const j = stack.services[0] as ServiceSpec
    expect(j.resources).toEqual({
      reservations: { milliCpu: 1000, memoryBytes: 1024 ** 3 },
      limits: { milliCpu: 4000, memoryBytes: 4 * 1024 ** 3, pids: null },
    })
    expect(j.placement).toEqual({
      constraints: [
        { attribute: 'node.labels', label: 'gpu', op: 'in', values: ['intel'] },
        { attribute: 'node.labels', label: 'zone', op: 'in', values: ['attic', 'basement'] },
      ],
      maxPerNode: 1,
      spread: ['zone'],
    })
    expect(j.healthcheck).toEqual({ kind: 'http', path: '/health', port: 8096, statusMin: 200, statusMax: 299, intervalMs: 30_000, timeoutMs: 5000, retries: 3, startPeriodMs: 60_000 })
  })

  it('sorts ports and mounts and copies volume declarations into mounts', () => {
    const j = stack.services[0] as ServiceSpec
    expect(j.ports).toEqual([
      { target: 7359, published: 7359, protocol: 'udp', mode: 'host', hostIp: null },
      { target: 8096, published: 8096, protocol: 'tcp', mode: 'ingress', hostIp: null },
    ])
    expect(j.mounts.map((m) => m.target)).toEqual(['/cache', '/config', '/media'])
    expect(j.mounts[0]).toEqual({ type: 'tmpfs', target: '/cache', sizeBytes: 1024 ** 3, mode: null })
    expect(j.mounts[1]).toMatchObject({ type: 'volume', source: 'config', volume: { name: 'media_config', driver: 'local' } })
    expect(j.mounts[2]).toEqual({ type: 'bind', source: '/srv/media', target: '/media', readOnly: true })
  })

  it('resolves configs and secrets with their targets and modes', () => {
    const s = stack.services[1] as ServiceSpec
    expect(s.configs).toEqual([{ source: 'sonarr_ini', name: 'media_sonarr_ini', from: { kind: 'file', path: './sonarr.ini' }, target: '/sonarr_ini', uid: '0', gid: '0', mode: 0o444 }])
    expect(s.secrets).toEqual([{ source: 'api_key', name: 'api_key', from: { kind: 'external' }, target: '/run/secrets/sonarr_api', uid: '0', gid: '0', mode: 0o400 }])
    expect(s.update).toEqual({ parallelism: 1, delayMs: 0, order: 'start-first', failureAction: 'rollback', monitorMs: 30_000, maxFailureRatio: 0.2 })
    expect(s.rebalance).toBe(true)
  })
})

describe('native format: defaults and single fields', () => {
  it('reads stopGracePeriod as a duration, and refuses a bad one with its location', () => {
    expect(service(web('stopGracePeriod: 1m30s')).stopGracePeriodMs).toBe(90_000)
    expect(service(web('stopGracePeriod: 0')).stopGracePeriodMs).toBe(0)
    expect(errors(web('stopGracePeriod: soon')).join('\n')).toMatch(/stopGracePeriod.*duration/)
  })

  it('fills every default for a minimal service', () => {
    expect(service(web())).toEqual({
      stack: 'demo', name: 'web', image: 'nginx:1.27', command: null, entrypoint: null, env: {}, workingDir: null, user: null,
      labels: {}, mode: 'replicated', replicas: 1, ports: [], network: 'bridge',
      resources: { reservations: { milliCpu: null, memoryBytes: null }, limits: { milliCpu: null, memoryBytes: null, pids: null } },
      placement: { constraints: [], maxPerNode: null, spread: [] }, healthcheck: null,
      restart: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
      update: { parallelism: 1, delayMs: 0, order: 'stop-first', failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0 },
      rollback: { parallelism: 1, delayMs: 0, order: 'stop-first', failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0 },
      mounts: [], configs: [], secrets: [], onHostLoss: { action: 'replace' }, rebalance: false, stopGracePeriodMs: 10_000,
    })
  })

  it.each<[string, string[], Partial<ServiceSpec>]>([
    ['command as text is split like a shell', ['command: gunicorn app:app --bind "0.0.0.0:8000"'], { command: ['gunicorn', 'app:app', '--bind', '0.0.0.0:8000'] }],
    ['entrypoint as a list', ['entrypoint: ["/bin/tini", "--"]'], { entrypoint: ['/bin/tini', '--'] }],
    ['env as a list of K=V', ['env: [A=1, B=x=y, C=]'], { env: { A: '1', B: 'x=y', C: '' } }],
    ['env values that YAML reads as numbers or booleans keep their text', ['env: { A: 0123, B: 1.50, C: true, D: 1e3 }'], { env: { A: '0123', B: '1.50', C: 'true', D: '1e3' } }],
    ['labels as a list, with and without a value', ['labels: [traefik.enable=true, backup]'], { labels: { 'traefik.enable': 'true', backup: '' } }],
    ['global mode has no replica count', ['mode: global'], { mode: 'global', replicas: null }],
    ['zero replicas', ['replicas: 0'], { replicas: 0 }],
    ['user and working dir', ['user: "1000:1000"', 'workingDir: /app'], { user: '1000:1000', workingDir: '/app' }],
    ['host network', ['network: host'], { network: 'host' }],
    ['wait on host loss', ['onHostLoss: wait 1m30s'], { onHostLoss: { action: 'wait', afterMs: 90_000 } }],
    ['exec healthcheck as text runs in a shell', ['healthcheck: { exec: "curl -f localhost || exit 1", retries: 5 }'], { healthcheck: { kind: 'shell', command: 'curl -f localhost || exit 1', intervalMs: 30_000, timeoutMs: 30_000, retries: 5, startPeriodMs: 0 } }],
    ['tcp healthcheck', ['healthcheck: { tcp: { port: 5432 }, interval: 5s }'], { healthcheck: { kind: 'tcp', port: 5432, intervalMs: 5000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 } }],
    ['disabled healthcheck', ['healthcheck: { disable: true }'], { healthcheck: { kind: 'none' } }],
    ['healthcheck timings of 24h, the most', ['healthcheck: { tcp: { port: 5432 }, interval: 24h, timeout: 24h, startPeriod: 24h }'], { healthcheck: { kind: 'tcp', port: 5432, intervalMs: 86_400_000, timeoutMs: 86_400_000, retries: 3, startPeriodMs: 86_400_000 } }],
    ['no network with an exec healthcheck', ['network: none', 'healthcheck: { exec: [check] }'], { network: 'none', healthcheck: { kind: 'exec', command: ['check'], intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 } }],
    ['http expect as a range', ['healthcheck: { http: { port: 80, expect: "200-204" } }'], { healthcheck: { kind: 'http', path: '/', port: 80, statusMin: 200, statusMax: 204, intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 } }],
    ['a port bound to an address is host mode', ['ports: ["127.0.0.1:8080:80"]'], { ports: [{ target: 80, published: 8080, protocol: 'tcp', mode: 'host', hostIp: '127.0.0.1' }] }],
    ['a port range expands', ['ports: ["7000-7001:8000-8001/udp"]'], {
      ports: [{ target: 8000, published: 7000, protocol: 'udp', mode: 'ingress', hostIp: null }, { target: 8001, published: 7001, protocol: 'udp', mode: 'ingress', hostIp: null }],
    }],
    ['memory and cpu written as text and numbers', ['resources: { limits: { cpu: "1.5", memory: 536870912, pids: 200 } }'], { resources: { reservations: { milliCpu: null, memoryBytes: null }, limits: { milliCpu: 1500, memoryBytes: 512 * 1024 ** 2, pids: 200 } } }],
    ['spread as a list with the node.labels prefix', ['placement: { spread: [node.labels.zone, rack] }'], { placement: { constraints: [], maxPerNode: null, spread: ['zone', 'rack'] } }],
    ['a rollback policy', ['rollback: { parallelism: 0, failureAction: continue, monitor: 1m }'], { rollback: { parallelism: 0, delayMs: 0, order: 'stop-first', failureAction: 'continue', monitorMs: 60_000, maxFailureRatio: 0 } }],
    ['a relative bind resolves against the file', ['volumes: [./data:/data]'], { mounts: [{ type: 'bind', source: '/srv/stack/data', target: '/data', readOnly: false }] }],
    ['an anonymous volume', ['volumes: [/scratch]'], { mounts: [{ type: 'volume', source: null, target: '/scratch', readOnly: false, volume: null }] }],
  ])('%s', (_, lines, expected) => {
    expect(service(web(...lines), 'web', { baseDir: '/srv/stack' })).toMatchObject(expected)
  })

  it('reads JSON, tabs and all', () => {
    const s = service('{\n\t"stack": "demo",\n\t"services": {\n\t\t"web": { "image": "nginx:1.27", "replicas": 2, "ports": [80] }\n\t}\n}')
    expect(s.replicas).toBe(2)
    expect(s.ports).toEqual([{ target: 80, published: null, protocol: 'tcp', mode: 'ingress', hostIp: null }])
  })

  it('lets --stack override the stack name and ignores top-level x- keys', () => {
    const stack = ok('stack: demo\nx-img: &img nginx:1.27\nservices:\n  web:\n    image: *img\n', { stack: 'other' })
    expect(stack.name).toBe('other')
    expect(stack.services[0]?.stack).toBe('other')
    expect(stack.services[0]?.image).toBe('nginx:1.27')
  })

  it('warns about relative binds, which must exist on every host', () => {
    const r = parseStackText(web('volumes: [./data:/data]'), { file: 'stack.yaml', baseDir: '/srv/stack' })
    expect(r.warnings.map((w) => w.text)).toEqual(['web.volumes[0] (stack.yaml:5) binds ./data as /srv/stack/data: that path must exist on every host that may run web'])
  })
})

describe('native format: errors', () => {
  it.each<[string, string, string[]]>([
    ['a word where a number goes', web('replicas: three'), ['web.replicas: expected a whole number ≥ 0, got "three" (stack.yaml:5)']],
    ['a negative number', web('replicas: -1'), ['web.replicas: expected a whole number ≥ 0, got -1 (stack.yaml:5)']],
    ['a typo in a key', web('replica: 3'), ['web.replica: unknown key, did you mean "replicas"? (stack.yaml:5)']],
    ['a Compose key', web('working_dir: /app'), ['web.working_dir: unknown key, did you mean "workingDir"? (stack.yaml:5)']],
    ['a Compose section', web('deploy: { replicas: 2 }'), ['web.deploy: unknown key; the native format has no deploy section: put replicas, mode, resources, placement, restart, update and rollback on the service itself (stack.yaml:5)']],
    ['a missing image', 'stack: demo\nservices:\n  web:\n    replicas: 2\n', ['web.image: is required, expected an image reference like "nginx:1.27" or "ghcr.io/org/app:v2" (stack.yaml:3)']],
    ['a bad image', web().replace('nginx:1.27', 'Nginx Latest'), ['web.image: expected an image reference like "nginx:1.27" or "ghcr.io/org/app:v2", got "Nginx Latest" (stack.yaml:4)']],
    ['a bad duration', web('restart: { delay: 5 }'), ['web.restart.delay: expected a duration like "10s" or "1m30s", got 5 (stack.yaml:5)']],
    ['a bad memory size', web('resources: { limits: { memory: lots } }'), ['web.resources.limits.memory: expected a size like "256M" or "1G", got "lots" (stack.yaml:5)']],
    ['a limit below the reservation', web('resources:', '  limits: { memory: 256M }', '  reservations: { memory: 1G }'), ['web.resources.limits.memory: the memory limit is below the memory reservation (stack.yaml:6)']],
    ['replicas on a global service', web('mode: global', 'replicas: 2'), ['web.replicas: a global service runs one replica per matching host; remove replicas or set mode: replicated (stack.yaml:6)']],
    ['the same published port twice', web('ports: ["80:80", "8080:8080", "80:8000"]'), ['web.ports[2]: published port 80/tcp is already published by web.ports[0] (stack.yaml:5)']],
    ['two mounts at one path', 'stack: demo\nservices:\n  web:\n    image: nginx:1.27\n    volumes:\n      - /a:/data\n      - /b:/data\n', ['web.volumes[1]: the container path /data is already used by web.volumes[0] (stack.yaml:7)']],
    ['an undeclared volume', web('volumes: [dta:/data]') + 'volumes:\n  data:\n', ['web.volumes[0]: refers to volume "dta", which is not declared under the top-level volumes; did you mean "data"? (stack.yaml:5)']],
    ['an undeclared secret', web('secrets: [db_password]'), ['web.secrets[0]: refers to secret "db_password", which is not declared under the top-level secrets (stack.yaml:5)']],
    ['a config declared twice over', web() + 'configs:\n  app: { file: ./app.conf, external: true }\n', ['configs.app: expected one of file, content or external, not file and external (stack.yaml:6)']],
    ['a bad constraint', web('placement: { constraints: ["zone = attic"] }'), ['web.placement.constraints[0]: expected a constraint like "node.labels.zone == attic", "node.hostname != pi4" or "node.labels.disk in (ssd, nvme)", got "zone = attic" (stack.yaml:5)']],
    ['a healthcheck with two kinds', web('healthcheck: { exec: [check], tcp: { port: 80 } }'), ['web.healthcheck: expected one of exec, http, tcp or disable, not exec and tcp (stack.yaml:5)']],
    ['a healthcheck interval past 24h (Node timers wrap past 2^31 ms)', web('healthcheck: { tcp: { port: 80 }, interval: 25d }'), ['web: invalid service spec: healthcheck.intervalMs: expected a duration of at most 24h (86400000 ms) (stack.yaml:4)']],
    ['a healthcheck timeout and start period past 24h', web('healthcheck: { exec: [check], timeout: 24h1s, startPeriod: 30d }'), [
      'web: invalid service spec: healthcheck.timeoutMs: expected a duration of at most 24h (86400000 ms); healthcheck.startPeriodMs: expected a duration of at most 24h (86400000 ms) (stack.yaml:4)',
    ]],
    ['an http healthcheck with no network', web('network: none', 'healthcheck: { http: { port: 80 } }'), [
      'web: invalid service spec: healthcheck: http and tcp health checks are probed at the container\'s address, and network "none" gives it none, so this one could never pass: use an exec check (it runs inside the container) or another network (stack.yaml:4)',
    ]],
    ['a rollback that rolls back', web('rollback: { failureAction: rollback }'), ['web.rollback.failureAction: expected pause or continue, got "rollback" (stack.yaml:5)']],
    ['a ratio above one', web('update: { maxFailureRatio: 1.5 }'), ['web.update.maxFailureRatio: expected a ratio from 0 to 1, got 1.5 (stack.yaml:5)']],
    ['a bad onHostLoss', web('onHostLoss: wait'), ['web.onHostLoss: expected "replace" or "wait <duration>" like "wait 5m", got "wait" (stack.yaml:5)']],
    ['a service name that is not a DNS label', 'stack: demo\nservices:\n  Web_1:\n    image: nginx:1.27\n', ['Web_1: the service name "Web_1" is not a DNS label: use lowercase letters, digits and "-", at most 63 characters (stack.yaml:3)']],
    ['a reserved label', web('labels: { skein.replica: "1" }'), ['web.labels["skein.replica"]: labels starting with "skein." are reserved for Skein (stack.yaml:5)']],
    ['a relative bind without a file', web('volumes: [./data:/data]'), ['web.volumes[0]: the bind source "./data" is relative; write an absolute path (or load the file from disk, so that it resolves against the file\'s directory) (stack.yaml:5)']],
    ['no services', 'stack: demo\nservices: {}\n', ['services: expected at least one service (stack.yaml:2)']],
    ['YAML syntax', 'stack: demo\nservices:\n  web:\n    image: [nginx\n', ['stack.yaml:5: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]']],
    ['a duplicate key', 'stack: demo\nservices:\n  web:\n    image: nginx:1.27\n    image: nginx:1.26\n', ['stack.yaml:5: YAML syntax: Map keys must be unique']],
  ])('%s', (_, text, expected) => {
    expect(errors(text)).toEqual(expected)
  })

  it('reports every error in the file, in line order, each with its location and value', () => {
    const text = [
      'stack: Demo',              // 1
      'services:',                // 2
      '  web:',                   // 3
      '    image: nginx:1.27',    // 4
      '    replica: 3',           // 5
      '    ports: ["99999"]',     // 6
      '    resources:',           // 7
      '      limits: { cpu: lots }', // 8
      '    volumes: [missing:/x]', // 9
      '  db:',                    // 10
      '    image: postgres:16',   // 11
      '    restart: { condition: always }', // 12
      '    secrets: [nope]',      // 13
      '  cache:',                 // 14
      '    command: [redis-server]', // 15
      '',
    ].join('\n')
    const r = parseStackText(text, { file: 'stack.yaml' })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.errors.map((e) => e.text)).toEqual([
      'stack: expected a name of lowercase letters, digits and "-" (a DNS label, at most 63), got "Demo" (stack.yaml:1)',
      'cache.image: is required, expected an image reference like "nginx:1.27" or "ghcr.io/org/app:v2" (stack.yaml:14)',
      'web.replica: unknown key, did you mean "replicas"? (stack.yaml:5)',
      'web.ports[0]: expected a port like "8080:80", "127.0.0.1:8080:80/udp" or "80", got "99999" (stack.yaml:6)',
      'web.resources.limits.cpu: expected a number of CPU cores like 0.5 (at most 3 decimals), got "lots" (stack.yaml:8)',
      'web.volumes[0]: refers to volume "missing", which is not declared under the top-level volumes (stack.yaml:9)',
      'db.restart.condition: expected one of none, on-failure, any, got "always" (stack.yaml:12)',
      'db.secrets[0]: refers to secret "nope", which is not declared under the top-level secrets (stack.yaml:13)',
    ].sort((a, b) => line(a) - line(b)))
    const replicas = r.errors.find((e) => e.path === 'web.resources.limits.cpu')
    expect(replicas).toMatchObject({ file: 'stack.yaml', line: 8, column: 22, value: 'lots', expected: 'a number of CPU cores like 0.5 (at most 3 decimals)', severity: 'error' })
  })

  it('points at the anchor for values that come from one', () => {
    const text = 'stack: demo\nx-base: &base\n  replicas: many\nservices:\n  web:\n    <<: *base\n    image: nginx:1.27\n'
    expect(errors(text)).toEqual(['web.replicas: expected a whole number ≥ 0, got "many" (stack.yaml:3)'])
  })

  it('refuses an alias bomb without expanding it', () => {
    const rows = ['stack: demo', 'x-a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]']
    for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e'], ['g', 'f']]) rows.push(`x-${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`)
    const out = errors([...rows, 'services: {}', ''].join('\n'))
    expect(out).toHaveLength(1)
    expect(out[0]).toMatch(/the document expands to more than 200000 nodes/)
  })

  it('tells when the format cannot be detected', () => {
    expect(errors('- a\n')).toEqual(['stack.yaml:1: cannot tell the format: a native spec has a top-level stack: key, a Compose file has services:'])
    expect(errors('')).toEqual(['stack.yaml:1: the file is empty; expected a native spec (with stack: and services:) or a Compose file (with services:)'])
  })
})

function line(text: string): number {
  return Number(/:(\d+)\)$/.exec(text)?.[1] ?? 0)
}

describe('native format: hostile keys', () => {
  it('refuses __proto__ as an environment or label name instead of dropping it', () => {
    expect(errors(web('env: { __proto__: x }', 'labels: ["__proto__=y"]'))).toEqual([
      'web.env.__proto__: the environment variable name __proto__ is not allowed (stack.yaml:5)',
      'web.labels[0]: the label name __proto__ is not allowed (stack.yaml:6)',
    ])
    expect(({} as Record<string, unknown>)['x']).toBeUndefined()
  })
})

describe('native format: declarations', () => {
  it('keeps volume options as written and names volumes for the stack', () => {
    const stack = ok(web('volumes: [data:/data, shared:/shared, old:/old]') + [
      'volumes:',
      '  data: { options: { uid: 1000, size: 1.50 } }',
      '  shared: { external: true }',
      '  old: { external: true, name: legacy-volume }',
      '',
    ].join('\n'))
    expect(stack.volumes).toEqual({
      data: { name: 'demo_data', driver: 'local', options: { size: '1.50', uid: '1000' }, labels: {}, external: false },
      old: { name: 'legacy-volume', driver: 'local', options: {}, labels: {}, external: true },
      shared: { name: 'shared', driver: 'local', options: {}, labels: {}, external: true },
    })
    expect(stack.services[0]?.mounts.map((m) => (m.type === 'volume' ? m.volume?.name : null))).toEqual(['demo_data', 'legacy-volume', 'shared'])
  })

  it('reads inline config content and relative secret targets', () => {
    const s = service(web('configs: [{ source: motd, target: /etc/motd }]', 'secrets: [{ source: pw, target: db_pw, uid: 999 }]') + [
      'configs:', '  motd: { content: "hello\\n" }', 'secrets:', '  pw: { file: ./pw.txt }', '',
    ].join('\n'))
    expect(s.configs[0]).toMatchObject({ name: 'demo_motd', from: { kind: 'content', content: 'hello\n' }, target: '/etc/motd' })
    expect(s.secrets[0]).toMatchObject({ name: 'demo_pw', target: '/run/secrets/db_pw', uid: '999', gid: '0' })
  })
})
