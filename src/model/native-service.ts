// The native format's service: camelCase field names, the spec's own structure (no `deploy`
// section), durations and sizes written as people write them.
import { z } from 'zod'
import {
  absolutePath, bool, command, constraint, cpu, duration, fileMode, keyValues, leaf, list, listOf, mapOr, memory,
  nonEmpty, oneOf, portNumber, ratio, strict, wholeNumber,
} from './fields.ts'
import { httpStatus, image, longPort, numericId, shortPorts, skeinFields, spreadLabel } from './leaves.ts'
import { Fail, isPathSource, parseVolumeShort, VOLUME_NAME } from './syntax.ts'
import type { FileRefDraft, MountDraft, ServiceDraft } from './draft.ts'
import type { Healthcheck } from './spec.ts'

const L = { lenient: false }

/** Keys people bring from Compose, and where they live in the native format. */
export const NATIVE_SYNONYMS: Readonly<Record<string, string>> = {
  environment: 'env',
  deploy: 'the native format has no deploy section: put replicas, mode, resources, placement, restart, update and rollback on the service itself',
  restart_policy: 'restart',
  update_config: 'update',
  rollback_config: 'rollback',
  network_mode: 'network',
  max_replicas_per_node: 'maxPerNode',
  preferences: 'spread',
  cpus: 'cpu',
  start_period: 'startPeriod',
  max_attempts: 'maxAttempts',
  failure_action: 'failureAction',
  max_failure_ratio: 'maxFailureRatio',
  test: 'exec',
  driver_opts: 'options',
  read_only: 'readOnly',
  host_ip: 'hostIp',
  tmpfs: 'tmpfs mounts go under volumes, as { type: tmpfs, target: /path, size: 64M }',
  expose: 'the native format has no expose: list the port under ports without a published port',
}

const cpuMem = { cpu: cpu.optional(), memory: memory.optional() }
const resources = strict({
  reservations: strict(cpuMem, NATIVE_SYNONYMS).optional(),
  limits: strict({ ...cpuMem, pids: wholeNumber(1, L).optional() }, NATIVE_SYNONYMS).optional(),
}, NATIVE_SYNONYMS).transform((r) => ({
  reservations: { milliCpu: r.reservations?.cpu ?? null, memoryBytes: r.reservations?.memory ?? null },
  limits: { milliCpu: r.limits?.cpu ?? null, memoryBytes: r.limits?.memory ?? null, pids: r.limits?.pids ?? null },
}))

const placement = strict({
  constraints: list(constraint, 'a list of constraints').optional(),
  maxPerNode: wholeNumber(1, L).optional(),
  spread: listOf(spreadLabel).optional(),
}, NATIVE_SYNONYMS).transform((p) => ({ constraints: p.constraints ?? [], maxPerNode: p.maxPerNode ?? null, spread: p.spread ?? [] }))

/** `exec` as a list runs the command; as text, /bin/sh runs it. */
const execTest = leaf('a command: a list of words, or text for /bin/sh', (v) => {
  if (typeof v === 'string') return v.trim() === '' ? undefined : { kind: 'shell' as const, command: v }
  if (Array.isArray(v) && v.length > 0 && v.every((w) => typeof w === 'string')) return { kind: 'exec' as const, command: v as string[] }
  return undefined
})

