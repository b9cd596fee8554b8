// The canonical service spec: what the replication layer stores and the scheduler reads.
// Every field is present (defaults filled in); durations are milliseconds, memory is bytes, CPU is
// thousandths of a core. The file formats (native.ts, compose.ts) turn what people write into this.
import { z } from 'zod'

/** DNS label: lowercase letters, digits and `-`, 1–63 characters, not starting or ending with `-`. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** A Docker image reference: `nginx`, `nginx:1.27`, `ghcr.io/org/app:v2`, `app@sha256:…`. */
export const IMAGE_REF =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]{32,})?$/

/** A host label key as used in constraints and spread: `zone`, `disk.type`, `example.com/role`. */
export const LABEL_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/

const msg = (text: string) => ({ error: text })
const whole = (min: number, what = `a whole number ≥ ${min}`) => z.int(msg(`expected ${what}`)).min(min, msg(`expected ${what}`))
const dnsLabel = z.string(msg('expected a DNS label')).regex(DNS_LABEL, msg('expected a DNS label (lowercase letters, digits and "-", at most 63)'))
const absPath = z.string(msg('expected an absolute path')).regex(/^\//, msg('expected an absolute path'))
const port = whole(1, 'a port number 1–65535').max(65535, msg('expected a port number 1–65535'))
const ms = whole(0, 'a duration in milliseconds')
const textMap = z.record(z.string(), z.string())

/** A published port. `published: null` means the port is only exposed, not published on the host. */
export const portSchema = z.strictObject({
  target: port,
  published: port.nullable().default(null),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  /** `ingress`: one port for the whole cluster; `host`: bound on each host that runs a replica. */
  mode: z.enum(['ingress', 'host']).default('ingress'),
  /** Host address to bind (host mode only). */
  hostIp: z.string().nullable().default(null),
})

/**
 * A placement constraint on host attributes. `==` is stored as `in` with one value and `!=` as
 * `notIn`, so that equivalent constraints are identical. `notIn` also matches hosts without the label.
 */
export const constraintSchema = z.strictObject({
  attribute: z.enum(['node.labels', 'node.hostname', 'node.id', 'node.platform.os', 'node.platform.arch']),
  /** The label key for `node.labels`, otherwise null. */
  label: z.string().regex(LABEL_KEY).nullable().default(null),
  op: z.enum(['in', 'notIn']),
  values: z.array(z.string().min(1)).min(1),
})

/** A named volume as declared at stack level, with its runtime name (`stack_key` unless external or named). */
export const volumeDeclSchema = z.strictObject({
  name: z.string().min(1),
  driver: z.string().min(1).default('local'),
  options: textMap.default({}),
  labels: textMap.default({}),
  external: z.boolean().default(false),
})

const volumeMount = z.strictObject({
  type: z.literal('volume'),
  /** The stack-level volume key, or null for an anonymous volume. */
  source: z.string().min(1).nullable().default(null),
  target: absPath,
  readOnly: z.boolean().default(false),
  /** The declaration the source refers to (copied in, so a service is self-contained). */
  volume: volumeDeclSchema.nullable().default(null),
})
const bindMount = z.strictObject({ type: z.literal('bind'), source: absPath, target: absPath, readOnly: z.boolean().default(false) })
const tmpfsMount = z.strictObject({
  type: z.literal('tmpfs'),
  target: absPath,
  sizeBytes: whole(1).nullable().default(null),
  mode: whole(0).max(0o7777).nullable().default(null),
})

/** A volume, bind or tmpfs mount. */
export const mountSchema = z.discriminatedUnion('type', [volumeMount, bindMount, tmpfsMount])

/** Where a config's or secret's data comes from. */
export const fileOriginSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('file'), path: z.string().min(1) }),
  z.strictObject({ kind: z.literal('content'), content: z.string() }),
  z.strictObject({ kind: z.literal('external') }),
])

/** A config or secret declared at stack level. */
export const fileDeclSchema = z.strictObject({ name: z.string().min(1), from: fileOriginSchema })

/** A service's reference to a config or secret, with the declaration copied in. */
export const fileRefSchema = z.strictObject({
  source: z.string().min(1),
  name: z.string().min(1),
  from: fileOriginSchema,
  target: absPath,
  uid: z.string().regex(/^\d+$/).default('0'),
  gid: z.string().regex(/^\d+$/).default('0'),
  mode: whole(0).max(0o7777).default(0o444),
})

/**
 * The longest health-check interval, timeout and start period: 24 h. Timers past 2^31 − 1 ms fire
 * after 1 ms in Node, so an unbounded one would probe (and restart) in a loop.
 */
