// Maps a parsed Compose service onto a Skein service draft: deploy.* onto the spec's fields,
// legacy keys (restart, scale, mem_limit…) where deploy says nothing, env files and variables.
import type { Path } from './errors.ts'
import type { ComposeService } from './compose-schema.ts'
import { parseEnvFile, type Vars } from './compose-vars.ts'
import type { FileRefDraft, Reporter, ServiceDraft } from './draft.ts'
import type { Constraint, RestartPolicy } from './spec.ts'

/** What the mapping needs besides the service itself. */
export interface ComposeContext {
  name: string
  /** The service's path (`['services', 'web']`). */
  base: Path
  vars: Vars
  envFiles: Readonly<Record<string, string | null>> | undefined
  report: Reporter
}

/** Environment from env files (in order), then `environment` (which wins); unset entries resolved from the client's variables. */
function environment(s: ComposeService, c: ComposeContext): Record<string, string> {
  const env: Record<string, string> = {}
  const put = (k: string, v: string) => Object.defineProperty(env, k, { value: v, enumerable: true, writable: true, configurable: true })
  ;(s.env_file ?? []).forEach((f, i) => {
    const at = [...c.base, 'env_file', ...(Array.isArray(s.env_file) && s.env_file.length > 1 ? [i] : [])]
    const content = c.envFiles?.[f.path]
    if (content === undefined) {
      c.report.error(at, `env file ${f.path} was not read; load the spec with loadSpecFile, which reads env files next to it`)
      return
    }
    if (content === null) {
      if (f.required !== false) c.report.error(at, `env file ${f.path} does not exist`)
      return
    }
    const parsed = parseEnvFile(content, c.vars)
    if ('badLine' in parsed) { c.report.error(at, `env file ${f.path} line ${parsed.badLine}: expected KEY=value`); return }
    for (const [k, v] of parsed.entries) put(k, v)
  })
  for (const [k, v] of Object.entries(s.environment ?? {})) {
    if (v !== null) { put(k, v); continue }
    const fromClient = c.vars[k]
    if (fromClient !== undefined) put(k, fromClient)
    else c.report.warn([...c.base, 'environment', k], `has no value and ${k} is not set in your environment, so it is left out`)
  }
  return env
}

function labels(s: ComposeService, c: ComposeContext): Record<string, string> {
  const out: Record<string, string> = {}
  const put = (k: string, v: string) => Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  for (const [k, v] of Object.entries(s.labels ?? {})) put(k, v ?? '')
  for (const [k, v] of Object.entries(s.deploy?.labels ?? {})) {
    const prev = out[k]
    if (prev !== undefined && prev !== (v ?? '')) c.report.warn([...c.base, 'deploy', 'labels', k], `overrides labels.${k} ("${prev}"): Skein has one set of service labels`)
    put(k, v ?? '')
  }
  return out
}

function restartPolicy(s: ComposeService, c: ComposeContext): Partial<RestartPolicy> | undefined {
  const rp = s.deploy?.restart_policy
  if (rp !== undefined) {
    if (s.restart !== undefined) c.report.warn([...c.base, 'restart'], 'is ignored: deploy.restart_policy applies')
    return {
      ...(rp.condition !== undefined && { condition: rp.condition }), ...(rp.delay !== undefined && { delayMs: rp.delay }),
      ...(rp.max_attempts !== undefined && { maxAttempts: rp.max_attempts }), ...(rp.window !== undefined && { windowMs: rp.window }),
    }
  }
  return s.restart
}

/**
 * Maps a Compose service to a draft. Problems go to the reporter; the draft is returned even then,
 * so that the checks that span fields can still run (the caller applies nothing if there are errors).
 */
