// What a format's service schema produces (a draft), and how a draft becomes a service spec:
// references to stack-level volumes, configs and secrets are resolved, relative binds are made
// absolute, and checks that span fields run with the paths as written in the file.
import { posix } from 'node:path'
import { formatPath, suggestKey, type Path } from './errors.ts'
import { cmp, sortKeys } from './canonical.ts'
import type { Port, ServiceSpec, ServiceSpecInput, Stack, VolumeDecl, FileDecl, Mount, FileRef } from './spec.ts'

/** A mount as parsed, before its source is resolved. `at` is where it was written, relative to the service. */
export interface MountDraft {
  type: 'volume' | 'bind' | 'tmpfs'
  source: string | null
  target: string
  readOnly: boolean
  sizeBytes?: number | null
  mode?: number | null
  /** Options that have no effect here (`z`, `nocopy`): the caller warns. */
  otherModes: string[]
  at: Path
}

/** A config or secret reference as parsed. */
export interface FileRefDraft {
  source: string
  target?: string | undefined
  uid?: string | undefined
  gid?: string | undefined
  mode?: number | undefined
  index: number
}

/** Everything a format produces for one service. `ports[i]` holds the ports of the file's entry i. */
export interface ServiceDraft {
  spec: Omit<ServiceSpecInput, 'stack' | 'name' | 'mounts' | 'configs' | 'secrets' | 'ports'>
  ports: Port[][]
  mounts: MountDraft[]
  configs: FileRefDraft[]
  secrets: FileRefDraft[]
}

/** The stack-level declarations that services refer to. */
export interface Declarations {
  volumes: Record<string, VolumeDecl>
  configs: Record<string, FileDecl>
  secrets: Record<string, FileDecl>
}

/** Where a format keeps each field, relative to the service (Compose nests some under `deploy`). */
export interface FieldPaths {
  ports: Path
  configs: Path
  secrets: Path
  resources: Path
  labels: Path
}

/** Receives the problems found while assembling, with paths relative to the file's root. */
export interface Reporter {
  error(path: Path, message: string): void
  warn(path: Path, message: string): void
}

/** Everything {@link assembleService} needs. */
export interface AssembleInput {
  stack: string
  name: string
  draft: ServiceDraft
  decls: Declarations
  /** Directory of the file, to resolve relative bind sources; without it they are errors. */
  baseDir: string | undefined
  /** The service's path in the file (`['services', 'web']`). */
  base: Path
  paths: FieldPaths
  report: Reporter
}

/**
 * Turns a draft into a service spec input, reporting every problem found. Returns undefined if
 * there was an error (all of them are reported, not just the first).
 */
