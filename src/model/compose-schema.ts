// Zod schemas for a Compose service, after compose-keys.ts has removed the keys Skein ignores or
// rejects. Compose is lenient about types (`replicas: "3"`, `cpus: "0.50"`), and so are these.
import { z } from 'zod'
import {
  absolutePath, bool, command, cpu, duration, fileMode, keyValues, leaf, list, listOf, mapOr, memory, nonEmpty, oneOf,
  ratio, strict, text, wholeNumber,
} from './fields.ts'
import { image, longPort, numericId, shortPorts, skeinFields, spreadLabel } from './leaves.ts'
import { Fail, parseConstraint, parseVolumeShort, VOLUME_NAME, isPathSource } from './syntax.ts'
import { parseMemory, parseFileMode } from './units.ts'
import type { Constraint, Healthcheck } from './spec.ts'
import type { MountDraft } from './draft.ts'

const L = { lenient: true }

/** A constraint as Compose writes it; `node.role` is dropped and `engine.labels` renamed, with a note. */
export interface ComposeConstraint {
  constraint: Constraint | null
  note?: string
}

const constraint = leaf('a constraint like "node.labels.zone == attic"', (v): ComposeConstraint | Fail | undefined => {
  if (typeof v !== 'string') return undefined
  const attr = v.trim().split(/\s|==|!=/)[0] ?? ''
  if (attr === 'node.role') return { constraint: null, note: 'is dropped: node.role has no meaning in Skein, where all peers are equal' }
  if (attr.startsWith('engine.labels.')) {
    const c = parseConstraint(v.replace('engine.labels.', 'node.labels.'))
    return c instanceof Fail ? c : { constraint: c, note: `is read as node.labels.${attr.slice('engine.labels.'.length)}: Skein has one set of host labels` }
  }
  const c = parseConstraint(v)
  return c instanceof Fail ? c : { constraint: c }
})

const deployMode = leaf('replicated or global', (v) => {
  if (v === 'replicated' || v === 'global') return v
  if (v === 'replicated-job' || v === 'global-job') return new Fail(`${v} is not supported: jobs run to completion, which Skein does not schedule yet`)
  return undefined
})

function updateConfig(actions: readonly ('pause' | 'continue' | 'rollback')[]) {
  return strict({
    parallelism: wholeNumber(0, L).optional(),
    delay: duration.optional(),
    failure_action: oneOf(actions).optional(),
    monitor: duration.optional(),
    max_failure_ratio: ratio(L).optional(),
    order: oneOf(['stop-first', 'start-first']).optional(),
  }).transform((u) => ({
    ...(u.parallelism !== undefined && { parallelism: u.parallelism }), ...(u.delay !== undefined && { delayMs: u.delay }),
    ...(u.order !== undefined && { order: u.order }), ...(u.failure_action !== undefined && { failureAction: u.failure_action }),
    ...(u.monitor !== undefined && { monitorMs: u.monitor }), ...(u.max_failure_ratio !== undefined && { maxFailureRatio: u.max_failure_ratio }),
  }))
}

/** `deploy`. */
export const deploySchema = strict({
  mode: deployMode.optional(),
  replicas: wholeNumber(0, L).optional(),
  resources: strict({
    limits: strict({ cpus: cpu.optional(), memory: memory.optional(), pids: wholeNumber(1, L).optional() }).optional(),
    reservations: strict({ cpus: cpu.optional(), memory: memory.optional() }).optional(),
  }).optional(),
  placement: strict({
    constraints: list(constraint, 'a list of constraints').optional(),
    preferences: list(strict({ spread: spreadLabel }), 'a list of preferences like "- spread: node.labels.zone"').optional(),
    max_replicas_per_node: wholeNumber(0, L).optional(),
  }).optional(),
  restart_policy: strict({
    condition: oneOf(['none', 'on-failure', 'any']).optional(),
    delay: duration.optional(),
    max_attempts: wholeNumber(0, L).optional(),
    window: duration.optional(),
  }).optional(),
  update_config: updateConfig(['pause', 'continue', 'rollback']).optional(),
  rollback_config: updateConfig(['pause', 'continue']).optional(),
  labels: keyValues('label', { lenient: true, unset: false, listWithoutEquals: '' }).optional(),
})

