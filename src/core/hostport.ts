import { isIP } from 'node:net'
import { SkeinError } from './errors.ts'

/** A network address as `host` and `port`. IPv6 hosts are kept without brackets. */
export interface HostPort {
  host: string
  port: number
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/

/**
 * Parse `host:port` (or `[v6]:port`). `what` names the value in the error ("--listen").
 * With `defaultPort`, a bare host is accepted. Throws SkeinError 'bad-address'.
 */
export function parseHostPort(text: string, opts: { what?: string; defaultPort?: number } = {}): HostPort {
  const what = opts.what ?? 'address'
  const bad = (why: string): SkeinError =>
    new SkeinError('bad-address', `${what}: '${text}' is not a valid HOST:PORT (${why})`, { hint: 'for example 127.0.0.1:7420 or [::1]:7420' })
  const s = text.trim()
  if (s === '') throw bad('it is empty')
  let host: string
  let portText: string | undefined
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end < 0) throw bad('missing ]')
    host = s.slice(1, end)
    const rest = s.slice(end + 1)
    if (rest !== '' && !rest.startsWith(':')) throw bad('unexpected text after ]')
    portText = rest === '' ? undefined : rest.slice(1)
    if (isIP(host) !== 6) throw bad('not an IPv6 address inside [ ]')
  } else {
    const colons = s.split(':').length - 1
    if (colons > 1) throw bad('put IPv6 addresses in brackets')
    const i = s.lastIndexOf(':')
    host = i < 0 ? s : s.slice(0, i)
    portText = i < 0 ? undefined : s.slice(i + 1)
    if (host === '') throw bad('the host is missing')
    if (isIP(host) === 0 && !HOSTNAME.test(host)) throw bad(`'${host}' is not a host name or IP address`)
  }
  let port: number
  if (portText === undefined) {
    if (opts.defaultPort === undefined) throw bad('the port is missing')
    port = opts.defaultPort
  } else {
    if (!/^\d{1,5}$/.test(portText)) throw bad(`'${portText}' is not a port number`)
    port = Number(portText)
    if (port > 65535) throw bad(`port ${port} is above 65535`)
  }
  return { host, port }
}

/** `host:port`, with brackets around IPv6 hosts. */
export function formatHostPort(hp: HostPort): string {
  return isIP(hp.host) === 6 ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`
}

/** True for the any-address hosts (`0.0.0.0`, `::`) that a server binds but nobody dials. */
export function isUnspecifiedHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === ''
}

/** True if `text` looks like a multiaddr (`/ip4/…/tcp/…`); the transport checks the details. */
export function looksLikeMultiaddr(text: string): boolean {
  return /^\/[a-z0-9-]+\/[^/]+/.test(text.trim())
}
