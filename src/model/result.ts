// What parsing takes and returns, and the collector both formats report into.
import type { z } from 'zod'
import { issuesToDiagnostics, makeDiagnostic, sortDiagnostics, type Diagnostic, type Path } from './errors.ts'
import type { SourceDoc } from './source.ts'
import type { Stack } from './spec.ts'

/** The file formats. `auto` picks native when there is a top-level `stack:` key, Compose otherwise. */
export type SpecFormat = 'auto' | 'native' | 'compose'

/** Options for parsing a spec file. */
export interface ParseOptions {
  /** The file name used in messages (default `<input>`). */
  file?: string
  /** Force a format instead of detecting it. */
  format?: SpecFormat
  /** Stack name; overrides `stack:` (native) and `name:` (Compose). */
  stack?: string
  /** Directory of the file, to resolve relative bind sources. Without it they are errors. */
  baseDir?: string
  /**
   * Variables for Compose interpolation (`${VAR}`) and for environment entries without a value.
   * The CLI passes its process environment merged over the `.env` file next to the Compose file.
   */
  env?: Readonly<Record<string, string | undefined>>
  /**
   * Contents of the Compose `env_file`s, by path as written in the file (null: the file does not
   * exist). {@link loadSpecFile} reads them; see {@link composeEnvFiles}.
   */
  envFiles?: Readonly<Record<string, string | null>>
}

/** The outcome of parsing a spec file: the whole stack, or every error — never part of it. */
export type StackResult =
  | { ok: true; stack: Stack; format: 'native' | 'compose'; warnings: Diagnostic[] }
  | { ok: false; errors: Diagnostic[]; warnings: Diagnostic[] }

/** Collects errors and warnings with locations from a source document. */
export class Collector {
  readonly src: SourceDoc
  readonly errors: Diagnostic[] = []
  readonly warnings: Diagnostic[] = []

  constructor(src: SourceDoc) {
    this.src = src
    this.errors.push(...src.errors)
    this.warnings.push(...src.warnings)
  }

  /** An error about the value at `path`. */
  error(path: Path, message: string): void {
    const { found, value } = this.src.get(path)
    this.errors.push(makeDiagnostic({ severity: 'error', file: this.src.file, loc: this.src.locate(path), path, message, value, hasValue: found }))
  }

  /** An error about the key that ends `path` (its line is the key's). */
  keyError(path: Path, message: string): void {
    this.errors.push(makeDiagnostic({ severity: 'error', file: this.src.file, loc: this.src.locateKey(path), path, message }))
  }

  /** A warning about the key that ends `path`. */
  warn(path: Path, message: string): void {
    this.warnings.push(makeDiagnostic({ severity: 'warning', file: this.src.file, loc: this.src.locateKey(path), path, message }))
  }

  /** Zod issues from parsing the value at `base`. */
  issues(issues: readonly z.core.$ZodIssue[], base: Path): void {
    this.errors.push(...issuesToDiagnostics(issues, this.src, base))
  }

  /** The result when an error has been reported and parsing cannot go on. */
  failure(): StackResult {
    return { ok: false, errors: sortDiagnostics(dedupe(this.errors)), warnings: sortDiagnostics(dedupe(this.warnings)) }
  }

  /** The result: the stack if there were no errors, otherwise every error. Both sorted by line. */
  result(stack: () => Stack, format: 'native' | 'compose'): StackResult {
    const warnings = sortDiagnostics(dedupe(this.warnings))
    if (this.errors.length > 0) return { ok: false, errors: sortDiagnostics(dedupe(this.errors)), warnings }
    return { ok: true, stack: stack(), format, warnings }
  }
}

function dedupe(list: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>()
  return list.filter((d) => (seen.has(d.text) ? false : (seen.add(d.text), true)))
}
