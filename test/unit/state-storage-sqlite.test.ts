import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SkeinError } from '../../src/core/errors.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { seededRng } from '../../src/core/rng.ts'
import { createStateReplica } from '../../src/state/replica.ts'
import { openSqliteStateStorage } from '../../src/state/storage-sqlite.ts'
import { openStore } from '../../src/storage/store.ts'
import { createFilteredTransport } from '../../src/transport/filter.ts'
import type { Transport } from '../../src/transport/types.ts'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function freshStore(): ReturnType<typeof openStore> {
  const dir = mkdtempSync(join(tmpdir(), 'skein-state-sqlite-'))
  dirs.push(dir)
  return openStore(join(dir, 'skein.db'), { logger: silentLogger() })
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('SqliteStateStorage', () => {
  it('persists every effect of a call and restores a replica with the same digest and history', () => {
    const store = freshStore()
    const storage = openSqliteStateStorage(store)
    expect(storage.isEmpty()).toBe(true)
    const now = 1_700_000_000_000
    const r = createStateReplica({ nodeId: 'p1', rng: seededRng(1), now, founder: true })
    storage.persist(r.tick(now))
    for (let i = 0; i < 5; i++) storage.persist(r.apply([{ key: 'web', value: bytes(`v${i}`) }, { key: `s${i}`, value: bytes('x') }], now + i).effects)
    storage.persist(r.remove('s1', now + 10).effects)
    expect(storage.isEmpty()).toBe(false)
    const back = createStateReplica({ nodeId: 'p1', rng: seededRng(2), now: now + 20, restore: storage.load() })
    expect(Buffer.from(back.root()).toString('hex')).toBe(Buffer.from(r.root()).toString('hex'))
    expect(back.history('web').map((e) => e.revision)).toEqual([1, 2, 3, 4, 5])
    expect(back.get('s1')?.value).toBeNull()
    expect(back.status()).toBe('current')
    // A write after the restart is ordered after everything persisted.
    const w = back.put('web', bytes('later'), now).result.entry
    expect(w?.revision).toBe(6)
    expect(w?.hlc.wall).toBeGreaterThanOrEqual(now + 10)
    store.close()
  })

  it('refuses a malformed row with a clear SkeinError', () => {
    const store = freshStore()
    const storage = openSqliteStateStorage(store)
    const r = createStateReplica({ nodeId: 'p1', rng: seededRng(1), now: 1000, founder: true })
    storage.persist(r.put('web', bytes('v'), 1000).effects)
    store.prepare('UPDATE state_entries SET wall = -5').run()
    let err: unknown
    try {
      storage.load()
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(SkeinError)
    expect((err as SkeinError).code).toBe('state-store-corrupt')
    expect((err as SkeinError).message).toMatch(/desired state in .* is inconsistent: the entry of "web" has an invalid clock/)
    store.close()
  })
})

describe('createFilteredTransport', () => {
  it('drops direct messages and gossip to and from blocked peers, until unblocked', async () => {
    const direct: ((from: string, d: Uint8Array) => void)[] = []
    const topics: { validate: (f: string, d: Uint8Array) => string; deliver: (f: string, d: Uint8Array) => void }[] = []
    const sent: string[] = []
    const inner = {
      selfId: 'me',
      send: async (to: string) => void sent.push(to),
      handle: (_p: string, h: (from: string, d: Uint8Array) => void) => void direct.push(h),
      subscribe: (_t: string, h: (typeof topics)[number]) => void topics.push(h),
    } as unknown as Transport
    const f = createFilteredTransport(inner)
    const got: string[] = []
    f.handle('/p', (from) => void got.push(from))
    f.subscribe('t', { validate: () => 'accept', deliver: (from) => void got.push(`g:${from}`) })
    f.block(['bad'])
    await expect(f.send('bad', '/p', bytes('x'))).rejects.toThrow(/blocked/)
    await f.send('good', '/p', bytes('x'))
    direct[0]?.('bad', bytes('x'))
    direct[0]?.('good', bytes('x'))
    expect(topics[0]?.validate('bad', bytes('x'))).toBe('ignore')
    expect(topics[0]?.validate('good', bytes('x'))).toBe('accept')
    topics[0]?.deliver('good', bytes('x'))
    expect(got).toEqual(['good', 'g:good'])
    expect(sent).toEqual(['good'])
    f.unblock()
    expect(f.blocked()).toEqual([])
    direct[0]?.('bad', bytes('x'))
    expect(got).toContain('bad')
  })
})
