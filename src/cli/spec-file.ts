import { SkeinError } from '../core/errors.ts'
import { loadSpecFile } from '../model/load.ts'
import type { SpecFormat, Stack } from '../model/index.ts'

export { formatChange, planIsEmpty, renderPlan } from '../model/index.ts'
export type { SpecFormat } from '../model/index.ts'

/**
 * Read and parse a stack file on the client, as `skein apply` does: every warning is printed as
 * `skein: warning: <text>`, every error as `skein: <text>` (all of them), and then it throws a
 * SkeinError (exit 1) that says nothing was applied. Only a fully valid stack is returned.
 */
export async function loadSpecFileForCli(file: string, opts: { format: SpecFormat; stack: string | undefined; env: Record<string, string | undefined>; stderr: (t: string) => void }): Promise<Stack> {
  const r = await loadSpecFile(file, { format: opts.format, env: opts.env, ...(opts.stack === undefined ? {} : { stack: opts.stack }) })
  for (const w of r.warnings) opts.stderr(`skein: warning: ${w.text}\n`)
  if (!r.ok) {
    for (const e of r.errors) opts.stderr(`skein: ${e.text}\n`)
    const n = r.errors.length
    throw new SkeinError('invalid-spec', `${n} ${n === 1 ? 'error' : 'errors'} in ${file}: nothing applied`)
  }
  return r.stack
}