const healthcheck = strict({
  exec: execTest.optional(),
  http: strict({ path: leaf('a path starting with "/"', (v) => (typeof v === 'string' && v.startsWith('/') ? v : undefined)).optional(), port: portNumber(L), expect: httpStatus.optional() }, NATIVE_SYNONYMS).optional(),
  tcp: strict({ port: portNumber(L) }, NATIVE_SYNONYMS).optional(),
  disable: bool().optional(),
  interval: duration.optional(),
  timeout: duration.optional(),
  retries: wholeNumber(0, L).optional(),
  startPeriod: duration.optional(),
}, NATIVE_SYNONYMS).transform((h, ctx): Healthcheck => {
  const kinds = (['exec', 'http', 'tcp', 'disable'] as const).filter((k) => h[k] !== undefined && h[k] !== false)
  if (kinds.length !== 1) {
    ctx.addIssue({ code: 'custom', message: kinds.length === 0 ? 'expected one of exec, http, tcp or disable: true' : `expected one of exec, http, tcp or disable, not ${kinds.join(' and ')}` })
    return z.NEVER
  }
  if (h.disable === true) return { kind: 'none' }
  const timing = {
    ...(h.interval !== undefined && { intervalMs: h.interval }),
    ...(h.timeout !== undefined && { timeoutMs: h.timeout }),
    ...(h.retries !== undefined && { retries: h.retries }),
    ...(h.startPeriod !== undefined && { startPeriodMs: h.startPeriod }),
  }
  for (const [k, v] of Object.entries({ interval: h.interval, timeout: h.timeout })) {
    if (v === 0) { ctx.addIssue({ code: 'custom', path: [k], message: 'expected a duration above zero' }); return z.NEVER }
  }
  if (h.exec !== undefined) return { ...h.exec, ...timing } as Healthcheck
  if (h.http !== undefined) {
    const [statusMin, statusMax] = h.http.expect ?? [200, 399]
    return { kind: 'http', path: h.http.path ?? '/', port: h.http.port, statusMin, statusMax, ...timing } as Healthcheck
  }
  return { kind: 'tcp', port: h.tcp?.port ?? 0, ...timing } as Healthcheck
})

const restart = strict({
  condition: oneOf(['none', 'on-failure', 'any']).optional(),
  delay: duration.optional(),
  maxAttempts: wholeNumber(0, L).optional(),
  window: duration.optional(),
}, NATIVE_SYNONYMS).transform((r) => ({
  ...(r.condition !== undefined && { condition: r.condition }), ...(r.delay !== undefined && { delayMs: r.delay }),
  ...(r.maxAttempts !== undefined && { maxAttempts: r.maxAttempts }), ...(r.window !== undefined && { windowMs: r.window }),
}))

function updatePolicy(actions: readonly ('pause' | 'continue' | 'rollback')[]) {
  return strict({
    parallelism: wholeNumber(0, L).optional(),
    delay: duration.optional(),
    order: oneOf(['stop-first', 'start-first']).optional(),
    failureAction: oneOf(actions).optional(),
    monitor: duration.optional(),
    maxFailureRatio: ratio(L).optional(),
  }, NATIVE_SYNONYMS).transform((u) => ({
    ...(u.parallelism !== undefined && { parallelism: u.parallelism }), ...(u.delay !== undefined && { delayMs: u.delay }),
    ...(u.order !== undefined && { order: u.order }), ...(u.failureAction !== undefined && { failureAction: u.failureAction }),
    ...(u.monitor !== undefined && { monitorMs: u.monitor }), ...(u.maxFailureRatio !== undefined && { maxFailureRatio: u.maxFailureRatio }),
  }))
}

type MountItem = Omit<MountDraft, 'at'>

const volumeShort = leaf('a volume like "data:/var/lib/data", "/srv/media:/media:ro" or "/cache"', (v): MountItem | Fail | undefined => {
  if (typeof v !== 'string') return undefined
  const r = parseVolumeShort(v)
  return r instanceof Fail ? r : { ...r }
})

const volumeLong = strict({
  type: oneOf(['volume', 'bind', 'tmpfs']).optional(),
  source: nonEmpty('a volume name or a host path').optional(),
  target: absolutePath,
  readOnly: bool().optional(),
  size: memory.optional(),
  mode: fileMode.optional(),
}, NATIVE_SYNONYMS).transform((m, ctx): MountItem => {
  const type = m.type ?? (m.source === undefined ? 'volume' : isPathSource(m.source) ? 'bind' : 'volume')
  if (type === 'tmpfs') {
    if (m.source !== undefined) ctx.addIssue({ code: 'custom', path: ['source'], message: 'a tmpfs mount has no source' })
    return { type, source: null, target: m.target, readOnly: false, sizeBytes: m.size ?? null, mode: m.mode ?? null, otherModes: [] }
  }
  if (m.size !== undefined || m.mode !== undefined) ctx.addIssue({ code: 'custom', path: [m.size !== undefined ? 'size' : 'mode'], message: 'size and mode apply to tmpfs mounts only' })
  if (type === 'bind' && (m.source === undefined || !isPathSource(m.source))) ctx.addIssue({ code: 'custom', path: ['source'], message: 'expected a host path as the source of a bind mount' })
  if (type === 'volume' && m.source !== undefined && !VOLUME_NAME.test(m.source)) ctx.addIssue({ code: 'custom', path: ['source'], message: 'expected a volume name (letters, digits, "_", ".", "-")' })
  return { type, source: m.source ?? null, target: m.target, readOnly: m.readOnly ?? false, otherModes: [] }
})

