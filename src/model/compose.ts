// Docker Compose files (the Compose Specification) mapped onto Skein stacks. Interpolation first,
// then each key is supported, mapped, ignored with a warning, or rejected (compose-keys.ts), then
// the services are validated and mapped like native ones.
import { canonicalService } from './canonical.ts'
import { policeKeys } from './compose-keys.ts'
import { composeServiceSchema } from './compose-schema.ts'
import { composeDraft } from './compose-service.ts'
import { interpolate, interpolateTree } from './compose-vars.ts'
import { assembleService, buildStack, mapValues, type Declarations, type FieldPaths } from './draft.ts'
import { BROKEN_FILE, BROKEN_VOLUME, fileDeclSchema, nameFile, nameVolume, parseEntries, volumeDeclSchema, type DeclStyle } from './decls.ts'
import type { Path } from './errors.ts'
import { Collector, type ParseOptions, type StackResult } from './result.ts'
import { isPlainMap, keepWrittenText, type SourceDoc } from './source.ts'
import { salvage } from './salvage.ts'
import { DNS_LABEL, type ServiceSpec } from './spec.ts'

const STYLE: DeclStyle = { lenient: true, optionsKey: 'driver_opts', synonyms: {} }

const PATHS: FieldPaths = {
  ports: ['ports'], configs: ['configs'], secrets: ['secrets'], resources: ['deploy', 'resources'], labels: ['labels'],
}

function dnsHint(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63)
  return DNS_LABEL.test(s) ? `, for example "${s}"` : ''
}

/** Parses a Compose document (already read by {@link parseSource}). */
export function parseCompose(doc: SourceDoc, opts: ParseOptions): StackResult {
  const out = new Collector(doc)
  const root = doc.value
  if (!isPlainMap(root)) { out.error([], 'expected a map with services'); return out.failure() }

  // Variables: every text value, before anything reads it.
  const unset = new Map<string, Path>()
  interpolateTree(root, opts.env ?? {}, {
    unset: (path, name) => { if (!unset.has(name)) unset.set(name, path) },
    error: (path, message) => out.error(path, message),
  })
  for (const [name, path] of unset) out.warn(path, `uses \${${name}}, which is not set, so it is blank`)

  policeKeys(root, { warn: (p, m) => out.warn(p, m), error: (p, m) => out.keyError(p, m) })

  const named = typeof root['name'] === 'string' ? root['name'] : undefined
  const stackName = opts.stack ?? named
  if (stackName === undefined) out.error([], 'has no stack name: add a top-level name: (stack: in a native spec) or pass --stack')
  else if (!DNS_LABEL.test(stackName)) {
    const msg = `the stack name "${stackName}" is not a DNS label: use lowercase letters, digits and "-"${dnsHint(stackName)}`
    if (opts.stack !== undefined) out.error([], msg)
    else out.error(['name'], msg)
  }
  const name = stackName ?? 'stack'

  for (const k of Object.keys(isPlainMap(root['volumes']) ? root['volumes'] : {})) keepWrittenText(doc, root, ['volumes', k, 'driver_opts'])
  const decls: Declarations = {
    volumes: mapValues(parseEntries(root['volumes'], volumeDeclSchema(STYLE), BROKEN_VOLUME, (k, i) => out.issues(i, ['volumes', k])), (k, d) => nameVolume(name, k, d)),
    configs: mapValues(parseEntries(root['configs'], fileDeclSchema(STYLE, 'config'), BROKEN_FILE, (k, i) => out.issues(i, ['configs', k])), (k, d) => nameFile(name, k, d)),
    secrets: mapValues(parseEntries(root['secrets'], fileDeclSchema(STYLE, 'secret'), BROKEN_FILE, (k, i) => out.issues(i, ['secrets', k])), (k, d) => nameFile(name, k, d)),
  }
  for (const key of ['volumes', 'configs', 'secrets'] as const) {
    if (root[key] !== undefined && root[key] !== null && !isPlainMap(root[key])) out.error([key], `expected a map of ${key}`)
  }

  const services: ServiceSpec[] = []
  const raw = root['services']
  if (!isPlainMap(raw) || Object.keys(raw).length === 0) out.error(['services'], 'expected a map with at least one service')
  for (const [svc, value] of Object.entries(isPlainMap(raw) ? raw : {})) {
    const base = ['services', svc]
    if (!DNS_LABEL.test(svc)) out.keyError(base, `the service name "${svc}" is not a DNS label: use lowercase letters, digits and "-", at most 63 characters${dnsHint(svc)}`)
    for (const p of [['environment'], ['labels'], ['deploy', 'labels']]) keepWrittenText(doc, root, [...base, ...p])
    const report = { error: (p: Path, m: string) => out.error(p, m), warn: (p: Path, m: string) => out.warn(p, m) }
    const ctx = { name: svc, base, vars: opts.env ?? {}, envFiles: opts.envFiles, report }
    const r = composeServiceSchema.safeParse(value ?? {})
    if (!r.success) {
      // Report these, then check what can still be checked without the invalid fields.
      out.issues(r.error.issues, base)
      const partial = salvage(composeServiceSchema, value, r.error.issues, { image: 'salvaged' })
      if (partial !== undefined) {
        out.issues(partial.issues, base)
        assembleService({ stack: name, name: svc, draft: composeDraft(partial.data, ctx), decls, baseDir: opts.baseDir, base, paths: PATHS, report })
      }
      continue
    }
    const draft = composeDraft(r.data, ctx)
    const input = assembleService({ stack: name, name: svc, draft, decls, baseDir: opts.baseDir, base, paths: PATHS, report })
    if (input === undefined || out.errors.length > 0) continue
    try {
      services.push(canonicalService(input))
    } catch (err) {
      out.error(base, err instanceof Error ? err.message : String(err))
    }
  }
  return out.result(() => buildStack(name, services, decls), 'compose')
}

/**
 * The env files a Compose document refers to (paths as written, after interpolation), so that
 * the loader can read them before parsing. Does not change the document.
 */
export function composeEnvFiles(doc: SourceDoc, env: Readonly<Record<string, string | undefined>> = {}): string[] {
  const files = new Set<string>()
  const root = doc.value
  const services = isPlainMap(root) && isPlainMap(root['services']) ? root['services'] : {}
  for (const svc of Object.values(services)) {
    if (!isPlainMap(svc)) continue
    const ef = svc['env_file']
    for (const item of Array.isArray(ef) ? ef : ef === undefined ? [] : [ef]) {
      const path = typeof item === 'string' ? item : isPlainMap(item) && typeof item['path'] === 'string' ? item['path'] : undefined
      if (path !== undefined) files.add(interpolate(path, env).value)
    }
  }
  return [...files]
}
