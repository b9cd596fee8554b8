import { SkeinError } from '../core/errors.ts'

/**
 * Rules for node names and labels, shared by the CLI flags and the data dir.
 *
 * - A name: 1-63 characters, letters, digits, `.`, `_`, `-`, starting with a letter or digit.
 * - A label key: 1-63 characters, letters, digits, `.`, `_`, `-`, `/`, starting and ending with a
 *   letter or digit (for example `zone`, `skein.io/arch`).
 * - A label value: up to 253 characters without whitespace, `,` or control characters (may be empty).
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
export const LABEL_KEY_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/
export const LABEL_VALUE_PATTERN = /^[^\s,\u0000-\u001f\u007f]{0,253}$/

/** Check a node name; throws SkeinError 'bad-flag'. */
export function validateName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new SkeinError('bad-flag', `'${name}' is not a valid node name`, { hint: 'use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit' })
  }
  return name
}

/** Parse one `key=value` label; throws SkeinError 'bad-flag'. */
export function parseLabel(text: string): [string, string] {
  const i = text.indexOf('=')
  if (i < 0) throw new SkeinError('bad-flag', `label '${text}' has no '=': labels are key=value, for example zone=eu-1`)
  const key = text.slice(0, i)
  const value = text.slice(i + 1)
  if (!LABEL_KEY_PATTERN.test(key)) {
    throw new SkeinError('bad-flag', `label key '${key}' is not valid`, { hint: 'use up to 63 letters, digits, ".", "_", "-" or "/", starting and ending with a letter or digit' })
  }
  if (!LABEL_VALUE_PATTERN.test(value)) {
    throw new SkeinError('bad-flag', `label value '${value}' of '${key}' is not valid`, { hint: 'up to 253 characters, without spaces or commas' })
  }
  return [key, value]
}

/** A valid node name made from a host name (`My Host.local` → `My-Host.local`), or 'skein'. */
export function defaultNodeName(hostname: string): string {
  const cleaned = hostname
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63)
  return NAME_PATTERN.test(cleaned) ? cleaned : 'skein'
}
