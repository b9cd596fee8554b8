// The native format: `{ stack, services, volumes, configs, secrets }` in YAML or JSON, with
// camelCase keys. Top-level `x-*` keys are allowed (and ignored) to hold YAML anchors.
import { z } from 'zod'
import { canonicalService } from './canonical.ts'
import { assembleService, buildStack, mapValues, type Declarations, type FieldPaths } from './draft.ts'
import { BROKEN_FILE, BROKEN_VOLUME, fileDeclSchema, nameFile, nameVolume, parseEntries, volumeDeclSchema, type DeclStyle } from './decls.ts'
import { mapOf, strict } from './fields.ts'
import { dnsLabel } from './leaves.ts'
import { NATIVE_SYNONYMS, nativeService } from './native-service.ts'
import { Collector, type ParseOptions, type StackResult } from './result.ts'
import { isPlainMap, keepWrittenText, type SourceDoc } from './source.ts'
import { salvage } from './salvage.ts'
import type { Path } from './errors.ts'
import { DNS_LABEL, type ServiceSpec } from './spec.ts'

const STYLE: DeclStyle = { lenient: false, optionsKey: 'options', synonyms: { ...NATIVE_SYNONYMS, driver_opts: 'options' } }

const topLevel = strict({
  stack: dnsLabel.optional(),
  services: mapOf(z.unknown(), 'a map of services'),
  volumes: mapOf(z.unknown(), 'a map of volumes').optional(),
  configs: mapOf(z.unknown(), 'a map of configs').optional(),
  secrets: mapOf(z.unknown(), 'a map of secrets').optional(),
}, { name: 'stack', project: 'stack', version: 'the native format has no version; remove it' })

const PATHS: FieldPaths = { ports: ['ports'], configs: ['configs'], secrets: ['secrets'], resources: ['resources'], labels: ['labels'] }

/** Parses a native-format document (already read by {@link parseSource}). */
export function parseNative(doc: SourceDoc, opts: ParseOptions): StackResult {
  const out = new Collector(doc)
  if (out.errors.length > 0) return out.failure()
  const root = doc.value
  if (!isPlainMap(root)) {
    out.error([], 'expected a map with stack and services')
    return out.failure()
  }
  for (const key of Object.keys(root)) if (key.startsWith('x-')) delete root[key]
  const top = topLevel.safeParse(root)
  if (!top.success) out.issues(top.error.issues, [])
  const stackName = opts.stack ?? (top.success ? top.data.stack : undefined)
  if (opts.stack !== undefined && !DNS_LABEL.test(opts.stack)) out.error([], `the stack name "${opts.stack}" is not a DNS label (lowercase letters, digits and "-")`)
  else if (stackName === undefined && top.success) out.error(['stack'], 'is required, expected a stack name like "media"')
  const name = stackName ?? 'stack'

  for (const k of Object.keys(isPlainMap(root['volumes']) ? root['volumes'] : {})) keepWrittenText(doc, root, ['volumes', k, 'options'])
  const decls: Declarations = {
    volumes: mapValues(parseEntries(root['volumes'], volumeDeclSchema(STYLE), BROKEN_VOLUME, (k, i) => out.issues(i, ['volumes', k])), (k, d) => nameVolume(name, k, d)),
    configs: mapValues(parseEntries(root['configs'], fileDeclSchema(STYLE, 'config'), BROKEN_FILE, (k, i) => out.issues(i, ['configs', k])), (k, d) => nameFile(name, k, d)),
    secrets: mapValues(parseEntries(root['secrets'], fileDeclSchema(STYLE, 'secret'), BROKEN_FILE, (k, i) => out.issues(i, ['secrets', k])), (k, d) => nameFile(name, k, d)),
  }

  const services: ServiceSpec[] = []
  const raw = isPlainMap(root['services']) ? root['services'] : {}
  if (top.success && Object.keys(raw).length === 0) out.error(['services'], 'expected at least one service')
  for (const [svc, value] of Object.entries(raw)) {
    const base = ['services', svc]
    if (!DNS_LABEL.test(svc)) out.keyError(base, `the service name "${svc}" is not a DNS label: use lowercase letters, digits and "-", at most 63 characters`)
    keepWrittenText(doc, root, [...base, 'env'])
    keepWrittenText(doc, root, [...base, 'labels'])
    const report = { error: (p: Path, m: string) => out.error(p, m), warn: (p: Path, m: string) => out.warn(p, m) }
    const r = nativeService.safeParse(value)
    if (!r.success) {
      // Report these, then check what can still be checked without the invalid fields.
      out.issues(r.error.issues, base)
      const partial = salvage(nativeService, value, r.error.issues, { image: 'salvaged' })
      if (partial !== undefined) {
        out.issues(partial.issues, base)
        assembleService({ stack: name, name: svc, draft: partial.data, decls, baseDir: opts.baseDir, base, paths: PATHS, report })
      }
      continue
    }
    const input = assembleService({ stack: name, name: svc, draft: r.data, decls, baseDir: opts.baseDir, base, paths: PATHS, report })
    if (input === undefined || out.errors.length > 0) continue
    try {
      services.push(canonicalService(input))
    } catch (err) {
      out.error(base, err instanceof Error ? err.message : String(err))
    }
  }
  return out.result(() => buildStack(name, services, decls), 'native')
}
