// What Skein does with each Compose key: supported as is, mapped onto a Skein field, ignored
// with a warning that says why, or rejected. docs/compose.md is this table, in prose.
import { unknownKeyMessage, type Path } from './errors.ts'
import { isPlainMap } from './source.ts'

/** How a Compose key is treated. */
export type Treatment =
  | { kind: 'supported' }
  | { kind: 'mapped'; note: string }
  | { kind: 'ignored'; why: string }
  | { kind: 'silent'; why: string }
  | { kind: 'rejected'; why: string }

const S: Treatment = { kind: 'supported' }
const mapped = (note: string): Treatment => ({ kind: 'mapped', note })
const ignored = (why: string): Treatment => ({ kind: 'ignored', why })
const rejected = (why: string): Treatment => ({ kind: 'rejected', why })

const NO_CLUSTER = 'it has no meaning in a cluster'
const NOT_YET = 'Skein does not support it yet'
const NO_NETWORKS = 'Skein has no cluster networks yet: containers use each host\'s default bridge, and services reach each other through published ports'

/** Service-level keys. */
export const SERVICE_KEYS: Readonly<Record<string, Treatment>> = {
  image: S, command: S, entrypoint: S, environment: S, env_file: mapped('read by the client at apply time and merged under environment'),
  ports: S, deploy: S, healthcheck: S, volumes: S, configs: S, secrets: S, labels: mapped('merged with deploy.labels into the service labels, which every container carries'),
  user: S, working_dir: S,
  tmpfs: mapped('becomes tmpfs mounts'),
  restart: mapped('becomes the restart policy when deploy.restart_policy is absent'),
  scale: mapped('becomes the replica count when deploy.replicas is absent'),
  cpus: mapped('becomes the CPU limit when deploy.resources.limits.cpus is absent'),
  mem_limit: mapped('becomes the memory limit when deploy.resources.limits.memory is absent'),
  mem_reservation: mapped('becomes the memory reservation when deploy.resources.reservations.memory is absent'),
  pids_limit: mapped('becomes the pids limit when deploy.resources.limits.pids is absent'),
  network_mode: mapped('host, bridge and none become the network; service: and container: are rejected'),
  stop_grace_period: mapped('becomes stopGracePeriodMs: SIGTERM, then SIGKILL after it (default 10 s)'),
  build: ignored('a cluster runs images; build and push the image first, then set image'),
  container_name: ignored('replicas get generated names, so one fixed container name cannot be kept'),
  depends_on: ignored('services start independently on different hosts, so start order and conditions cannot be kept; make the service retry its connections'),
  links: ignored(NO_NETWORKS), external_links: ignored(NO_NETWORKS), networks: ignored(NO_NETWORKS),
  expose: ignored('it only documents ports; publish them with ports'),
  profiles: ignored('every service in the file is deployed; split the file to deploy a subset'),
  pull_policy: ignored('each host pulls the image when it does not have it'),
  platform: ignored('constrain on node.platform.arch or node.platform.os instead'),
  develop: ignored(NO_CLUSTER), attach: ignored(NO_CLUSTER), provider: ignored(NO_CLUSTER), post_start: ignored(NOT_YET), pre_stop: ignored(NOT_YET),
  stdin_open: ignored(NO_CLUSTER), tty: ignored(NO_CLUSTER), use_api_socket: ignored(NO_CLUSTER), models: ignored(NO_CLUSTER),
  hostname: ignored(NOT_YET), domainname: ignored(NOT_YET), dns: ignored(NOT_YET), dns_opt: ignored(NOT_YET), dns_search: ignored(NOT_YET),
  extra_hosts: ignored(NOT_YET), mac_address: ignored(NO_NETWORKS),
  cap_add: ignored(NOT_YET), cap_drop: ignored(NOT_YET), privileged: ignored(NOT_YET), security_opt: ignored(NOT_YET),
  devices: ignored(NOT_YET), device_cgroup_rules: ignored(NOT_YET), gpus: ignored(NOT_YET), sysctls: ignored(NOT_YET), ulimits: ignored(NOT_YET),
  shm_size: ignored(NOT_YET), init: ignored(NOT_YET), read_only: ignored(NOT_YET), stop_signal: ignored(NOT_YET),
  logging: ignored(NOT_YET), ipc: ignored(NOT_YET), pid: ignored(NOT_YET), uts: ignored(NOT_YET), userns_mode: ignored(NOT_YET), group_add: ignored(NOT_YET),
  cgroup: ignored(NOT_YET), cgroup_parent: ignored(NOT_YET), runtime: ignored(NOT_YET), isolation: ignored(NOT_YET), storage_opt: ignored(NOT_YET),
  oom_kill_disable: ignored(NOT_YET), oom_score_adj: ignored(NOT_YET), mem_swappiness: ignored(NOT_YET), memswap_limit: ignored(NOT_YET),
  cpu_count: ignored(NOT_YET), cpu_percent: ignored(NOT_YET), cpu_shares: ignored(NOT_YET), cpu_period: ignored(NOT_YET), cpu_quota: ignored(NOT_YET),
  cpu_rt_runtime: ignored(NOT_YET), cpu_rt_period: ignored(NOT_YET), cpuset: ignored(NOT_YET), blkio_config: ignored(NOT_YET),
  credential_spec: ignored(NO_CLUSTER), annotations: ignored(NOT_YET), label_file: ignored(NOT_YET),
  volumes_from: rejected('containers of one service may run on other hosts than another\'s, so they cannot share volumes; declare a named volume'),
  extends: rejected('Skein reads one file; copy the shared keys, or use a YAML anchor and a merge key (<<)'),
}

