import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseStackText } from '../../src/model/stack.ts'
import { interpolate, parseEnvFile } from '../../src/model/compose-vars.ts'
import type { ParseOptions } from '../../src/model/result.ts'
import type { ServiceSpec } from '../../src/model/spec.ts'

const fixture = (name: string) => readFileSync(new URL(`../fixtures/compose/${name}`, import.meta.url), 'utf8')

function run(text: string, opts: ParseOptions = {}) {
  const r = parseStackText(text, { file: 'compose.yaml', ...opts })
  return { ok: r.ok, errors: r.ok ? [] : r.errors.map((e) => e.text), warnings: r.warnings.map((w) => w.text), stack: r.ok ? r.stack : undefined }
}

/** A one-service Compose file with the given lines under the service. */
const web = (...lines: string[]) => ['name: demo', 'services:', '  web:', '    image: nginx:1.27', ...lines.map((l) => `    ${l}`), ''].join('\n')

function service(text: string, opts: ParseOptions = {}): ServiceSpec {
  const r = run(text, opts)
  if (r.stack === undefined) throw new Error(r.errors.join('\n'))
  return r.stack.services[0] as ServiceSpec
}

describe('Compose: a file full of mistakes', () => {
  it('reports every error, each with its line, and applies nothing', () => {
    const r = run(fixture('bad-many-errors.yaml'), { file: 'bad-many-errors.yaml' })
    expect(r.ok).toBe(false)
    expect(r.stack).toBeUndefined()
    expect(r.errors).toEqual([
      'web.imgae: unknown key, did you mean "image"? (bad-many-errors.yaml:6)',
      'web.ports[2]: expected protocol tcp or udp, got "sctp" (bad-many-errors.yaml:11)',
      'web.deploy.replicas: expected a whole number ≥ 0, got "three" (bad-many-errors.yaml:13)',
      'web.deploy.resources.limits.memory: the memory limit is below the memory reservation (bad-many-errors.yaml:15)',
      'web.healthcheck.interval: expected a duration like "10s" or "1m30s", got "soon" (bad-many-errors.yaml:19)',
      'api: has no image: a cluster runs images; build and push the image first, then set image (bad-many-errors.yaml:22)',
      "api.volumes_from: is not supported: containers of one service may run on other hosts than another's, so they cannot share volumes; declare a named volume (bad-many-errors.yaml:23)",
      'worker.volumes[0]: refers to volume "cache", which is not declared under the top-level volumes; did you mean "cahce"? (bad-many-errors.yaml:29)',
      'worker.secrets[0]: refers to secret "api_token", which is not declared under the top-level secrets (bad-many-errors.yaml:31)',
      'worker.deploy.replicas: a global service runs one replica per matching host; remove replicas or use mode: replicated (bad-many-errors.yaml:34)',
      'worker.deploy.restart_policy.condition: expected one of none, on-failure, any, got "sometimes" (bad-many-errors.yaml:36)',
      'My_Service: the service name "My_Service" is not a DNS label: use lowercase letters, digits and "-", at most 63 characters, for example "my-service" (bad-many-errors.yaml:38)',
    ])
    expect(r.warnings).toEqual(['api.build (bad-many-errors.yaml:22) is ignored: a cluster runs images; build and push the image first, then set image'])
  })

  it('reports YAML syntax errors with their line', () => {
    expect(run(fixture('bad-yaml.yaml'), { file: 'bad-yaml.yaml' }).errors).toEqual([
      'bad-yaml.yaml:5: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ])
  })

  it('gives the structured fields of a diagnostic', () => {
    const r = parseStackText(fixture('bad-many-errors.yaml'), { file: 'bad-many-errors.yaml' })
    if (r.ok) throw new Error('expected errors')
    expect(r.errors[2]).toEqual({
      severity: 'error', file: 'bad-many-errors.yaml', line: 13, column: 17, path: 'web.deploy.replicas',
      message: 'expected a whole number ≥ 0, got "three"', expected: 'a whole number ≥ 0', value: 'three',
      text: 'web.deploy.replicas: expected a whole number ≥ 0, got "three" (bad-many-errors.yaml:13)',
    })
  })
})

describe('Compose: keys by treatment', () => {
  it.each<[string, string[], string]>([
    ['container_name', ['container_name: web'], 'web.container_name (compose.yaml:5) is ignored: replicas get generated names, so one fixed container name cannot be kept'],
    ['privileged', ['privileged: true'], 'web.privileged (compose.yaml:5) is ignored: Skein does not support it yet'],
    ['profiles', ['profiles: [debug]'], 'web.profiles (compose.yaml:5) is ignored: every service in the file is deployed; split the file to deploy a subset'],
    ['healthcheck start_interval', ['healthcheck: { test: [CMD, "true"], start_interval: 1s }'], 'web.healthcheck.start_interval (compose.yaml:5) is ignored: Skein does not support it yet'],
    ['GPU reservations', ['deploy:', '  resources:', '    reservations:', '      devices: [{ capabilities: [gpu] }]'], 'web.deploy.resources.reservations.devices (compose.yaml:8) is ignored: device reservations (GPUs) are not supported yet'],
    ['bind propagation', ['volumes:', '  - type: bind', '    source: /srv', '    target: /srv', '    bind: { propagation: rshared }'], 'web.volumes[0].bind.propagation (compose.yaml:9) is ignored: Skein does not support it yet'],
    ['restart with restart_policy', ['restart: always', 'deploy: { restart_policy: { condition: none } }'], 'web.restart (compose.yaml:5) is ignored: deploy.restart_policy applies'],
    ['scale with replicas', ['scale: 2', 'deploy: { replicas: 3 }'], 'web.scale (compose.yaml:5) is ignored: deploy.replicas (3) applies'],
    ['healthcheck without test', ['healthcheck: { interval: 5s }'], "web.healthcheck (compose.yaml:5) has no test: Skein cannot change the timings of the image's own check, so it is left as the image defines it"],
    ['label overridden by deploy.labels', ['labels: { tier: web }', 'deploy: { labels: { tier: edge } }'], 'web.deploy.labels.tier (compose.yaml:6) overrides labels.tier ("web"): Skein has one set of service labels'],
    ['engine.labels', ['deploy: { placement: { constraints: ["engine.labels.ssd == true"] } }'], 'web.deploy.placement.constraints[0] (compose.yaml:5) is read as node.labels.ssd: Skein has one set of host labels'],
    ['an SELinux mode', ['volumes: ["/srv:/srv:Z"]'], 'web.volumes[0] (compose.yaml:5) option "Z" is ignored: Skein mounts with ro or rw only'],
  ])('%s is ignored with a warning', (_, lines, warning) => {
    const r = run(web(...lines))
    expect(r.errors).toEqual([])
    expect(r.warnings).toEqual([warning])
  })

  it.each<[string, string[], string]>([
    ['volumes_from', ['volumes_from: [db]'], "web.volumes_from: is not supported: containers of one service may run on other hosts than another's, so they cannot share volumes; declare a named volume (compose.yaml:5)"],
    ['extends', ['extends: { service: base }'], 'web.extends: is not supported: Skein reads one file; copy the shared keys, or use a YAML anchor and a merge key (<<) (compose.yaml:5)'],
    ['network_mode service:', ['network_mode: "service:vpn"'], 'web.network_mode: network_mode service:vpn is not supported: the other container may run on another host (compose.yaml:5)'],
    ['job modes', ['deploy: { mode: replicated-job }'], 'web.deploy.mode: replicated-job is not supported: jobs run to completion, which Skein does not schedule yet (compose.yaml:5)'],
    ['volume subpath', ['volumes: [{ type: volume, source: data, target: /d, volume: { subpath: x } }]'], 'web.volumes[0].volume.subpath: is not supported: mounting part of a volume is not supported yet, and mounting all of it would expose more than asked (compose.yaml:5)'],
    ['npipe mounts', ['volumes: [{ type: npipe, source: x, target: /x }]'], 'web.volumes[0].type: type npipe is not supported; expected volume, bind or tmpfs (compose.yaml:5)'],
    ['an unknown key', ['enviroment: { A: 1 }'], 'web.enviroment: unknown key, did you mean "environment"? (compose.yaml:5)'],
    ['an unknown deploy key', ['deploy: { replica: 2 }'], 'web.deploy.replica: unknown key, did you mean "replicas"? (compose.yaml:5)'],
    ['a bad healthcheck test', ['healthcheck: { test: [curl, localhost] }'], 'web.healthcheck.test: expected a test list starting with "CMD", "CMD-SHELL" or "NONE", got ["curl","localhost"] (compose.yaml:5)'],
    ['a bad restart', ['restart: sometimes'], 'web.restart: expected no, always, unless-stopped, on-failure or on-failure:N, got "sometimes" (compose.yaml:5)'],
    ['a secret from the environment', ['secrets: [token]'], 'secrets.token.environment: is not supported: not supported yet; write the value to a file and use file: (compose.yaml:8)'],
  ])('%s is an error', (_, lines, error) => {
    const text = web(...lines) + (lines[0]?.startsWith('secrets') === true ? 'secrets:\n  token:\n    environment: TOKEN\n' : '')
    const r = run(text)
    expect(r.errors).toContain(error)
  })

  it('maps legacy keys when deploy says nothing', () => {
    const s = service(web('scale: 3', 'cpus: 1.5', 'mem_limit: 1g', 'mem_reservation: 512m', 'pids_limit: 100', 'restart: on-failure:5'))
    expect(s.replicas).toBe(3)
    expect(s.resources).toEqual({ limits: { milliCpu: 1500, memoryBytes: 1024 ** 3, pids: 100 }, reservations: { milliCpu: null, memoryBytes: 512 * 1024 ** 2 } })
    expect(s.restart).toMatchObject({ condition: 'on-failure', maxAttempts: 5 })
    expect(service(web('restart: "no"')).restart.condition).toBe('none')
  })

  it('is lenient about types the way Compose is', () => {
    const s = service(web('deploy:', '  replicas: "2"', '  update_config: { parallelism: "2", max_failure_ratio: "0.3" }', '  placement: { max_replicas_per_node: 0 }'))
    expect(s.replicas).toBe(2)
    expect(s.update).toMatchObject({ parallelism: 2, maxFailureRatio: 0.3 })
    expect(s.placement.maxPerNode).toBeNull()
  })

  it('ignores x- keys everywhere they are allowed, and reads x-skein', () => {
    const text = ['name: demo', 'x-top: 1', 'services:', '  web:', '    image: nginx:1.27', '    x-note: hi', '    x-skein: { onHostLoss: wait 2m, rebalance: true }', '    deploy: { x-team: a }', 'volumes:', '  data: { x-backup: daily }', ''].join('\n')
    const r = run(text)
    expect(r.errors).toEqual([])
    expect(r.warnings).toEqual([])
    expect(r.stack?.services[0]).toMatchObject({ onHostLoss: { action: 'wait', afterMs: 120_000 }, rebalance: true })
  })

  it('checks x-skein like the native fields', () => {
    expect(run(web('x-skein: { onHostLoss: later, rebalanse: true }')).errors).toEqual([
      'web.x-skein.onHostLoss: expected "replace" or "wait <duration>" like "wait 5m", got "later" (compose.yaml:5)',
      'web.x-skein.rebalanse: unknown key, did you mean "rebalance"? (compose.yaml:5)',
    ])
  })
})

describe('Compose: stack names and format detection', () => {
  it('needs a stack name', () => {
    expect(run('services:\n  web:\n    image: nginx\n').errors).toEqual(['compose.yaml:1: has no stack name: add a top-level name: (stack: in a native spec) or pass --stack'])
    expect(run('name: My_App\nservices:\n  web:\n    image: nginx\n').errors).toEqual(['name: the stack name "My_App" is not a DNS label: use lowercase letters, digits and "-", for example "my-app" (compose.yaml:1)'])
    expect(run('name: My_App\nservices:\n  web:\n    image: nginx\n', { stack: 'app' }).stack?.name).toBe('app')
  })

  it('can be told the format', () => {
    const r = run('name: demo\nservices:\n  web:\n    image: nginx\n    working_dir: /app\n', { format: 'native' })
    expect(r.errors).toContain('name: unknown key, did you mean "stack"? (compose.yaml:1)')
    expect(r.errors).toContain('web.working_dir: unknown key, did you mean "workingDir"? (compose.yaml:5)')
  })
})

describe('Compose: variables', () => {
  it('interpolates, warns once about unset variables, and fails on required ones', () => {
    const r = run(fixture('bad-interpolation.yaml'), { file: 'vault.yaml', env: { VW_VERSION: '1.32.1' } })
    expect(r.errors).toEqual(['vaultwarden.environment.DOMAIN: required variable DOMAIN is not set: set DOMAIN to the public address (vault.yaml:6)'])
    expect(r.warnings).toEqual(['vaultwarden.environment.ADMIN_TOKEN (vault.yaml:7) uses ${ADMIN_TOKEN}, which is not set, so it is blank'])
    const good = run(fixture('bad-interpolation.yaml'), { env: { DOMAIN: 'vault.example.com', ADMIN_TOKEN: 't0k', HTTP_PORT: '9000' } })
    expect(good.stack?.services[0]).toMatchObject({
      image: 'vaultwarden/server:1.32.0',
      env: { ADMIN_TOKEN: 't0k', DOMAIN: 'https://vault.example.com', SIGNUPS_ALLOWED: 'false' },
      ports: [{ target: 80, published: 9000 }],
    })
  })

  it.each<[string, Record<string, string>, string]>([
    ['$A and ${A}', { A: 'x' }, 'x and x'],
    ['${A:-def}', {}, 'def'],
    ['${A:-def}', { A: '' }, 'def'],
    ['${A-def}', { A: '' }, ''],
    ['${A:+alt}', { A: 'x' }, 'alt'],
    ['${A:+alt}', {}, ''],
    ['${A:-${B:-deep}}', {}, 'deep'],
    ['cost: $$5', {}, 'cost: $5'],
    ['$1 stays', {}, '$1 stays'],
  ])('%s with %j → %j', (text, vars, expected) => {
    expect(interpolate(text, vars).value).toBe(expected)
  })

  it('rejects bad interpolation syntax', () => {
    expect(interpolate('${', {}).error).toMatch(/expected a variable name/)
    expect(interpolate('${A:-x', {}).error).toBe('an unclosed "${" in an interpolation')
    expect(interpolate('${A!}', {}).error).toMatch(/expected }, :-, -/)
  })

  it('parses env files', () => {
    expect(parseEnvFile('# c\nA=1\nexport B="two words\\n"\nC=\'lit $x\'\nD=val # comment\nE\nF\n\n', { E: 'from-env' })).toEqual({
      entries: [['A', '1'], ['B', 'two words\n'], ['C', 'lit $x'], ['D', 'val'], ['E', 'from-env']],
    })
    expect(parseEnvFile('A=1\nnot an entry\n', {})).toEqual({ badLine: 2 })
  })

  it('reports env files that are missing or malformed, and skips optional ones', () => {
    const text = web('env_file:', '  - a.env', '  - path: b.env', '    required: false', '  - c.env')
    expect(run(text, { envFiles: { 'a.env': null, 'b.env': null, 'c.env': 'X=1\n???\n' } }).errors).toEqual([
      'web.env_file[0]: env file a.env does not exist (compose.yaml:6)',
      'web.env_file[2]: env file c.env line 2: expected KEY=value (compose.yaml:9)',
    ])
    expect(run(web('env_file: a.env')).errors).toEqual(['web.env_file: env file a.env was not read; load the spec with loadSpecFile, which reads env files next to it (compose.yaml:5)'])
  })
})