export function assembleService(input: AssembleInput): ServiceSpecInput | undefined {
  const { draft, decls, base, paths, report } = input
  let failed = false
  const error = (path: Path, message: string) => { failed = true; report.error([...base, ...path], message) }
  const warn = (path: Path, message: string) => report.warn([...base, ...path], message)

  // Ports: one published port per protocol and address.
  const seen = new Map<string, number>()
  draft.ports.forEach((group, i) => {
    for (const p of group) {
      if (p.published === null) continue
      const key = `${p.published}/${p.protocol}@${p.hostIp ?? '*'}`
      const first = seen.get(key)
      if (first !== undefined && first !== i) error([...paths.ports, i], `published port ${p.published}/${p.protocol} is already published by ${formatPath([...base, ...paths.ports, first])}`)
      else seen.set(key, i)
    }
  })
  const ports = draft.ports.flat()

  // Mounts.
  const mounts: Mount[] = []
  const targets = new Map<string, string>()
  const claim = (target: string, where: Path) => {
    const prev = targets.get(target)
    if (prev !== undefined) error(where, `the container path ${target} is already used by ${prev}`)
    else targets.set(target, formatPath([...base, ...where]))
  }
  for (const m of draft.mounts) {
    const at = m.at
    claim(m.target, at)
    for (const mode of m.otherModes) warn(at, `option "${mode}" is ignored: Skein mounts with ro or rw only`)
    if (m.type === 'tmpfs') mounts.push({ type: 'tmpfs', target: m.target, sizeBytes: m.sizeBytes ?? null, mode: m.mode ?? null })
    else if (m.type === 'bind') {
      const src = m.source ?? ''
      if (src.startsWith('~')) error(at, `the bind source "${src}" is relative to a home directory, which differs between hosts; write an absolute path`)
      else if (src.startsWith('/')) mounts.push({ type: 'bind', source: posix.normalize(src), target: m.target, readOnly: m.readOnly })
      else if (input.baseDir === undefined) error(at, `the bind source "${src}" is relative; write an absolute path (or load the file from disk, so that it resolves against the file's directory)`)
      else {
        const abs = posix.resolve(input.baseDir, src)
        warn(at, `binds ${src} as ${abs}: that path must exist on every host that may run ${input.name}`)
        mounts.push({ type: 'bind', source: abs, target: m.target, readOnly: m.readOnly })
      }
    } else if (m.source === null) mounts.push({ type: 'volume', source: null, target: m.target, readOnly: m.readOnly, volume: null })
    else {
      const decl = decls.volumes[m.source]
      if (decl === undefined) error(at, undeclared('volume', m.source, Object.keys(decls.volumes)))
      else mounts.push({ type: 'volume', source: m.source, target: m.target, readOnly: m.readOnly, volume: decl })
    }
  }

  const refs = (kind: 'config' | 'secret', list: FileRefDraft[], declared: Record<string, FileDecl>, path: Path): FileRef[] => {
    const out: FileRef[] = []
    for (const r of list) {
      const at = [...path, r.index]
      const decl = declared[r.source]
      if (decl === undefined) { error(at, undeclared(kind, r.source, Object.keys(declared))); continue }
      const target = fileTarget(kind, r.target ?? r.source)
      claim(target, at)
      const ref: FileRef = { source: r.source, name: decl.name, from: decl.from, target, uid: r.uid ?? '0', gid: r.gid ?? '0', mode: r.mode ?? 0o444 }
      out.push(ref)
    }
    return out
  }
  const configs = refs('config', draft.configs, decls.configs, paths.configs)
  const secrets = refs('secret', draft.secrets, decls.secrets, paths.secrets)

  // Resources: a limit below its reservation can never be met.
  const res = draft.spec.resources
  const pairs = [['milliCpu', 'cpu'], ['memoryBytes', 'memory']] as const
  for (const [k, label] of pairs) {
    const lim = res?.limits?.[k]
    const resv = res?.reservations?.[k]
    if (typeof lim === 'number' && typeof resv === 'number' && lim < resv) {
      error([...paths.resources, 'limits', label], `the ${label} limit is below the ${label} reservation`)
    }
  }
  for (const key of Object.keys(draft.spec.labels ?? {})) {
    if (key.startsWith('skein.')) error([...paths.labels, key], 'labels starting with "skein." are reserved for Skein')
  }
  if (failed) return undefined
  return { ...draft.spec, stack: input.stack, name: input.name, ports, mounts, configs, secrets }
}

/** A secret's default directory is /run/secrets; a config's is /. */
function fileTarget(kind: 'config' | 'secret', target: string): string {
  if (target.startsWith('/')) return target
  return kind === 'secret' ? `/run/secrets/${target}` : `/${target}`
}

function undeclared(kind: string, name: string, declared: string[]): string {
  const s = suggestKey(name, declared)
  const hint = s !== undefined ? `; did you mean "${s}"?` : declared.length > 0 ? `; declared: ${declared.sort().join(', ')}` : ''
  return `refers to ${kind} "${name}", which is not declared under the top-level ${kind}s${hint}`
}

/** Assembles the parsed stack, services sorted by name. */
export function buildStack(name: string, services: ServiceSpec[], decls: Declarations): Stack {
  return { name, services: [...services].sort((a, b) => cmp(a.name, b.name)), ...sortKeys(decls) }
}

/** Maps the values of a record, keeping its keys. */
export function mapValues<A, B>(rec: Record<string, A>, f: (key: string, value: A) => B): Record<string, B> {
  const out: Record<string, B> = {}
  for (const [k, v] of Object.entries(rec)) Object.defineProperty(out, k, { value: f(k, v), enumerable: true, writable: true, configurable: true })
  return out
}
