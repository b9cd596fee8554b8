import { describe, expect, it } from 'vitest'
import { SkeinError } from '../../src/core/errors.ts'
import {
  formatAddress,
  generateClusterKey,
  generateIdentity,
  parseAddress,
  parseListenAddress,
  peerIdOfIdentity,
  pnetKeyFile,
} from '../../src/transport/libp2p-keys.ts'

const PEER = '12D3KooWSWq3JtcGc8JbqmbjMduRZs2rMoTDWhePQ7WcvVzabibk'

function errorOf(fn: () => unknown): SkeinError {
  try {
    fn()
  } catch (err) {
    if (err instanceof SkeinError) return err
    throw new Error(`expected a SkeinError, got ${String(err)}`)
  }
  throw new Error('expected an error')
}

describe('parseAddress', () => {
  it.each([
    ['10.0.0.1:7946', '/ip4/10.0.0.1/tcp/7946'],
    ['[::1]:7946', '/ip6/::1/tcp/7946'],
    ['[fd00::12:1]:80', '/ip6/fd00::12:1/tcp/80'],
    ['node-a.lan:7946', '/dns4/node-a.lan/tcp/7946'],
    ['Node-A.LAN:7946', '/dns4/node-a.lan/tcp/7946'],
    ['localhost:1', '/dns4/localhost/tcp/1'],
    ['  10.0.0.1:65535 ', '/ip4/10.0.0.1/tcp/65535'],
    ['/ip4/10.0.0.1/tcp/7946', '/ip4/10.0.0.1/tcp/7946'],
    ['/dns4/example.org/tcp/7946', '/dns4/example.org/tcp/7946'],
    ['/ip6/::1/tcp/7946', '/ip6/::1/tcp/7946'],
  ])('%s → %s', (input, expected) => {
    expect(parseAddress(input).toString()).toBe(expected)
  })

  it('appends /p2p/<id> when a peer id is given', () => {
    expect(parseAddress('10.0.0.1:7946', PEER).toString()).toBe(`/ip4/10.0.0.1/tcp/7946/p2p/${PEER}`)
    expect(parseAddress(`/ip4/10.0.0.1/tcp/7946/p2p/${PEER}`, PEER).toString()).toBe(`/ip4/10.0.0.1/tcp/7946/p2p/${PEER}`)
  })

  it('refuses a multiaddr that names another peer', () => {
    const other = '12D3KooWFqd4Fu6ZaS849SsXxXs1GQx9syfmCveaMoPYDdDhe5nq'
    expect(errorOf(() => parseAddress(`/ip4/10.0.0.1/tcp/7946/p2p/${other}`, PEER)).message).toContain('was expected')
  })

  it('explains a bare IP address', () => {
    const err = errorOf(() => parseAddress('10.0.0.1'))
    expect(err.code).toBe('bad-address')
    expect(err.message).toBe('"10.0.0.1" is not an address: expected host:port or a multiaddr such as /ip4/10.0.0.1/tcp/7946')
  })

  it.each([
    ['', 'empty'],
    ['::1', 'brackets'],
    ['fd00::1:7946', 'brackets'],
    ['[::1', 'brackets'],
    ['[10.0.0.1]:80', 'not an IPv6 address'],
    ['1.2.3:5', 'not an IPv4 address'],
    ['256.0.0.1:80', 'not an IPv4 address'],
    ['10.0.0.1:0', 'out of range'],
    ['10.0.0.1:65536', 'out of range'],
    ['10.0.0.1:http', 'not a port number'],
    ['10.0.0.1:', 'not a port number'],
    ['a_b:5', 'not a host name'],
    ['-a:5', 'not a host name'],
    ['/ip4/10.0.0.1/udp/7946', 'not a TCP address'],
    ['/garbage', 'not a valid multiaddr'],
    ['/ip4/999.0.0.1/tcp/1', 'not a valid multiaddr'],
  ])('refuses %j (%s)', (input, fragment) => {
    const err = errorOf(() => parseAddress(input))
    expect(err.code).toBe('bad-address')
    expect(err.message).toContain(fragment)
  })
})

describe('parseListenAddress', () => {
  it('accepts port 0 and wildcard addresses', () => {
    expect(parseListenAddress('127.0.0.1:0').toString()).toBe('/ip4/127.0.0.1/tcp/0')
    expect(parseListenAddress('0.0.0.0:7946').toString()).toBe('/ip4/0.0.0.0/tcp/7946')
    expect(parseListenAddress('[::]:7946').toString()).toBe('/ip6/::/tcp/7946')
  })

  it('refuses host names and missing ports', () => {
    expect(errorOf(() => parseListenAddress('node-a.lan:7946')).message).toContain('needs an IP address')
    expect(errorOf(() => parseListenAddress('0.0.0.0')).message).toContain('expected ip:port')
  })
})

describe('formatAddress', () => {
  it('prints host:port and drops /p2p', () => {
    expect(formatAddress(parseAddress('10.0.0.1:7946', PEER))).toBe('10.0.0.1:7946')
    expect(formatAddress(parseAddress('[fd00::1]:7946'))).toBe('[fd00::1]:7946')
    expect(formatAddress(parseAddress('node-a.lan:7946'))).toBe('node-a.lan:7946')
  })

  it('round-trips through parseAddress', () => {
    for (const a of ['10.0.0.1:7946', '[fd00::1]:7946', 'node-a.lan:7946']) {
      expect(formatAddress(parseAddress(a))).toBe(a)
    }
  })
})

describe('keys', () => {
  it('an identity round-trips to a stable peer id', async () => {
    const id = await generateIdentity()
    const peer = peerIdOfIdentity(id)
    expect(peer).toMatch(/^12D3KooW/)
    expect(peerIdOfIdentity(id.slice())).toBe(peer)
    expect(peerIdOfIdentity(await generateIdentity())).not.toBe(peer)
  })

  it('refuses bytes that are not a key', () => {
    expect(errorOf(() => peerIdOfIdentity(new Uint8Array([1, 2, 3]))).code).toBe('bad-identity')
  })

  it('writes the pnet swarm-key file', () => {
    const key = generateClusterKey()
    expect(key.byteLength).toBe(32)
    const text = new TextDecoder().decode(pnetKeyFile(key))
    const lines = text.split('\n')
    expect(lines[0]).toBe('/key/swarm/psk/1.0.0/')
    expect(lines[1]).toBe('/base16/')
    expect(lines[2]).toBe(Buffer.from(key).toString('hex'))
    expect(lines[2]).toMatch(/^[0-9a-f]{64}$/)
    expect(errorOf(() => pnetKeyFile(new Uint8Array(31))).code).toBe('bad-cluster-key')
  })
})