/** Healthcheck `test`: `[CMD, ...]` → exec, `[CMD-SHELL, text]` or text → shell, `[NONE]` → none. */
const healthTest = leaf('a test like ["CMD", "curl", "-f", "http://localhost"], ["CMD-SHELL", "pg_isready"] or text', (v) => {
  if (typeof v === 'string') return v.trim() === '' ? undefined : { kind: 'shell' as const, command: v }
  if (!Array.isArray(v) || !v.every((w) => typeof w === 'string')) return undefined
  const [head, ...rest] = v as string[]
  if (head === 'NONE') return { kind: 'none' as const }
  if (head === 'CMD' && rest.length > 0) return { kind: 'exec' as const, command: rest }
  if (head === 'CMD-SHELL' && rest.length > 0) return { kind: 'shell' as const, command: rest.join(' ') }
  return new Fail('expected a test list starting with "CMD", "CMD-SHELL" or "NONE"')
})

/** `healthcheck` → a check, `none`, or null when it has no test (timings for the image's own check). */
export const healthcheckSchema = strict({
  test: healthTest.optional(),
  interval: duration.optional(),
  timeout: duration.optional(),
  retries: wholeNumber(0, L).optional(),
  start_period: duration.optional(),
  disable: bool(L).optional(),
}).transform((h, ctx): Healthcheck | null => {
  if (h.disable === true || h.test?.kind === 'none') return { kind: 'none' }
  if (h.test === undefined) return null
  for (const k of ['interval', 'timeout'] as const) {
    if (h[k] === 0) { ctx.addIssue({ code: 'custom', path: [k], message: 'expected a duration above zero' }); return z.NEVER }
  }
  return {
    ...h.test,
    ...(h.interval !== undefined && { intervalMs: h.interval }), ...(h.timeout !== undefined && { timeoutMs: h.timeout }),
    ...(h.retries !== undefined && { retries: h.retries }), ...(h.start_period !== undefined && { startPeriodMs: h.start_period }),
  } as Healthcheck
})

type MountItem = Omit<MountDraft, 'at'>

const volumeShort = leaf('a volume like "data:/var/lib/data", "./config:/config:ro" or "/cache"', (v): MountItem | Fail | undefined => {
  if (typeof v !== 'string') return undefined
  const r = parseVolumeShort(v)
  return r instanceof Fail ? r : { ...r }
})

const volumeType = leaf('volume, bind or tmpfs', (v) => {
  if (v === 'volume' || v === 'bind' || v === 'tmpfs') return v
  if (v === 'npipe' || v === 'cluster' || v === 'image') return new Fail(`type ${v} is not supported; expected volume, bind or tmpfs`)
  return undefined
})

const volumeLong = strict({
  type: volumeType,
  source: nonEmpty('a volume name or a host path').optional(),
  target: absolutePath,
  read_only: bool(L).optional(),
  bind: strict({}).optional(),
  volume: strict({}).optional(),
  tmpfs: strict({ size: memory.optional(), mode: fileMode.optional() }).optional(),
}).transform((m, ctx): MountItem => {
  if (m.type === 'tmpfs') return { type: 'tmpfs', source: null, target: m.target, readOnly: false, sizeBytes: m.tmpfs?.size ?? null, mode: m.tmpfs?.mode ?? null, otherModes: [] }
  if (m.type === 'bind' && (m.source === undefined || !isPathSource(m.source))) ctx.addIssue({ code: 'custom', path: ['source'], message: 'expected a host path as the source of a bind mount' })
  if (m.type === 'volume' && m.source !== undefined && !VOLUME_NAME.test(m.source)) ctx.addIssue({ code: 'custom', path: ['source'], message: 'expected a volume name (letters, digits, "_", ".", "-")' })
  return { type: m.type, source: m.source ?? null, target: m.target, readOnly: m.read_only ?? false, otherModes: [] }
})

