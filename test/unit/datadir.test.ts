import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SkeinError } from '../../src/core/errors.ts'
import { silentLogger } from '../../src/core/logger.ts'
import {
  initOrLoad,
  readApiInfo,
  readApiToken,
  readClusterKey,
  removeApiInfo,
  resolveDataDir,
  saveMembership,
  writeApiInfo,
  type KeyFunctions,
  type LoadedDataDir,
} from '../../src/peer/datadir.ts'
import { fsError } from '../../src/peer/files.ts'
import { defaultNodeName, parseLabel, validateName } from '../../src/peer/naming.ts'
import { clusterIdOf, encodeJoinToken, parseJoinToken } from '../../src/peer/token.ts'

const logger = silentLogger()
const keys: KeyFunctions = {
  generateIdentity: async () => new Uint8Array(randomBytes(36)),
  peerIdOfIdentity: (b) => {
    if (b.length !== 36) throw new Error('bad key length')
    return `peer-${createHash('sha256').update(b).digest('hex').slice(0, 16)}`
  },
  generateClusterKey: () => new Uint8Array(randomBytes(32)),
}

const mode = (p: string): number => statSync(p).mode & 0o777

describe('join token', () => {
  it('round-trips a cluster key and has the documented shape', () => {
    const key = new Uint8Array(randomBytes(32))
    const t = encodeJoinToken(key)
    expect(t).toMatch(/^skein1-[A-Za-z0-9_-]{48}$/)
    expect([...parseJoinToken(`  ${t}\n`)]).toEqual([...key])
  })

  it('explains what is wrong with a bad token', () => {
    const t = encodeJoinToken(new Uint8Array(randomBytes(32)))
    const msg = (s: string): string => {
      try {
        parseJoinToken(s)
      } catch (err) {
        expect(err).toBeInstanceOf(SkeinError)
        expect((err as SkeinError).code).toBe('bad-token')
        return (err as SkeinError).message
      }
      throw new Error(`accepted ${s}`)
    }
    expect(msg('')).toMatch(/empty/)
    expect(msg('hello-world')).toMatch(/start with skein1-/)
    expect(msg(t.slice(0, -3))).toMatch(/cut short/)
    expect(msg(`${t}abc`)).toMatch(/cut short/)
    expect(msg(`${t.slice(0, 20)} ${t.slice(21)}`)).toMatch(/characters/)
    // one character changed: the checksum catches it
    const flipped = t.slice(0, 10) + (t[10] === 'A' ? 'B' : 'A') + t.slice(11)
    expect(msg(flipped)).toMatch(/checksum/)
  })

  it('derives a short stable cluster id', () => {
    const key = new Uint8Array(32)
    expect(clusterIdOf(key)).toBe(createHash('sha256').update(key).digest('hex').slice(0, 12))
    expect(clusterIdOf(key)).toMatch(/^[0-9a-f]{12}$/)
  })
})

describe('names and labels', () => {
  it('validates names', () => {
    expect(validateName('host-1.lan')).toBe('host-1.lan')
    expect(() => validateName('-bad')).toThrow(SkeinError)
    expect(() => validateName('a'.repeat(64))).toThrow(/not a valid node name/)
  })
  it('parses labels', () => {
    expect(parseLabel('zone=eu-1')).toEqual(['zone', 'eu-1'])
    expect(parseLabel('skein.io/gpu=')).toEqual(['skein.io/gpu', ''])
    expect(parseLabel('k=a=b')).toEqual(['k', 'a=b'])
    expect(() => parseLabel('foo')).toThrow(/no '='/)
    expect(() => parseLabel('=x')).toThrow(/key/)
    expect(() => parseLabel('k=a b')).toThrow(/value/)
  })
  it('makes a default name from a host name', () => {
    expect(defaultNodeName('My Host.local')).toBe('My-Host.local')
    expect(defaultNodeName('***')).toBe('skein')
  })
})

