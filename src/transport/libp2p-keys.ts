/**
 * Identity keys, the cluster key, and peer addresses for the libp2p adapter.
 *
 * People write addresses as `host:port` (`10.0.0.1:7946`, `[fd00::1]:7946`, `node-a.lan:7946`);
 * libp2p wants multiaddrs (`/ip4/10.0.0.1/tcp/7946`). Both forms are accepted everywhere.
 */
import { randomBytes } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import { SkeinError, errorMessage } from '../core/errors.ts'

/** Length of the cluster key (the pnet pre-shared key) in bytes. */
export const CLUSTER_KEY_BYTES = 32

/** A new Ed25519 identity, as protobuf-marshalled private key bytes (what libp2p stores). */
export async function generateIdentity(): Promise<Uint8Array> {
  const key = await generateKeyPair('Ed25519')
  return privateKeyToProtobuf(key)
}

/** The private key inside identity bytes. Throws a SkeinError ('bad-identity') if they are not one. */
export function identityKey(identity: Uint8Array): PrivateKey {
  try {
    return privateKeyFromProtobuf(identity)
  } catch (err) {
    throw new SkeinError('bad-identity', `the stored identity is not a valid private key: ${errorMessage(err)}`, {
      hint: 'restore the identity from a backup, or remove it to start as a new peer',
      cause: err,
    })
  }
}

/** The peer id (`12D3KooW…`) of identity bytes from generateIdentity(). */
export function peerIdOfIdentity(identity: Uint8Array): string {
  return peerIdFromPrivateKey(identityKey(identity)).toString()
}

/** A new random cluster key: 32 bytes. */
export function generateClusterKey(): Uint8Array {
  return new Uint8Array(randomBytes(CLUSTER_KEY_BYTES))
}

/**
 * The swarm-key file that @libp2p/pnet expects for a cluster key:
 * `/key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits>`.
 */
