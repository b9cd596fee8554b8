// When a service has invalid fields, parse it again without them, so that the checks that span
// fields (undeclared volumes, duplicate ports, limits below reservations…) still run and every
// error in the file is reported, not only the first layer of them.
import type { z } from 'zod'
import { isPlainMap } from './source.ts'

const ROUNDS = 6

function cut(path: readonly PropertyKey[]): (string | number)[] {
  // Stop at the first list index: removing a list element would shift the paths of the others.
  const out: (string | number)[] = []
  for (const seg of path) {
    if (typeof seg !== 'string') break
    out.push(seg)
  }
  return out
}

function remove(root: Record<string, unknown>, path: readonly (string | number)[]): boolean {
  let cur: unknown = root
  for (let i = 0; i < path.length - 1; i++) {
    if (!isPlainMap(cur)) return false
    cur = cur[path[i] as string]
  }
  const last = path[path.length - 1]
  if (!isPlainMap(cur) || typeof last !== 'string' || !Object.hasOwn(cur, last)) return false
  delete cur[last]
  return true
}

function related(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Parses `value` with `schema` after removing the fields that `issues` point at (and, if that is
 * not enough, their parents), for up to a few rounds. `placeholders` fill required top-level
 * fields that had to go. Returns the data and the new issues found on the way (those that are not
 * about what was removed), or undefined if nothing parseable is left.
 */
export function salvage<S extends z.ZodType>(schema: S, value: unknown, issues: readonly z.core.$ZodIssue[], placeholders: Readonly<Record<string, unknown>> = {}): { data: z.output<S>; issues: z.core.$ZodIssue[] } | undefined {
  if (!isPlainMap(value)) return undefined
  const copy = structuredClone(value)
  const removed: (string | number)[][] = []
  const found: z.core.$ZodIssue[] = []
  let pending = issues
  for (let round = 0; round < ROUNDS; round++) {
    const paths = pending.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k]) : [i.path]))
    for (const issuePath of paths) {
      let path = cut(issuePath)
      const top = path[0]
      if (path.length === 1 && top !== undefined && Object.hasOwn(placeholders, top) && !Object.hasOwn(copy, top)) {
        copy[top] = placeholders[top]
        continue
      }
      while (path.length > 0 && !remove(copy, path)) path = path.slice(0, -1)
      if (path.length === 0) return undefined
      removed.push(path)
      if (path.length === 1 && top !== undefined && Object.hasOwn(placeholders, top)) copy[top] = placeholders[top]
    }
    const r = schema.safeParse(copy)
    if (r.success) return { data: r.data, issues: found }
    pending = r.error.issues
    if (round > 0 || pending !== issues) found.push(...pending.filter((i) => !removed.some((p) => related(p, i.path))))
  }
  return undefined
}