describe('resolveDataDir', () => {
  it('follows flag, SKEIN_DATA_DIR, root, XDG, home', () => {
    expect(resolveDataDir({ flag: '/f', env: { SKEIN_DATA_DIR: '/e' }, uid: 1000 })).toBe('/f')
    expect(resolveDataDir({ env: { SKEIN_DATA_DIR: '/e' }, uid: 0 })).toBe('/e')
    expect(resolveDataDir({ env: { SKEIN_DATA_DIR: '', XDG_DATA_HOME: '/x' }, uid: 0 })).toBe('/var/lib/skein')
    expect(resolveDataDir({ env: { XDG_DATA_HOME: '/x' }, uid: 1000 })).toBe('/x/skein')
    expect(resolveDataDir({ env: {}, uid: 1000, homedir: '/home/u' })).toBe('/home/u/.local/share/skein')
  })
})

describe('initOrLoad', () => {
  let base: string
  let dir: string
  const loaded: LoadedDataDir[] = []
  const load = async (flags: Parameters<typeof initOrLoad>[1] = {}, d = dir): Promise<LoadedDataDir> => {
    const l = await initOrLoad(d, flags, { keys, logger, hostname: 'testhost' })
    loaded.push(l)
    return l
  }
  const closeAll = (): void => {
    for (const l of loaded.splice(0)) l.store.close()
  }

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'skein-dd-'))
    dir = join(base, 'data')
  })
  afterEach(() => {
    closeAll()
    rmSync(base, { recursive: true, force: true })
  })

  it('creates a new cluster with private files', async () => {
    const d = await load({ labels: { zone: 'a' } })
    expect(d.createdCluster).toBe(true)
    expect(d.createdIdentity).toBe(true)
    expect(d.settings).toEqual({ name: 'testhost', labels: { zone: 'a' }, listen: undefined, advertise: undefined, api: undefined })
    expect(d.incarnation).toBe(0)
    expect(mode(dir)).toBe(0o700)
    for (const f of ['identity.key', 'cluster.key', 'api.token', 'skein.db']) expect(mode(join(dir, f))).toBe(0o600)
    expect(readFileSync(join(dir, 'cluster.key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/)
    expect(readApiToken(dir)).toMatch(/^[0-9a-f]{64}$/)
    expect(d.apiToken).toBe(readApiToken(dir))
    expect(parseJoinToken(d.joinToken)).toEqual(d.clusterKey)
    expect(d.clusterId).toBe(clusterIdOf(d.clusterKey))
  })

  it('comes back as the same peer in the same cluster, with a higher incarnation and remembered settings', async () => {
    const a = await load({ name: 'n1', listen: '127.0.0.1:7500', labels: { zone: 'a' }, restartGraceMs: 0 })
    saveMembership(a.store, { incarnation: 3, peers: [{ id: 'p2', address: '127.0.0.1:7501' }] })
    closeAll()
    const b = await load()
    expect(b.createdCluster).toBe(false)
    expect(b.createdIdentity).toBe(false)
    expect(b.peerId).toBe(a.peerId)
    expect(b.clusterKey).toEqual(a.clusterKey)
    expect(b.apiToken).toBe(a.apiToken)
    expect(b.settings).toMatchObject({ name: 'n1', listen: '127.0.0.1:7500', labels: { zone: 'a' }, restartGraceMs: 0 })
    expect(b.incarnation).toBe(4)
    expect(b.peers).toEqual([{ id: 'p2', address: '127.0.0.1:7501' }])
    closeAll()
    // flags given again replace the remembered values
    const c = await load({ labels: { zone: 'b' }, restartGraceMs: 90_000 })
    expect(c.settings.labels).toEqual({ zone: 'b' })
    expect(c.settings.restartGraceMs).toBe(90_000)
    expect(c.settings.name).toBe('n1')
    expect(c.incarnation).toBe(5)
  })

  it('joins with a token: the cluster key comes from it', async () => {
    const key = new Uint8Array(randomBytes(32))
    const d = await load({ join: ['10.0.0.1:7420'], token: encodeJoinToken(key) })
    expect(d.createdCluster).toBe(false)
    expect(d.clusterKey).toEqual(key)
    expect(readClusterKey(dir)).toEqual(key)
  })

  it('refuses to join without a token, before writing any key', async () => {
    await expect(load({ join: ['10.0.0.1:7420'] })).rejects.toMatchObject({ code: 'token-required', message: expect.stringMatching(/--token/) })
    expect(existsSync(join(dir, 'cluster.key'))).toBe(false)
    expect(existsSync(join(dir, 'identity.key'))).toBe(false)
  })

  it('refuses a token of another cluster', async () => {
    await load()
    closeAll()
    const other = encodeJoinToken(new Uint8Array(randomBytes(32)))
    await expect(load({ token: other })).rejects.toMatchObject({ code: 'token-mismatch' })
    // the right token is fine
    const own = encodeJoinToken(readClusterKey(dir) as Uint8Array)
    await expect(load({ token: own, join: ['10.0.0.1:7420'] })).resolves.toMatchObject({ createdCluster: false })
  })

  it('accepts a raw 32-byte cluster key file and rejects garbage', async () => {
    mkdirSync(dir, { mode: 0o700 })
    const key = randomBytes(32)
    writeFileSync(join(dir, 'cluster.key'), key, { mode: 0o600 })
    expect(readClusterKey(dir)).toEqual(new Uint8Array(key))
    writeFileSync(join(dir, 'cluster.key'), 'not a key\n')
    expect(() => readClusterKey(dir)).toThrow(expect.objectContaining({ code: 'cluster-key-invalid' }))
  })

  it('reports a damaged identity clearly', async () => {
    await load()
    closeAll()
    writeFileSync(join(dir, 'identity.key'), 'xx')
    await expect(load()).rejects.toMatchObject({ code: 'identity-invalid', message: expect.stringContaining('identity.key') })
  })

  it('reports a data dir that is a file', async () => {
    writeFileSync(join(base, 'file'), 'x')
    await expect(load({}, join(base, 'file'))).rejects.toBeInstanceOf(SkeinError)
  })

  it.skipIf(process.getuid?.() === 0)('reports an unreadable data dir (EACCES)', async () => {
    mkdirSync(dir, { mode: 0o000 })
    try {
      await expect(load()).rejects.toMatchObject({ code: 'data-dir-unreadable', message: expect.stringMatching(/permission denied/) })
    } finally {
      chmodSync(dir, 0o700)
    }
  })

  it('maps EACCES to a one-line error naming the path', () => {
    const err = fsError('/var/lib/skein', '/var/lib/skein/cluster.key', Object.assign(new Error('x'), { code: 'EACCES' }), 'read')
    expect(err.code).toBe('data-dir-unreadable')
    expect(err.oneLine()).toBe(
      'cannot read /var/lib/skein/cluster.key: permission denied (run skein as the user that owns the data dir (sudo?), or pass --data-dir)',
    )
  })
})

describe('api.json', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-api-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('is written, read back, and removed only by its own pid', () => {
    expect(readApiInfo(dir)).toBeUndefined()
    const info = { address: '127.0.0.1:7421', pid: 1234, startedAt: new Date(0).toISOString(), version: '0.1.0' }
    writeApiInfo(dir, info)
    expect(readApiInfo(dir)).toEqual(info)
    removeApiInfo(dir, 999)
    expect(readApiInfo(dir)).toEqual(info)
    removeApiInfo(dir, 1234)
    expect(readApiInfo(dir)).toBeUndefined()
  })

  it('rejects a malformed api.json with a clear error', () => {
    writeFileSync(join(dir, 'api.json'), '{"address": 5}')
    expect(() => readApiInfo(dir)).toThrow(/api\.json/)
  })
})