export const MAX_HEALTH_MS = 86_400_000
const healthMs = (min: number) => ms.min(min).max(MAX_HEALTH_MS, msg('expected a duration of at most 24h (86400000 ms)'))

const timing = {
  intervalMs: healthMs(1).default(30_000),
  timeoutMs: healthMs(1).default(30_000),
  retries: whole(0).default(3),
  startPeriodMs: healthMs(0).default(0),
}

/**
 * A health check: `exec` runs a command in the container, `shell` runs text with `/bin/sh -c`,
 * `http` expects a status in [statusMin, statusMax], `tcp` expects a connection. `none` disables the
 * image's own check; a null healthcheck leaves the image's check as it is.
 */
export const healthcheckSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({ kind: z.literal('exec'), command: z.array(z.string()).min(1), ...timing }),
  z.strictObject({ kind: z.literal('shell'), command: z.string().min(1), ...timing }),
  z.strictObject({
    kind: z.literal('http'), path: z.string().regex(/^\//).default('/'), port,
    statusMin: whole(100).max(599).default(200), statusMax: whole(100).max(599).default(399), ...timing,
  }),
  z.strictObject({ kind: z.literal('tcp'), port, ...timing }),
])

/** What to do when a container exits. `maxAttempts: 0` means no limit. */
export const restartPolicySchema = z.strictObject({
  condition: z.enum(['none', 'on-failure', 'any']).default('any'),
  delayMs: ms.default(5_000),
  maxAttempts: whole(0).default(0),
  windowMs: ms.default(0),
})

/** How an update (or a rollback) rolls through the replicas. `parallelism: 0` means all at once. */
export const updatePolicySchema = z.strictObject({
  parallelism: whole(0).default(1),
  delayMs: ms.default(0),
  order: z.enum(['stop-first', 'start-first']).default('stop-first'),
  failureAction: z.enum(['pause', 'continue', 'rollback']).default('pause'),
  monitorMs: ms.default(5_000),
  maxFailureRatio: z.number().min(0).max(1).default(0),
})

const cpuMemory = { milliCpu: whole(1).nullable().default(null), memoryBytes: whole(1).nullable().default(null) }

/** CPU and memory reservations (for placement) and limits (enforced by the runtime). */
export const resourcesSchema = z.strictObject({
  reservations: z.strictObject(cpuMemory).default({ milliCpu: null, memoryBytes: null }),
  limits: z.strictObject({ ...cpuMemory, pids: whole(1).nullable().default(null) }).default({ milliCpu: null, memoryBytes: null, pids: null }),
})

/** Where replicas may run: constraints on host attributes, at most N per host, spread over label values. */
export const placementSchema = z.strictObject({
  constraints: z.array(constraintSchema).default([]),
  maxPerNode: whole(1).nullable().default(null),
  spread: z.array(z.string().regex(LABEL_KEY)).default([]),
})

/** What to do with a host's replicas when the host is lost: replace them at once, or wait first. */
export const onHostLossSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('replace') }),
  z.strictObject({ action: z.literal('wait'), afterMs: ms.min(1) }),
])

const serviceObject = z.strictObject({
  stack: dnsLabel,
  name: dnsLabel,
  image: z.string().regex(IMAGE_REF, msg('expected an image reference like nginx:1.27')),
  command: z.array(z.string()).nullable().default(null),
  entrypoint: z.array(z.string()).nullable().default(null),
  env: textMap.default({}),
  workingDir: absPath.nullable().default(null),
  user: z.string().min(1).nullable().default(null),
  labels: textMap.default({}),
  mode: z.enum(['replicated', 'global']).default('replicated'),
  /** Null exactly when the mode is global. */
  replicas: whole(0).nullable().optional(),
  ports: z.array(portSchema).default([]),
  network: z.enum(['bridge', 'host', 'none']).default('bridge'),
  resources: resourcesSchema.default({ reservations: { milliCpu: null, memoryBytes: null }, limits: { milliCpu: null, memoryBytes: null, pids: null } }),
  placement: placementSchema.default({ constraints: [], maxPerNode: null, spread: [] }),
  healthcheck: healthcheckSchema.nullable().default(null),
  restart: restartPolicySchema.default({ condition: 'any', delayMs: 5_000, maxAttempts: 0, windowMs: 0 }),
  update: updatePolicySchema.default(defaultUpdate()),
  rollback: updatePolicySchema.default(defaultUpdate()),
  mounts: z.array(mountSchema).default([]),
  configs: z.array(fileRefSchema).default([]),
  secrets: z.array(fileRefSchema).default([]),
  onHostLoss: onHostLossSchema.default({ action: 'replace' }),
  /** How long a stop waits after SIGTERM before SIGKILL (Compose `stop_grace_period`). */
  stopGracePeriodMs: ms.max(3_600_000).default(10_000),
  /** Move replicas back onto hosts that return or join, to even out the spread. */
  rebalance: z.boolean().default(false),
})