const fileRefLong = strict({
  source: nonEmpty('the name of a declared config or secret'),
  target: nonEmpty('a path in the container').optional(),
  uid: numericId(L).optional(),
  gid: numericId(L).optional(),
  mode: fileMode.optional(),
}, NATIVE_SYNONYMS)
const fileRef = mapOr(fileRefLong, nonEmpty('the name of a declared config or secret').transform((source) => ({ source })))

function indexed<T>(items: T[] | undefined): (T & { index: number })[] {
  return (items ?? []).map((t, index) => ({ ...t, index }))
}

/** The native service schema: produces a draft for {@link assembleService}. */
export const nativeService = strict({
  image,
  command: command(L).optional(),
  entrypoint: command(L).optional(),
  env: keyValues('environment variable', { lenient: false, unset: false }).optional(),
  workingDir: absolutePath.optional(),
  user: nonEmpty('a user name or id, optionally with ":group"').optional(),
  labels: keyValues('label', { lenient: false, unset: false, listWithoutEquals: '' }).optional(),
  mode: oneOf(['replicated', 'global']).optional(),
  replicas: wholeNumber(0, L).optional(),
  ports: list(mapOr(longPort({ lenient: false, hostIpKey: 'hostIp' }), shortPorts), 'a list of ports').optional(),
  network: oneOf(['bridge', 'host', 'none']).optional(),
  resources: resources.optional(),
  placement: placement.optional(),
  healthcheck: healthcheck.optional(),
  restart: restart.optional(),
  update: updatePolicy(['pause', 'continue', 'rollback']).optional(),
  rollback: updatePolicy(['pause', 'continue']).optional(),
  volumes: list(mapOr(volumeLong, volumeShort), 'a list of volumes').optional(),
  configs: list(fileRef, 'a list of configs').optional(),
  secrets: list(fileRef, 'a list of secrets').optional(),
  stopGracePeriod: duration.optional(),
  ...skeinFields(L),
}, NATIVE_SYNONYMS).transform((s, ctx): ServiceDraft => {
  if (s.mode === 'global' && s.replicas !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'a global service runs one replica per matching host; remove replicas or set mode: replicated' })
  }
  const env = Object.fromEntries(Object.entries(s.env ?? {}).map(([k, v]) => [k, v ?? '']))
  const labels = Object.fromEntries(Object.entries(s.labels ?? {}).map(([k, v]) => [k, v ?? '']))
  return {
    spec: {
      image: s.image,
      command: s.command ?? null,
      entrypoint: s.entrypoint ?? null,
      env,
      workingDir: s.workingDir ?? null,
      user: s.user ?? null,
      labels,
      mode: s.mode ?? 'replicated',
      ...(s.mode !== 'global' && { replicas: s.replicas ?? 1 }),
      network: s.network ?? 'bridge',
      ...(s.resources !== undefined && { resources: s.resources }),
      ...(s.placement !== undefined && { placement: s.placement }),
      healthcheck: s.healthcheck ?? null,
      ...(s.restart !== undefined && { restart: s.restart }),
      ...(s.update !== undefined && { update: s.update }),
      ...(s.rollback !== undefined && { rollback: s.rollback }),
      ...(s.onHostLoss !== undefined && { onHostLoss: s.onHostLoss }),
      ...(s.rebalance !== undefined && { rebalance: s.rebalance }),
      ...(s.stopGracePeriod !== undefined && { stopGracePeriodMs: s.stopGracePeriod }),
    },
    ports: s.ports ?? [],
    mounts: (s.volumes ?? []).map((m, i) => ({ ...m, at: ['volumes', i] })),
    configs: indexed<Omit<FileRefDraft, 'index'>>(s.configs),
    secrets: indexed<Omit<FileRefDraft, 'index'>>(s.secrets),
  }
})

/** The keys a native service accepts (for documentation and suggestions). */
export const NATIVE_SERVICE_KEYS: readonly string[] = Object.keys(nativeService.in.shape)