export function composeDraft(s: ComposeService, c: ComposeContext): ServiceDraft {
  const error = (path: Path, msg: string) => c.report.error([...c.base, ...path], msg)
  const warn = (path: Path, msg: string) => c.report.warn([...c.base, ...path], msg)
  const d = s.deploy

  if (s.image === undefined) error([], 'has no image: a cluster runs images; build and push the image first, then set image')

  const mode = d?.mode ?? 'replicated'
  let replicas = d?.replicas
  if (s.scale !== undefined) {
    if (replicas === undefined) replicas = s.scale
    else if (replicas !== s.scale) warn(['scale'], `is ignored: deploy.replicas (${replicas}) applies`)
  }
  if (mode === 'global' && replicas !== undefined) error(['deploy', 'replicas'], 'a global service runs one replica per matching host; remove replicas or use mode: replicated')

  const lim = d?.resources?.limits
  const res = d?.resources?.reservations
  const legacy = (key: 'cpus' | 'mem_limit' | 'mem_reservation' | 'pids_limit', deployValue: unknown, value: number | null | undefined) => {
    if (value === undefined) return deployValue
    if (deployValue !== undefined) { warn([key], 'is ignored: deploy.resources applies'); return deployValue }
    return value
  }
  const resources = {
    limits: {
      milliCpu: (legacy('cpus', lim?.cpus, s.cpus) as number | undefined) ?? null,
      memoryBytes: (legacy('mem_limit', lim?.memory, s.mem_limit) as number | undefined) ?? null,
      pids: (legacy('pids_limit', lim?.pids, s.pids_limit) as number | null | undefined) ?? null,
    },
    reservations: {
      milliCpu: res?.cpus ?? null,
      memoryBytes: (legacy('mem_reservation', res?.memory, s.mem_reservation) as number | undefined) ?? null,
    },
  }

  const constraints: Constraint[] = []
  ;(d?.placement?.constraints ?? []).forEach((cc, i) => {
    if (cc.note !== undefined) warn(['deploy', 'placement', 'constraints', i], cc.note)
    if (cc.constraint !== null) constraints.push(cc.constraint)
  })
  const maxPer = d?.placement?.max_replicas_per_node
  const placement = {
    constraints,
    maxPerNode: maxPer === undefined || maxPer === 0 ? null : maxPer,
    spread: (d?.placement?.preferences ?? []).map((p) => p.spread),
  }
  if (mode === 'global' && placement.maxPerNode !== null) warn(['deploy', 'placement', 'max_replicas_per_node'], 'has no effect on a global service, which runs one replica per host')

  if (s.healthcheck === null) warn(['healthcheck'], 'has no test: Skein cannot change the timings of the image\'s own check, so it is left as the image defines it')
  if (s.network_mode === 'host' && (s.ports ?? []).length > 0) warn(['ports'], 'have no effect with network_mode: host; the container uses the host\'s ports directly')

  const mounts = [
    ...(s.volumes ?? []).map((m, i) => ({ ...m, at: ['volumes', i] })),
    ...(s.tmpfs ?? []).map((m, i) => ({ ...m, at: Array.isArray(s.tmpfs) && (s.tmpfs?.length ?? 0) > 1 ? ['tmpfs', i] : ['tmpfs'] })),
  ]
  const restart = restartPolicy(s, c)
  const env = environment(s, c)
  const skein = s['x-skein']
  const refs = (list: { source: string; target?: string | undefined; uid?: string | undefined; gid?: string | undefined; mode?: number | undefined }[] | undefined): FileRefDraft[] =>
    (list ?? []).map((r, index) => ({ ...r, index }))

  return {
    spec: {
      image: s.image ?? '',
      command: s.command ?? null,
      entrypoint: s.entrypoint ?? null,
      env,
      workingDir: s.working_dir ?? null,
      user: s.user ?? null,
      labels: labels(s, c),
      mode,
      ...(mode === 'replicated' && { replicas: replicas ?? 1 }),
      network: s.network_mode ?? 'bridge',
      resources,
      placement,
      healthcheck: s.healthcheck ?? null,
      ...(restart !== undefined && { restart }),
      ...(d?.update_config !== undefined && { update: d.update_config }),
      ...(d?.rollback_config !== undefined && { rollback: d.rollback_config }),
      ...(skein?.onHostLoss !== undefined && { onHostLoss: skein.onHostLoss }),
      ...(skein?.rebalance !== undefined && { rebalance: skein.rebalance }),
      ...(s.stop_grace_period !== undefined && { stopGracePeriodMs: s.stop_grace_period }),
    },
    ports: s.ports ?? [],
    mounts,
    configs: refs(s.configs),
    secrets: refs(s.secrets),
  }
}
