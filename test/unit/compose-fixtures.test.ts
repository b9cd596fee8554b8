import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseStackText } from '../../src/model/stack.ts'
import type { ParseOptions, StackResult } from '../../src/model/result.ts'
import type { ServiceSpec, Stack } from '../../src/model/spec.ts'

const fixture = (name: string) => readFileSync(new URL(`../fixtures/compose/${name}`, import.meta.url), 'utf8')

function parse(name: string, opts: ParseOptions = {}): { stack: Stack; warnings: string[] } {
  const r: StackResult = parseStackText(fixture(name), { file: name, baseDir: '/home/me/stacks', ...opts })
  if (!r.ok) throw new Error(`expected success, got:\n${r.errors.map((e) => e.text).join('\n')}`)
  expect(r.format).toBe('compose')
  return { stack: r.stack, warnings: r.warnings.map((w) => w.text) }
}

function svc(stack: Stack, name: string): ServiceSpec {
  const s = stack.services.find((x) => x.name === name)
  if (s === undefined) throw new Error(`no service ${name}`)
  return s
}

const NO_NETWORKS = "Skein has no cluster networks yet: containers use each host's default bridge, and services reach each other through published ports"
const DEPENDS = 'is ignored: services start independently on different hosts, so start order and conditions cannot be kept; make the service retry its connections'