function defaultUpdate() {
  return { parallelism: 1, delayMs: 0, order: 'stop-first' as const, failureAction: 'pause' as const, monitorMs: 5_000, maxFailureRatio: 0 }
}

/**
 * The service spec schema: accepts a spec with any defaulted field left out and returns it with
 * every field present. It also checks what one field says about another (replicas and mode,
 * limits and reservations, host IPs and port modes, label constraints).
 */
export const serviceSpecSchema = serviceObject
  .superRefine((s, ctx) => {
    if (s.mode === 'global' && s.replicas !== undefined && s.replicas !== null) ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'a global service has no replica count' })
    if (s.mode === 'replicated' && s.replicas === null) ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'expected a whole number ≥ 0' })
    for (const k of ['milliCpu', 'memoryBytes'] as const) {
      const lim = s.resources.limits[k]
      const res = s.resources.reservations[k]
      if (lim !== null && res !== null && lim < res) ctx.addIssue({ code: 'custom', path: ['resources', 'limits', k], message: 'the limit is below the reservation' })
    }
    s.ports.forEach((p, i) => {
      if (p.hostIp !== null && p.mode !== 'host') ctx.addIssue({ code: 'custom', path: ['ports', i, 'hostIp'], message: 'a host IP needs mode "host"' })
    })
    s.placement.constraints.forEach((c, i) => {
      if ((c.attribute === 'node.labels') !== (c.label !== null)) ctx.addIssue({ code: 'custom', path: ['placement', 'constraints', i, 'label'], message: 'a label constraint needs a label, others none' })
    })
    if (s.healthcheck?.kind === 'http' && s.healthcheck.statusMin > s.healthcheck.statusMax) ctx.addIssue({ code: 'custom', path: ['healthcheck', 'statusMax'], message: 'statusMax is below statusMin' })
    if (s.network === 'none' && (s.healthcheck?.kind === 'http' || s.healthcheck?.kind === 'tcp')) {
      ctx.addIssue({
        code: 'custom', path: ['healthcheck'],
        message: 'http and tcp health checks are probed at the container\'s address, and network "none" gives it none, so this one could never pass: use an exec check (it runs inside the container) or another network',
      })
    }
    if (s.rollback.failureAction === 'rollback') ctx.addIssue({ code: 'custom', path: ['rollback', 'failureAction'], message: 'a rollback cannot roll back; expected pause or continue' })
  })
  .transform((s) => ({ ...s, replicas: s.mode === 'global' ? null : (s.replicas ?? 1) }))

/** A service spec in canonical form: every field present. */
export type ServiceSpec = z.output<typeof serviceSpecSchema>
/** A service spec with defaulted fields optional: what {@link serviceSpecSchema} accepts. */
export type ServiceSpecInput = z.input<typeof serviceSpecSchema>
/** A published or exposed port. */
export type Port = z.output<typeof portSchema>
/** A placement constraint in structured form. */
export type Constraint = z.output<typeof constraintSchema>
/** A volume, bind or tmpfs mount. */
export type Mount = z.output<typeof mountSchema>
/** A named volume declaration, with its runtime name. */
export type VolumeDecl = z.output<typeof volumeDeclSchema>
/** Where a config or secret comes from. */
export type FileOrigin = z.output<typeof fileOriginSchema>
/** A config or secret declaration, with its runtime name. */
export type FileDecl = z.output<typeof fileDeclSchema>
/** A service's reference to a config or secret. */
export type FileRef = z.output<typeof fileRefSchema>
/** A health check (or `none`). */
export type Healthcheck = z.output<typeof healthcheckSchema>
/** A restart policy. */
export type RestartPolicy = z.output<typeof restartPolicySchema>
/** An update or rollback policy. */
export type UpdatePolicy = z.output<typeof updatePolicySchema>
/** CPU and memory reservations and limits. */
export type Resources = z.output<typeof resourcesSchema>
/** Placement constraints, max per host and spread. */
export type Placement = z.output<typeof placementSchema>
/** What happens to a lost host's replicas. */
export type OnHostLoss = z.output<typeof onHostLossSchema>

/** A parsed file: one stack name, its services in canonical form (sorted by name), and its declarations. */
export interface Stack {
  name: string
  services: ServiceSpec[]
  volumes: Record<string, VolumeDecl>
  configs: Record<string, FileDecl>
  secrets: Record<string, FileDecl>
}
