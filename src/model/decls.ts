// Stack-level declarations of named volumes, configs and secrets, in both formats, and the names
// they get at run time (`stack_key`, unless external or named explicitly).
import { z } from 'zod'
import { bool, keyValues, leaf, mapOr, nonEmpty, strict, textMap, type Leniency } from './fields.ts'
import { isPlainMap } from './source.ts'
import type { FileDecl, VolumeDecl } from './spec.ts'

/** How a format spells the declaration keys that differ. */
export interface DeclStyle extends Leniency {
  /** `options` (native) or `driver_opts` (Compose). */
  optionsKey: 'options' | 'driver_opts'
  synonyms: Readonly<Record<string, string>>
}

/** `external: true`, or the legacy Compose `external: { name: x }`. */
function external(style: DeclStyle) {
  const flag = bool(style)
  if (!style.lenient) return flag.transform((b) => ({ external: b, name: undefined as string | undefined }))
  return mapOr(strict({ name: nonEmpty('a name') }), flag).transform((v) =>
    typeof v === 'boolean' ? { external: v, name: undefined as string | undefined } : { external: true, name: v.name })
}

/** A parsed volume declaration before it is named. */
export interface VolumeDraft {
  driver: string | undefined
  options: Record<string, string>
  labels: Record<string, string>
  external: boolean
  name: string | undefined
}

/** The schema of one named volume declaration (null means all defaults). */
export function volumeDeclSchema(style: DeclStyle) {
  const shape = {
    driver: nonEmpty('a volume driver name like "local"').optional(),
    [style.optionsKey]: textMap.optional(),
    labels: keyValues('label', { lenient: style.lenient, unset: false, listWithoutEquals: '' }).optional(),
    external: external(style).optional(),
    name: nonEmpty('a volume name').optional(),
  }
  return z.unknown().transform((v, ctx): VolumeDraft => {
    if (v === null) return { driver: undefined, options: {}, labels: {}, external: false, name: undefined }
    const r = strict(shape, style.synonyms).safeParse(v)
    if (!r.success) { for (const i of r.error.issues) ctx.addIssue({ ...i } as Parameters<typeof ctx.addIssue>[0]); return z.NEVER }
    const d = r.data as { driver?: string; labels?: Record<string, string | null>; external?: { external: boolean; name: string | undefined }; name?: string } & Record<string, unknown>
    const options = (d[style.optionsKey] ?? {}) as Record<string, string>
    const ext = d.external ?? { external: false, name: undefined }
    if (ext.external && (d.driver !== undefined || Object.keys(options).length > 0)) {
      ctx.addIssue({ code: 'custom', path: ['external'], message: `an external volume already exists; it takes no driver or ${style.optionsKey}` })
    }
    const labels = Object.fromEntries(Object.entries(d.labels ?? {}).map(([k, val]) => [k, val ?? '']))
    return { driver: d.driver, options, labels, external: ext.external, name: d.name ?? ext.name }
  })
}

/** A parsed config or secret declaration before it is named. */
export interface FileDraft {
  from: FileDecl['from']
  name: string | undefined
}

/** The schema of one config or secret declaration: exactly one of `file`, `content` or `external`. */
export function fileDeclSchema(style: DeclStyle, kind: 'config' | 'secret', extra: z.ZodRawShape = {}) {
  const shape = {
    file: nonEmpty('a file path').optional(),
    content: leaf('text', (v) => (typeof v === 'string' ? v : undefined)).optional(),
    external: external(style).optional(),
    name: nonEmpty('a name').optional(),
    ...extra,
  }
  return strict(shape, style.synonyms).transform((d, ctx): FileDraft => {
    const ext = d.external as { external: boolean; name: string | undefined } | undefined
    const sources = [d.file !== undefined && 'file', d.content !== undefined && 'content', ext?.external === true && 'external'].filter((s) => s !== false)
    if (sources.length !== 1) {
      ctx.addIssue({ code: 'custom', message: sources.length === 0 ? `expected a ${kind} with file, content or external: true` : `expected one of file, content or external, not ${sources.join(' and ')}` })
      return z.NEVER
    }
    const name = (d.name as string | undefined) ?? ext?.name
    if (d.file !== undefined) return { from: { kind: 'file', path: d.file as string }, name }
    if (d.content !== undefined) return { from: { kind: 'content', content: d.content as string }, name }
    return { from: { kind: 'external' }, name }
  })
}

/** The run-time name of a declared object: its explicit name, its key if external, else `stack_key`. */
export function runtimeName(stack: string, key: string, external: boolean, name: string | undefined): string {
  return name ?? (external ? key : `${stack}_${key}`)
}

/** Names a parsed volume declaration. */
export function nameVolume(stack: string, key: string, d: VolumeDraft): VolumeDecl {
  return { name: runtimeName(stack, key, d.external, d.name), driver: d.driver ?? 'local', options: d.options, labels: d.labels, external: d.external }
}

/** Names a parsed config or secret declaration. */
export function nameFile(stack: string, key: string, d: FileDraft): FileDecl {
  return { name: runtimeName(stack, key, d.from.kind === 'external', d.name), from: d.from }
}

/**
 * Parses each entry of a declaration map separately, so that every entry's errors are reported.
 * An entry with errors still counts as declared (as `fallback`), so that services referring to
 * it do not get a second, misleading error.
 */
export function parseEntries<S extends z.ZodType>(raw: unknown, schema: S, fallback: z.output<S>, onIssues: (key: string, issues: z.core.$ZodIssue[]) => void): Record<string, z.output<S>> {
  const out: Record<string, z.output<S>> = {}
  if (!isPlainMap(raw)) return out
  for (const [key, v] of Object.entries(raw)) {
    const r = schema.safeParse(v)
    if (!r.success) onIssues(key, r.error.issues)
    Object.defineProperty(out, key, { value: r.success ? r.data : fallback, enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** Stand-ins for declarations that had errors. */
export const BROKEN_VOLUME: VolumeDraft = { driver: undefined, options: {}, labels: {}, external: false, name: undefined }
/** Stand-in for a config or secret declaration that had errors. */
export const BROKEN_FILE: FileDraft = { from: { kind: 'external' }, name: undefined }