export function pnetKeyFile(clusterKey: Uint8Array): Uint8Array {
  if (clusterKey.byteLength !== CLUSTER_KEY_BYTES) {
    throw new SkeinError('bad-cluster-key', `the cluster key has ${clusterKey.byteLength} bytes; it must have ${CLUSTER_KEY_BYTES}`)
  }
  const hex = Buffer.from(clusterKey.buffer, clusterKey.byteOffset, clusterKey.byteLength).toString('hex')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`)
}

interface HostPort {
  kind: 'ip4' | 'ip6' | 'dns4'
  host: string
  port: number
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

function badAddress(addr: string, why: string, example = '/ip4/10.0.0.1/tcp/7946'): SkeinError {
  return new SkeinError('bad-address', `"${addr}" is not an address: ${why}`, {
    hint: `write host:port, [ipv6]:port, or a multiaddr such as ${example}`,
  })
}

function parsePort(addr: string, text: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(text)) throw badAddress(addr, `"${text}" is not a port number`)
  const port = Number(text)
  if (port > 65535 || (port === 0 && !allowZero)) throw badAddress(addr, `port ${port} is out of range (1-65535)`)
  return port
}

/** Split `host:port`; undefined if `addr` has no port at all. */
function splitHostPort(addr: string, allowZero: boolean): HostPort | undefined {
  if (addr.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(addr)
    if (m === null) throw badAddress(addr, 'unbalanced brackets')
    const host = m[1] ?? ''
    if (!isIPv6(host)) throw badAddress(addr, `"${host}" is not an IPv6 address`, `/ip6/${isIPv6(host) ? host : 'fd00::1'}/tcp/7946`)
    if (m[2] === undefined) return undefined
    return { kind: 'ip6', host, port: parsePort(addr, m[2], allowZero) }
  }
  if (isIPv6(addr)) {
    throw badAddress(addr, `an IPv6 address goes in brackets, followed by a port, such as [${addr}]:7946`, `/ip6/${addr}/tcp/7946`)
  }
  const colon = addr.lastIndexOf(':')
  if (colon < 0) return undefined
  const host = addr.slice(0, colon)
  const port = parsePort(addr, addr.slice(colon + 1), allowZero)
  if (isIPv4(host)) return { kind: 'ip4', host, port }
  if (/^[\d.]+$/.test(host)) throw badAddress(addr, `"${host}" is not an IPv4 address`)
  if (!HOSTNAME.test(host)) throw badAddress(addr, `"${host}" is not a host name or IP address`)
  return { kind: 'dns4', host: host.toLowerCase(), port }
}

function fromMultiaddrString(addr: string): Multiaddr {
  let ma: Multiaddr
  try {
    ma = multiaddr(addr)
  } catch (err) {
    throw new SkeinError('bad-address', `"${addr}" is not a valid multiaddr: ${errorMessage(err)}`, {
      hint: 'for example /ip4/10.0.0.1/tcp/7946, or write host:port',
    })
  }
  const names = ma.getComponents().map((c) => c.name)
  if (!['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(names[0] ?? '') || names[1] !== 'tcp') {
    throw new SkeinError('bad-address', `"${addr}" is not a TCP address: skein peers listen on /ip4|ip6|dns4|dns6/<host>/tcp/<port>`)
  }
  return ma
}

function toMultiaddr(hp: HostPort): Multiaddr {
  return multiaddr(`/${hp.kind}/${hp.host}/tcp/${hp.port}`)
}

/**
 * Parse a peer address: `host:port` (IPv4, `[IPv6]:port`, or a DNS name, which becomes /dns4) or
 * a multiaddr string. With `peerId`, the result ends in `/p2p/<peerId>`, so that a dial checks
 * that the peer found there is the expected one. Throws a SkeinError ('bad-address').
 */
export function parseAddress(addr: string, peerId?: string): Multiaddr {
  const text = addr.trim()
  if (text === '') throw new SkeinError('bad-address', 'the address is empty', { hint: 'write host:port, for example 10.0.0.1:7946' })
  let ma: Multiaddr
  if (text.startsWith('/')) {
    ma = fromMultiaddrString(text)
  } else {
    const hp = splitHostPort(text, false)
    if (hp === undefined) {
      const example = isIPv4(text) ? `/ip4/${text}/tcp/7946` : HOSTNAME.test(text) ? `/dns4/${text}/tcp/7946` : '/ip4/10.0.0.1/tcp/7946'
      throw new SkeinError('bad-address', `"${text}" is not an address: expected host:port or a multiaddr such as ${example}`)
    }
    ma = toMultiaddr(hp)
  }
  if (peerId === undefined) return ma
  const named = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
  if (named === undefined) return ma.encapsulate(`/p2p/${peerId}`)
  if (named !== peerId) {
    throw new SkeinError('bad-address', `"${text}" names peer ${named}, but peer ${peerId} was expected`)
  }
  return ma
}

/**
 * Parse a listen address: `host:port` where host is an IP address (0.0.0.0 or [::] for all
 * interfaces) and port 0 asks the system for a free port; or a TCP multiaddr.
 */
export function parseListenAddress(addr: string): Multiaddr {
  const text = addr.trim()
  if (text.startsWith('/')) return fromMultiaddrString(text)
  const hp = splitHostPort(text, true)
  if (hp === undefined) {
    throw new SkeinError('bad-address', `"${text}" is not a listen address: expected ip:port, such as 0.0.0.0:7946`)
  }
  if (hp.kind === 'dns4') {
    throw new SkeinError('bad-address', `cannot listen on "${text}": a listen address needs an IP address, not a host name`, {
      hint: 'use 0.0.0.0:PORT for all interfaces, and --advertise host:port for the name peers should dial',
    })
  }
  return toMultiaddr(hp)
}

/**
 * A multiaddr as `host:port` (IPv6 in brackets). Any /p2p/ suffix is dropped. Addresses that are
 * not TCP over IP or DNS come back as multiaddr strings.
 */
export function formatAddress(ma: Multiaddr): string {
  const parts = ma.getComponents()
  const host = parts[0]
  const tcp = parts[1]
  if (host === undefined || tcp === undefined || tcp.name !== 'tcp' || host.value === undefined || tcp.value === undefined) {
    return ma.toString()
  }
  switch (host.name) {
    case 'ip4':
    case 'dns':
    case 'dns4':
    case 'dns6':
      return `${host.value}:${tcp.value}`
    case 'ip6':
      return `[${host.value}]:${tcp.value}`
    default:
      return ma.toString()
  }
}