/** `deploy` keys. */
export const DEPLOY_KEYS: Readonly<Record<string, Treatment>> = {
  mode: S, replicas: S, resources: S, placement: S, restart_policy: S, update_config: S, rollback_config: S,
  labels: mapped('merged with the service labels (deploy.labels wins)'),
  endpoint_mode: ignored(NO_NETWORKS),
}

/** `deploy.resources.limits` keys. */
export const LIMITS_KEYS: Readonly<Record<string, Treatment>> = { cpus: S, memory: S, pids: S }
/** `deploy.resources.reservations` keys. */
export const RESERVATIONS_KEYS: Readonly<Record<string, Treatment>> = {
  cpus: S, memory: S, devices: ignored('device reservations (GPUs) are not supported yet'), generic_resources: ignored(NOT_YET),
}
/** `deploy.placement` keys. */
export const PLACEMENT_KEYS: Readonly<Record<string, Treatment>> = {
  constraints: mapped('node.labels, node.hostname, node.id and node.platform.* are kept; node.role is dropped with a warning; engine.labels become node.labels'),
  preferences: mapped('each spread: node.labels.KEY becomes a spread label'),
  max_replicas_per_node: mapped('becomes maxPerNode (0 means no limit)'),
}
/** `healthcheck` keys. */
export const HEALTHCHECK_KEYS: Readonly<Record<string, Treatment>> = {
  test: mapped('CMD becomes exec, CMD-SHELL and plain text become shell, NONE disables the image\'s check'),
  interval: S, timeout: S, retries: S, start_period: S, disable: S,
  start_interval: ignored(NOT_YET),
}
/** Long-syntax `ports` entry keys. */
export const PORT_KEYS: Readonly<Record<string, Treatment>> = {
  target: S, published: S, host_ip: mapped('a port bound to an address is published in host mode'), protocol: S, mode: S,
  name: { kind: 'silent', why: 'a name for people' }, app_protocol: ignored(NOT_YET),
}
/** Long-syntax `volumes` entry keys. */
export const VOLUME_KEYS: Readonly<Record<string, Treatment>> = {
  type: S, source: S, target: S, read_only: S, bind: S, volume: S, tmpfs: S, consistency: ignored('it only matters on Docker Desktop'),
}
/** `volumes[].bind` keys. */
export const BIND_KEYS: Readonly<Record<string, Treatment>> = {
  propagation: ignored(NOT_YET), create_host_path: ignored('the host path must exist on every host that may run the service'), selinux: ignored(NOT_YET),
}
/** `volumes[].volume` keys. */
export const VOLUME_OPTS_KEYS: Readonly<Record<string, Treatment>> = {
  nocopy: ignored(NOT_YET), subpath: rejected('mounting part of a volume is not supported yet, and mounting all of it would expose more than asked'),
}
/** `volumes[].tmpfs` keys. */
export const TMPFS_KEYS: Readonly<Record<string, Treatment>> = { size: S, mode: S }

