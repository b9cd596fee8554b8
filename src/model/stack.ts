// The entry point for spec files: detect the format, parse, validate, and return the whole stack
// in canonical form or every error.
import { parseCompose } from './compose.ts'
import { makeDiagnostic } from './errors.ts'
import { parseNative } from './native.ts'
import type { ParseOptions, SpecFormat, StackResult } from './result.ts'
import { isPlainMap, parseSource, type SourceDoc } from './source.ts'

/**
 * Which format a parsed document is in: native if it has a top-level `stack:` key, Compose if it
 * has `services:` without `stack:`, otherwise undefined.
 */
export function detectFormat(value: unknown): 'native' | 'compose' | undefined {
  if (!isPlainMap(value)) return undefined
  if (Object.hasOwn(value, 'stack')) return 'native'
  if (Object.hasOwn(value, 'services')) return 'compose'
  return undefined
}

/**
 * Parses a spec file's text (YAML or JSON, native or Compose) into a stack. Every error in the
 * file is reported, each with file, line, path, the value at fault and what is allowed; if there is
 * any error, no stack is returned. Warnings (ignored Compose keys, relative binds…) come either way.
 */
export function parseStackText(text: string, opts: ParseOptions = {}): StackResult {
  const doc = parseSource(text, opts.file ?? '<input>')
  return parseStackDoc(doc, opts)
}

/** Parses an already-read source document; see {@link parseStackText}. */
export function parseStackDoc(doc: SourceDoc, opts: ParseOptions = {}): StackResult {
  if (doc.errors.length > 0) return { ok: false, errors: doc.errors, warnings: doc.warnings }
  const format: SpecFormat = opts.format ?? 'auto'
  const chosen = format === 'auto' ? detectFormat(doc.value) : format
  if (chosen === 'native') return parseNative(doc, opts)
  if (chosen === 'compose') return parseCompose(doc, opts)
  const message = doc.value === null
    ? 'the file is empty; expected a native spec (with stack: and services:) or a Compose file (with services:)'
    : 'cannot tell the format: a native spec has a top-level stack: key, a Compose file has services:'
  return {
    ok: false,
    errors: [makeDiagnostic({ severity: 'error', file: doc.file, loc: { line: 1, column: 1 }, path: [], message })],
    warnings: doc.warnings,
  }
}
