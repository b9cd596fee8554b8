// The one part of the model that touches the disk: read a spec file, and for Compose files the
// `.env` next to it and the env files it names, then parse. Everything else is pure.
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { composeEnvFiles } from './compose.ts'
import { parseEnvFile } from './compose-vars.ts'
import { makeDiagnostic } from './errors.ts'
import type { SpecFormat, StackResult } from './result.ts'
import { parseSource } from './source.ts'
import { detectFormat, parseStackDoc } from './stack.ts'

/** Options for {@link loadSpecFile}. */
export interface LoadOptions {
  /** Force a format instead of detecting it. */
  format?: SpecFormat
  /** Stack name; overrides the file's. */
  stack?: string
  /**
   * The client's environment (normally `process.env`), for Compose interpolation and for
   * environment entries without a value. It wins over the `.env` file next to the Compose file.
   */
  env?: Readonly<Record<string, string | undefined>>
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/**
 * Reads and parses a spec file (native or Compose, YAML or JSON). Relative bind sources resolve
 * against the file's directory. For Compose files, variables come from `opts.env` over the `.env`
 * file next to the spec, and `env_file`s are read relative to the spec.
 */
export async function loadSpecFile(path: string, opts: LoadOptions = {}): Promise<StackResult> {
  const text = await readOrNull(path)
  if (text === null) {
    const d = makeDiagnostic({ severity: 'error', file: path, loc: { line: 0, column: 0 }, path: [], message: 'the file does not exist' })
    return { ok: false, errors: [d], warnings: [] }
  }
  const baseDir = dirname(resolve(path))
  const doc = parseSource(text, path)
  const format = opts.format ?? 'auto'
  const isCompose = format === 'compose' || (format === 'auto' && detectFormat(doc.value) === 'compose')
  let env = opts.env ?? {}
  const envFiles: Record<string, string | null> = {}
  if (isCompose && doc.errors.length === 0) {
    const dotenv = await readOrNull(resolve(baseDir, '.env'))
    if (dotenv !== null) {
      const parsed = parseEnvFile(dotenv, env)
      if ('entries' in parsed) env = { ...Object.fromEntries(parsed.entries), ...env }
    }
    for (const file of composeEnvFiles(doc, env)) envFiles[file] = await readOrNull(resolve(baseDir, file))
  }
  return parseStackDoc(doc, {
    file: path, baseDir, env, envFiles,
    ...(opts.format !== undefined && { format: opts.format }),
    ...(opts.stack !== undefined && { stack: opts.stack }),
  })
}