/** Top-level keys. */
export const TOP_KEYS: Readonly<Record<string, Treatment>> = {
  name: mapped('becomes the stack name (the --stack option wins)'), services: S, volumes: S, configs: S, secrets: S,
  version: { kind: 'silent', why: 'it is obsolete' },
  networks: ignored(NO_NETWORKS),
  include: rejected('Skein reads one file; merge the included files into it'),
  models: ignored(NO_CLUSTER),
}
/** Top-level `volumes.NAME` keys. */
export const TOP_VOLUME_KEYS: Readonly<Record<string, Treatment>> = { driver: S, driver_opts: S, external: S, labels: S, name: S }
/** Top-level `configs.NAME` keys. */
export const TOP_CONFIG_KEYS: Readonly<Record<string, Treatment>> = {
  file: mapped('the path is kept as written; the client reads the file when configs are distributed'), external: S, name: S, content: S,
  labels: ignored(NOT_YET), environment: rejected('not supported yet; write the value to a file and use file:'),
  template_driver: rejected('templated configs are not supported'),
}
/** Top-level `secrets.NAME` keys. */
export const TOP_SECRET_KEYS: Readonly<Record<string, Treatment>> = {
  file: mapped('the path is kept as written; the client reads the file when secrets are distributed'), external: S, name: S,
  labels: ignored(NOT_YET), environment: rejected('not supported yet; write the value to a file and use file:'),
  driver: rejected('secret drivers are not supported'), driver_opts: rejected('secret drivers are not supported'),
  template_driver: rejected('templated secrets are not supported'),
}

interface Ctx {
  keys: Readonly<Record<string, Treatment>>
  /** Keys whose value is a map of this context (`deploy`), a list of them (`ports`), or a map of named ones (`services`). */
  children?: Readonly<Record<string, { map?: Ctx; list?: Ctx; named?: Ctx }>>
  /** Whether `x-*` keys may appear here (ignored, except `x-skein` on a service). */
  extensions?: boolean
}

const VOLUME_CTX: Ctx = { keys: VOLUME_KEYS, children: { bind: { map: { keys: BIND_KEYS } }, volume: { map: { keys: VOLUME_OPTS_KEYS } }, tmpfs: { map: { keys: TMPFS_KEYS } } }, extensions: true }
const SERVICE_CTX: Ctx = {
  keys: SERVICE_KEYS,
  extensions: true,
  children: {
    deploy: {
      map: {
        keys: DEPLOY_KEYS, extensions: true, children: {
          resources: { map: { keys: { limits: S, reservations: S }, children: { limits: { map: { keys: LIMITS_KEYS } }, reservations: { map: { keys: RESERVATIONS_KEYS } } } } },
          placement: { map: { keys: PLACEMENT_KEYS } },
        },
      },
    },
    healthcheck: { map: { keys: HEALTHCHECK_KEYS } },
    ports: { list: { keys: PORT_KEYS, extensions: true } },
    volumes: { list: VOLUME_CTX },
  },
}
const TOP_CTX: Ctx = {
  keys: TOP_KEYS,
  extensions: true,
  children: {
    services: { named: SERVICE_CTX },
    volumes: { named: { keys: TOP_VOLUME_KEYS, extensions: true } },
    configs: { named: { keys: TOP_CONFIG_KEYS, extensions: true } },
    secrets: { named: { keys: TOP_SECRET_KEYS, extensions: true } },
  },
}

/** Receives what the key pass finds. */
export interface KeyReport {
  warn(path: Path, message: string): void
  error(path: Path, message: string): void
}

/**
 * Walks a Compose document and removes, in place, every key that is not supported or mapped:
 * ignored keys get a warning, rejected and unknown keys an error (with a suggestion). `x-*`
 * extension keys are removed silently, except `x-skein` on a service.
 */
export function policeKeys(root: unknown, report: KeyReport): void {
  walk(root, TOP_CTX, [], report)
}

function walk(value: unknown, ctx: Ctx, path: Path, report: KeyReport): void {
  if (!isPlainMap(value)) return
  for (const key of Object.keys(value)) {
    const kp = [...path, key]
    if (key.startsWith('x-') && ctx.extensions === true) {
      if (!(key === 'x-skein' && ctx === SERVICE_CTX)) delete value[key]
      continue
    }
    const t = ctx.keys[key]
    if (t === undefined) {
      report.error(kp, unknownKeyMessage(key, Object.keys(ctx.keys)))
      delete value[key]
    } else if (t.kind === 'ignored' || t.kind === 'silent' || t.kind === 'rejected') {
      if (t.kind === 'ignored') report.warn(kp, `is ignored: ${t.why}`)
      if (t.kind === 'rejected') report.error(kp, `is not supported: ${t.why}`)
      delete value[key]
    } else {
      const child = ctx.children?.[key]
      const v = value[key]
      if (child?.map !== undefined) walk(v, child.map, kp, report)
      if (child?.list !== undefined && Array.isArray(v)) v.forEach((item, i) => walk(item, child.list as Ctx, [...kp, i], report))
      if (child?.named !== undefined && isPlainMap(v)) for (const [k, item] of Object.entries(v)) walk(item, child.named, [...kp, k], report)
    }
  }
}