describe('Compose: web + Postgres', () => {
  const { stack, warnings } = parse('web-postgres.yaml')

  it('takes the stack name from name:', () => {
    expect(stack.name).toBe('shop')
    expect(stack.services.map((s) => s.name)).toEqual(['db', 'web'])
  })

  it('maps deploy onto replicas, resources, update and restart policies', () => {
    const web = svc(stack, 'web')
    expect(web.replicas).toBe(3)
    expect(web.resources).toEqual({ limits: { milliCpu: 500, memoryBytes: 512 * 1024 ** 2, pids: null }, reservations: { milliCpu: 250, memoryBytes: 256 * 1024 ** 2 } })
    expect(web.update).toEqual({ parallelism: 1, delayMs: 10_000, order: 'start-first', failureAction: 'rollback', monitorMs: 5000, maxFailureRatio: 0 })
    expect(web.restart).toEqual({ condition: 'on-failure', delayMs: 5000, maxAttempts: 3, windowMs: 0 })
  })

  it('maps stop_grace_period, and keeps the 10 s default without it', () => {
    const r = parseStackText('name: s\nservices:\n  a:\n    image: busybox:1\n    stop_grace_period: 1m\n  b:\n    image: busybox:1\n', { file: 'c.yaml' })
    if (!r.ok) throw new Error(r.errors.map((e) => e.text).join('\n'))
    expect(r.warnings.map((w) => w.text).join('\n')).not.toMatch(/stop_grace_period/)
    expect(svc(r.stack, 'a').stopGracePeriodMs).toBe(60_000)
    expect(svc(r.stack, 'b').stopGracePeriodMs).toBe(10_000)
  })

  it('maps healthchecks: CMD to exec, CMD-SHELL to shell', () => {
    expect(svc(stack, 'web').healthcheck).toEqual({ kind: 'exec', command: ['curl', '-f', 'http://localhost:8000/healthz'], intervalMs: 30_000, timeoutMs: 5000, retries: 3, startPeriodMs: 20_000 })
    expect(svc(stack, 'db').healthcheck).toEqual({ kind: 'shell', command: 'pg_isready -U shop -d shop', intervalMs: 10_000, timeoutMs: 5000, retries: 5, startPeriodMs: 0 })
  })

  it('keeps environment values as text and resolves secrets and volumes', () => {
    const web = svc(stack, 'web')
    expect(web.env).toEqual({ DATABASE_URL: 'postgres://shop@db:5432/shop', DEBUG: 'false', DJANGO_SETTINGS_MODULE: 'shop.settings.production', WORKERS: '3' })
    expect(web.command).toEqual(['gunicorn', 'shop.wsgi:application', '--bind', '0.0.0.0:8000', '--workers', '3'])
    expect(web.secrets).toEqual([{ source: 'db_password', name: 'shop_db_password', from: { kind: 'file', path: './secrets/db_password.txt' }, target: '/run/secrets/db_password', uid: '0', gid: '0', mode: 0o444 }])
    const db = svc(stack, 'db')
    expect(db.mounts).toEqual([{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data', readOnly: false, volume: { name: 'shop_db-data', driver: 'local', options: {}, labels: {}, external: false } }])
    expect(db.placement.constraints).toEqual([{ attribute: 'node.labels', label: 'disk', op: 'in', values: ['ssd'] }])
  })

  it('warns about build and depends_on, naming the key and line', () => {
    expect(warnings).toEqual([
      'web.build (web-postgres.yaml:7) is ignored: a cluster runs images; build and push the image first, then set image',
      `web.depends_on (web-postgres.yaml:18) ${DEPENDS}`,
    ])
  })
})

describe('Compose: WordPress + MariaDB (no name:, legacy keys)', () => {
  const { stack, warnings } = parse('wordpress-mariadb.yaml', { stack: 'blog' })

  it('needs --stack when there is no name:, and ignores version silently', () => {
    expect(stack.name).toBe('blog')
    expect(warnings.some((w) => w.startsWith('version'))).toBe(false)
  })

  it('maps restart: always and unless-stopped to condition any, and a text command to words', () => {
    const db = svc(stack, 'db')
    expect(db.restart.condition).toBe('any')
    expect(svc(stack, 'wordpress').restart.condition).toBe('any')
    expect(db.command).toEqual(['--default-authentication-plugin=mysql_native_password'])
    expect(db.env).toEqual({ MYSQL_DATABASE: 'wordpress', MYSQL_PASSWORD: 'wordpress', MYSQL_ROOT_PASSWORD: 'somewordpress', MYSQL_USER: 'wordpress' })
  })

  it('reads unquoted short ports', () => {
    expect(svc(stack, 'wordpress').ports).toEqual([{ target: 80, published: 8080, protocol: 'tcp', mode: 'ingress', hostIp: null }])
  })

  it('warns once per ignored key, in line order', () => {
    expect(warnings).toEqual([
      'db.container_name (wordpress-mariadb.yaml:6) is ignored: replicas get generated names, so one fixed container name cannot be kept',
      'db.expose (wordpress-mariadb.yaml:16) is ignored: it only documents ports; publish them with ports',
      'wordpress.container_name (wordpress-mariadb.yaml:22) is ignored: replicas get generated names, so one fixed container name cannot be kept',
      `wordpress.depends_on (wordpress-mariadb.yaml:24) ${DEPENDS}`,
      `wordpress.links (wordpress-mariadb.yaml:26) is ignored: ${NO_NETWORKS}`,
    ])
  })
})

describe('Compose: homelab media stack with anchors and merge keys', () => {
  const { stack, warnings } = parse('media-homelab.yaml', { env: { TZ: 'America/New_York' } })

  it('merges the shared block into every service, overridable per key', () => {
    for (const name of ['sonarr', 'radarr']) {
      expect(svc(stack, name).env).toEqual({ PGID: '1000', PUID: '1000', TZ: 'America/New_York' })
      expect(svc(stack, name).restart.condition).toBe('any')
    }
    expect(svc(stack, 'qbittorrent').env).toEqual({ PGID: '1000', PUID: '1000', TZ: 'America/New_York', WEBUI_PORT: '8080' })
    expect(svc(stack, 'jellyfin').env['JELLYFIN_PublishedServerUrl']).toBe('http://media.lan')
  })

  it('resolves relative binds against the file and keeps absolute ones', () => {
    expect(svc(stack, 'jellyfin').mounts).toEqual([
      { type: 'bind', source: '/home/me/stacks/jellyfin/config', target: '/config', readOnly: false },
      { type: 'bind', source: '/srv/media/movies', target: '/data/movies', readOnly: true },
      { type: 'bind', source: '/srv/media/tv', target: '/data/tvshows', readOnly: false },
    ])
  })

  it('maps UDP ports, host networking and x-skein', () => {
    expect(svc(stack, 'qbittorrent').ports.map((p) => `${p.published}:${p.target}/${p.protocol}`)).toEqual(['6881:6881/tcp', '6881:6881/udp', '8080:8080/tcp'])
    const ha = svc(stack, 'homeassistant')
    expect(ha.network).toBe('host')
    expect(ha.onHostLoss).toEqual({ action: 'wait', afterMs: 600_000 })
    expect(svc(stack, 'jellyfin').placement.constraints).toEqual([{ attribute: 'node.labels', label: 'gpu', op: 'in', values: ['intel'] }])
  })

  it('warns where each ignored key is written (merged ones at the anchor)', () => {
    expect(warnings).toContain('jellyfin.logging (media-homelab.yaml:10) is ignored: Skein does not support it yet')
    expect(warnings).toContain('jellyfin.devices (media-homelab.yaml:30) is ignored: Skein does not support it yet')
    expect(warnings).toContain('homeassistant.privileged (media-homelab.yaml:71) is ignored: Skein does not support it yet')
    expect(warnings).toContain('sonarr.volumes[0] (media-homelab.yaml:40) binds ./sonarr as /home/me/stacks/sonarr: that path must exist on every host that may run sonarr')
    expect(warnings).toHaveLength(10)
  })

  it('uses the ${VAR:-default} default when the variable is unset', () => {
    const { stack: s } = parse('media-homelab.yaml')
    expect(svc(s, 'sonarr').env['TZ']).toBe('Europe/Berlin')
  })
})

describe('Compose: Traefik with labels and long syntax', () => {
  const { stack, warnings } = parse('traefik.yaml', { stack: 'edge' })

  it('maps a global service with host-mode ports and an address-bound dashboard', () => {
    const t = svc(stack, 'traefik')
    expect(t.mode).toBe('global')
    expect(t.replicas).toBeNull()
    expect(t.ports).toEqual([
      { target: 80, published: 80, protocol: 'tcp', mode: 'host', hostIp: null },
      { target: 443, published: 443, protocol: 'tcp', mode: 'host', hostIp: null },
      { target: 8080, published: 8080, protocol: 'tcp', mode: 'host', hostIp: '127.0.0.1' },
    ])
  })

  it('keeps deploy.labels and container labels as the service labels', () => {
    expect(svc(stack, 'traefik').labels).toEqual({
      'traefik.enable': 'true',
      'traefik.http.routers.dashboard.rule': 'Host(`traefik.example.com`)',
      'traefik.http.routers.dashboard.service': 'api@internal',
    })
    expect(svc(stack, 'whoami').labels['traefik.http.services.whoami.loadbalancer.server.port']).toBe('80')
  })

  it('reads long volume syntax and drops node.role with a warning', () => {
    const t = svc(stack, 'traefik')
    expect(t.mounts).toEqual([
      { type: 'volume', source: 'letsencrypt', target: '/letsencrypt', readOnly: false, volume: { name: 'edge_letsencrypt', driver: 'local', options: {}, labels: {}, external: false } },
      { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true },
    ])
    expect(t.placement.constraints).toEqual([{ attribute: 'node.labels', label: 'edge', op: 'in', values: ['true'] }])
    expect(warnings).toContain('traefik.deploy.placement.constraints[0] (traefik.yaml:38) is dropped: node.role has no meaning in Skein, where all peers are equal')
  })

  it('maps max_replicas_per_node and spread preferences', () => {
    expect(svc(stack, 'whoami').placement).toEqual({ constraints: [], maxPerNode: 1, spread: ['zone'] })
    expect(svc(stack, 'whoami').replicas).toBe(2)
  })

  it('warns about networks at service and top level', () => {
    expect(warnings.filter((w) => w.includes('networks'))).toEqual([
      `traefik.networks (traefik.yaml:32) is ignored: ${NO_NETWORKS}`,
      `whoami.networks (traefik.yaml:47) is ignored: ${NO_NETWORKS}`,
      `networks (traefik.yaml:65) is ignored: ${NO_NETWORKS}`,
    ])
  })
})

describe('Compose: Nextcloud + Redis + MariaDB with env files and secrets', () => {
  const envFiles = { 'nextcloud.env': fixture('nextcloud.env') }
  const { stack, warnings } = parse('nextcloud-redis.yaml', { envFiles, env: { NEXTCLOUD_TRUSTED_DOMAINS: 'cloud.example.com' } })

  it('merges env files under environment, and fills valueless entries from the client', () => {
    expect(svc(stack, 'nextcloud').env).toEqual({
      MYSQL_DATABASE: 'nextcloud', MYSQL_HOST: 'mariadb', MYSQL_PASSWORD: 's3cr3t pass', MYSQL_ROOT_PASSWORD: 'root # not a comment',
      MYSQL_USER: 'nextcloud', NEXTCLOUD_TRUSTED_DOMAINS: 'cloud.example.com', REDIS_HOST: 'redis',
    })
    expect(svc(stack, 'mariadb').env['MYSQL_USER']).toBe('nextcloud')
  })

  it('reads a secret with uid, gid and an octal mode, and a relative target', () => {
    expect(svc(stack, 'nextcloud').secrets).toEqual([{
      source: 'nextcloud_admin_password', name: 'cloud_nextcloud_admin_password', from: { kind: 'file', path: './secrets/admin_password' },
      target: '/run/secrets/nextcloud_admin_password', uid: '33', gid: '33', mode: 0o440,
    }])
  })

  it('publishes an address-bound port in host mode, and maps tmpfs with size and mode', () => {
    expect(svc(stack, 'nextcloud').ports).toEqual([{ target: 80, published: 8081, protocol: 'tcp', mode: 'host', hostIp: '127.0.0.1' }])
    expect(svc(stack, 'redis').mounts).toEqual([{ type: 'tmpfs', target: '/tmp', sizeBytes: 64 * 1024 ** 2, mode: 0o1777 }])
  })

  it('splits a text command like a shell and keeps driver options', () => {
    expect(svc(stack, 'mariadb').command).toEqual(['--transaction-isolation=READ-COMMITTED', '--log-bin=binlog', '--binlog-format=ROW'])
    expect(stack.volumes['db']).toEqual({ name: 'cloud_db', driver: 'local', options: { device: '/mnt/tank/nextcloud-db', o: 'bind', type: 'none' }, labels: {}, external: false })
  })

  it('maps a text healthcheck test to a shell check and rollback_config', () => {
    expect(svc(stack, 'nextcloud').healthcheck).toEqual({ kind: 'shell', command: 'curl -fsS http://localhost/status.php || exit 1', intervalMs: 60_000, timeoutMs: 10_000, retries: 3, startPeriodMs: 0 })
    expect(svc(stack, 'nextcloud').rollback).toMatchObject({ parallelism: 0, failureAction: 'continue' })
    expect(warnings).toEqual([`nextcloud.depends_on (nextcloud-redis.yaml:26) ${DEPENDS}`])
  })
})

describe('Compose: monitoring stack', () => {
  const { stack, warnings } = parse('monitoring.yaml')

  it('maps configs with a target, external secrets with a name, and global exporters', () => {
    const p = svc(stack, 'prometheus')
    expect(p.configs).toEqual([{ source: 'prometheus_config', name: 'monitoring_prometheus_config', from: { kind: 'file', path: './prometheus.yml' }, target: '/etc/prometheus/prometheus.yml', uid: '0', gid: '0', mode: 0o444 }])
    expect(p.user).toBe('65534:65534')
    expect(p.resources.reservations.memoryBytes).toBe(512 * 1024 ** 2)
    expect(svc(stack, 'grafana').secrets[0]).toMatchObject({ source: 'grafana_admin', name: 'grafana_admin_v2', from: { kind: 'external' } })
    expect(svc(stack, 'node-exporter')).toMatchObject({ mode: 'global', replicas: null, resources: { limits: { milliCpu: 200, memoryBytes: 64 * 1024 ** 2 } } })
    expect(svc(stack, 'cadvisor').mode).toBe('global')
  })

  it('accepts a published port written as text, and volume labels', () => {
    expect(svc(stack, 'grafana').ports).toEqual([{ target: 3000, published: 3000, protocol: 'tcp', mode: 'ingress', hostIp: null }])
    expect(stack.volumes['grafana-data']?.labels).toEqual({ backup: 'daily' })
  })

  it('warns about mount propagation and endpoint_mode', () => {
    expect(warnings).toEqual([
      'node-exporter.volumes[0] (monitoring.yaml:51) option "rslave" is ignored: Skein mounts with ro or rw only',
      `cadvisor.deploy.endpoint_mode (monitoring.yaml:68) is ignored: ${NO_NETWORKS}`,
    ])
  })
})

describe('Compose: extension fields, anchors inside deploy and healthcheck', () => {
  const { stack, warnings } = parse('extensions.yaml')

  it('merges x- blocks into deploy, healthcheck and labels, with local keys winning', () => {
    const api = svc(stack, 'api')
    expect(api.replicas).toBe(4)
    expect(api.update).toMatchObject({ parallelism: 2, delayMs: 10_000, order: 'start-first' })
    expect(api.labels).toEqual({ 'com.example.component': 'api', 'com.example.team': 'platform', 'com.example.tier': 'backend' })
    expect(api.healthcheck).toMatchObject({ kind: 'exec', intervalMs: 20_000, timeoutMs: 3000 })
    expect(api.rebalance).toBe(true)
    expect(api.image).toBe('registry.example.com:5000/apps/api:1.8.0')
  })

  it('merges a nested anchor and overrides one key', () => {
    const worker = svc(stack, 'worker')
    expect(worker.update).toMatchObject({ parallelism: 2, order: 'stop-first' })
    expect(worker.rollback).toEqual({ parallelism: 1, delayMs: 0, order: 'stop-first', failureAction: 'pause', monitorMs: 90_000, maxFailureRatio: 0.1 })
    expect(worker.healthcheck).toEqual({ kind: 'none' })
    expect(worker.entrypoint).toEqual(['/usr/bin/worker'])
    expect(worker.command).toEqual(['--queue', 'default', '--concurrency', '8'])
    expect(warnings).toEqual([])
  })
})