/** A `tmpfs:` entry: `/run` or `/run:size=64m,mode=1777` (other options are reported as ignored). */
const tmpfsEntry = leaf('a tmpfs path like "/run" or "/run:size=64m"', (v): MountItem | Fail | undefined => {
  if (typeof v !== 'string') return undefined
  const [target = '', opts = ''] = v.split(/:(.*)/s)
  if (!target.startsWith('/')) return new Fail(`expected an absolute container path, not "${target}"`)
  let sizeBytes: number | null = null
  let mode: number | null = null
  const otherModes: string[] = []
  for (const o of opts === '' ? [] : opts.split(',')) {
    const [k, val = ''] = o.split('=')
    if (k === 'size') { const b = parseMemory(val); if (b === undefined) return new Fail(`expected size=<size> like size=64m, not "${o}"`); sizeBytes = b }
    else if (k === 'mode') { const m = parseFileMode(val); if (m === undefined) return new Fail(`expected mode=<octal> like mode=1777, not "${o}"`); mode = m }
    else otherModes.push(o)
  }
  return { type: 'tmpfs', source: null, target, readOnly: false, sizeBytes, mode, otherModes }
})

const fileRef = mapOr(
  strict({
    source: nonEmpty('the name of a declared config or secret'),
    target: nonEmpty('a path in the container').optional(),
    uid: numericId(L).optional(),
    gid: numericId(L).optional(),
    mode: fileMode.optional(),
  }),
  nonEmpty('the name of a declared config or secret').transform((source) => ({ source })),
)

/** `restart:` → a restart policy. */
const restart = leaf('no, always, unless-stopped, on-failure or on-failure:N', (v) => {
  if (v === 'no' || v === false) return { condition: 'none' as const }
  if (v === 'always' || v === 'unless-stopped') return { condition: 'any' as const }
  if (v === 'on-failure') return { condition: 'on-failure' as const }
  const m = typeof v === 'string' ? /^on-failure:(\d+)$/.exec(v) : null
  return m === null ? undefined : { condition: 'on-failure' as const, maxAttempts: Number(m[1]) }
})

const networkMode = leaf('host, bridge or none', (v) => {
  if (v === 'host' || v === 'bridge' || v === 'none') return v
  if (v === 'default') return 'bridge' as const
  if (typeof v === 'string' && /^(service|container):/.test(v)) return new Fail(`network_mode ${v} is not supported: the other container may run on another host`)
  return undefined
})

/** `env_file`: a path, or a list of paths or `{ path, required }`. */
const envFile = listOf(mapOr(
  strict({ path: nonEmpty('a file path'), required: bool(L).optional(), format: oneOf(['raw']).optional() }),
  nonEmpty('a file path').transform((path) => ({ path, required: true as boolean | undefined })),
))

/** A Compose service after key policing. */
export const composeServiceSchema = strict({
  image: image.optional(),
  command: command(L).nullable().optional(),
  entrypoint: command(L).nullable().optional(),
  environment: keyValues('environment variable', { lenient: true, unset: true }).optional(),
  env_file: envFile.optional(),
  ports: list(mapOr(longPort({ lenient: true, hostIpKey: 'host_ip' }), shortPorts), 'a list of ports').optional(),
  deploy: deploySchema.optional(),
  healthcheck: healthcheckSchema.optional(),
  volumes: list(mapOr(volumeLong, volumeShort), 'a list of volumes').optional(),
  tmpfs: listOf(tmpfsEntry).optional(),
  configs: list(fileRef, 'a list of configs').optional(),
  secrets: list(fileRef, 'a list of secrets').optional(),
  labels: keyValues('label', { lenient: true, unset: false, listWithoutEquals: '' }).optional(),
  user: text('a user name or id, optionally with ":group"', L).optional(),
  working_dir: absolutePath.optional(),
  restart: restart.optional(),
  scale: wholeNumber(0, L).optional(),
  cpus: cpu.optional(),
  mem_limit: memory.optional(),
  mem_reservation: memory.optional(),
  pids_limit: leaf('a whole number ≥ 1, or -1 for no limit', (v) => (v === -1 || v === '-1' ? null : typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : undefined)).optional(),
  network_mode: networkMode.optional(),
  stop_grace_period: duration.optional(),
  'x-skein': strict(skeinFields(L)).optional(),
})

/** What {@link composeServiceSchema} produces. */
export type ComposeService = z.output<typeof composeServiceSchema>
