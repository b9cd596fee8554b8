import { InvalidArgumentError } from 'commander'
import { SkeinError } from '../core/errors.ts'
import { formatHostPort, looksLikeMultiaddr, parseHostPort } from '../core/hostport.ts'
import { DEFAULT_PEER_PORT } from '../peer/datadir.ts'
import { parseLabel, validateName } from '../peer/naming.ts'
import { parseJoinToken } from '../peer/token.ts'
import { MAX_RESTART_GRACE_MS } from '../peer/running-extras.ts'
import { formatDuration, parseDuration } from '../model/units.ts'

/**
 * Commander argument parsers. Each checks one flag value and throws commander's
 * InvalidArgumentError (a usage error, exit code 2) with a one-line reason.
 */

function usage<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof SkeinError) throw new InvalidArgumentError(err.oneLine())
    throw err
  }
}

/** `HOST:PORT` for a listening address (port 0 allowed: pick a free port). */
export function listenAddress(value: string): string {
  return usage(() => formatHostPort(parseHostPort(value, { what: 'address' })))
}

/** `HOST:PORT` that others dial: port 0 is refused. */
export function dialAddress(value: string): string {
  return usage(() => {
    const hp = parseHostPort(value, { what: 'address' })
    if (hp.port === 0) throw new SkeinError('bad-address', `${value}: port 0 cannot be dialled`)
    return formatHostPort(hp)
  })
}

/** Repeatable `--join`: `host[:port]` (default port 7420) or a multiaddr; commas separate several. */
export function collectJoin(value: string, previous: string[] | undefined): string[] {
  const out = [...(previous ?? [])]
  for (const part of value.split(',')) {
    const v = part.trim()
    if (v === '') continue
    if (v.startsWith('/')) {
      if (!looksLikeMultiaddr(v)) throw new InvalidArgumentError(`'${v}' is not a multiaddr (for example /ip4/10.0.0.5/tcp/7420)`)
      out.push(v)
      continue
    }
    out.push(
      usage(() => {
        const hp = parseHostPort(v, { what: 'join address', defaultPort: DEFAULT_PEER_PORT })
        if (hp.port === 0) throw new SkeinError('bad-address', `join address ${v}: port 0 cannot be dialled`)
        return formatHostPort(hp)
      }),
    )
  }
  if (out.length === (previous?.length ?? 0)) throw new InvalidArgumentError('the address is empty')
  return out
}

/** Repeatable `--label key=value`: later values of a key win. */
export function collectLabel(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const [k, v] = usage(() => parseLabel(value))
  return { ...(previous ?? {}), [k]: v }
}

/** `--name`. */
export function nodeName(value: string): string {
  return usage(() => validateName(value))
}

/** `--token`: checked now so that a mangled token is a usage error before anything starts. */
export function joinToken(value: string): string {
  usage(() => parseJoinToken(value))
  return value.trim()
}

/** A positive integer flag value. */
export function positiveInt(value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive integer`)
  return n
}

/** `--voters`: an odd number from 1 to 9. */
export function voterCount(value: string): number {
  const n = positiveInt(value)
  if (n > 9 || n % 2 === 0) throw new InvalidArgumentError(`${n} voters: use an odd number from 1 to 9 (an even count survives no more failures than one fewer)`)
  return n
}

/** `--restart-grace`: a duration (`30s`, `2m`) up to MAX_RESTART_GRACE_MS; `0` disables. In ms. */
export function restartGrace(value: string): number {
  const ms = parseDuration(value)
  if (ms === undefined) throw new InvalidArgumentError(`'${value}' is not a duration (for example 30s, 2m, or 0 to disable)`)
  if (ms > MAX_RESTART_GRACE_MS) throw new InvalidArgumentError(`${value}: the restart grace is at most ${formatDuration(MAX_RESTART_GRACE_MS)}`)
  return ms
}
