import { mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync, closeSync, chmodSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { SkeinError } from '../../src/core/errors.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { openStore, storeError, type Store } from '../../src/storage/store.ts'

const logger = silentLogger()

describe('store', () => {
  let dir: string
  let path: string
  const open: Store[] = []
  const openHere = (p = path): Store => {
    const s = openStore(p, { logger })
    open.push(s)
    return s
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-store-'))
    path = join(dir, 'skein.db')
  })
  afterEach(() => {
    for (const s of open.splice(0)) s.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('puts and gets values of several types, and they survive a reopen', () => {
    const s = openHere()
    s.put('n', 42)
    s.put('obj', { a: [1, 2, { b: 'c' }], flag: true })
    s.put('bytes', new Uint8Array([1, 2, 3]))
    s.put('n', 43)
    expect(s.get('missing')).toBeUndefined()
    s.close()
    const t = openHere()
    expect(t.get<number>('n')).toBe(43)
    expect(t.get('obj')).toEqual({ a: [1, 2, { b: 'c' }], flag: true })
    expect([...(t.get<Uint8Array>('bytes') ?? [])]).toEqual([1, 2, 3])
    expect(t.keys()).toEqual(['bytes', 'n', 'obj'])
  })

  it('runs in WAL mode with synchronous=FULL and a private file', () => {
    const s = openHere()
    expect(s.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' })
    // 2 = FULL
    expect(s.prepare('PRAGMA synchronous').get()).toEqual({ synchronous: 2 })
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })

  it('deletes and lists by prefix', () => {
    const s = openHere()
    s.put('peer/a', 1)
    s.put('peer/b', 2)
    s.put('other', 3)
    expect(s.keys('peer/')).toEqual(['peer/a', 'peer/b'])
    expect(s.delete('peer/a')).toBe(true)
    expect(s.delete('peer/a')).toBe(false)
    expect(s.keys('peer/')).toEqual(['peer/b'])
  })

  it('rejects undefined values', () => {
    expect(() => openHere().put('k', undefined)).toThrow(/undefined/)
  })

  it('commits a transaction as a whole, or not at all', () => {
    const s = openHere()
    s.transaction(() => {
      s.put('a', 1)
      s.put('b', 2)
    })
    expect(() =>
      s.transaction(() => {
        s.put('a', 100)
        s.put('c', 3)
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect(s.get('a')).toBe(1)
    expect(s.get('c')).toBeUndefined()
  })

  it('nests transactions as savepoints', () => {
    const s = openHere()
    const out = s.transaction(() => {
      s.put('outer', 1)
      try {
        s.transaction(() => {
          s.put('inner', 1)
          throw new Error('inner fails')
        })
      } catch {
        // the outer transaction carries on
      }
      s.transaction(() => s.put('inner2', 2))
      return 'done'
    })
    expect(out).toBe('done')
    expect(s.get('outer')).toBe(1)
    expect(s.get('inner')).toBeUndefined()
    expect(s.get('inner2')).toBe(2)
  })

  it('refuses an async transaction function and rolls it back', () => {
    const s = openHere()
    expect(() => s.transaction(async () => s.put('x', 1))).toThrow(/synchronous/)
    expect(s.get('x')).toBeUndefined()
  })

  it('checks values against a schema', () => {
    const s = openHere()
    s.put('cfg', { port: 'not a number' })
    const schema = z.object({ port: z.number() })
    expect(() => s.get('cfg', schema)).toThrow(SkeinError)
    expect(() => s.get('cfg', schema)).toThrow(/cfg.*port/)
    s.put('cfg', { port: 7420 })
    expect(s.get('cfg', schema)).toEqual({ port: 7420 })
  })

  it('applies migrations once, in order, and remembers the version', () => {
    const s = openHere()
    const steps = ['CREATE TABLE log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL)', 'ALTER TABLE log ADD COLUMN data BLOB']
    expect(s.migrate('raft', steps.slice(0, 1))).toBe(1)
    expect(s.migrate('raft', steps)).toBe(2)
    expect(s.migrate('raft', steps)).toBe(2)
    s.prepare('INSERT INTO log (idx, term, data) VALUES (?, ?, ?)').run(1, 1, new Uint8Array([9]))
    expect(s.prepare('SELECT term FROM log WHERE idx = 1').get()).toEqual({ term: 1 })
    expect(() => s.migrate('raft', steps.slice(0, 1))).toThrow(/newer/)
  })

  it('gives a clear SkeinError for a file that is not a database, and leaves it alone', () => {
    writeFileSync(path, Buffer.alloc(8192, 7))
    let err: unknown
    try {
      openHere()
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(SkeinError)
    expect((err as SkeinError).code).toBe('store-corrupt')
    expect((err as SkeinError).message).toContain(path)
    expect((err as SkeinError).oneLine()).toMatch(/corrupt.*backup/)
    // never a silent reset: the bytes are still there
    expect(statSync(path).size).toBe(8192)
  })

  it('detects a damaged page at open (quick_check)', () => {
    const s = openStore(path, { logger })
    s.transaction(() => {
      for (let i = 0; i < 2000; i++) s.put(`k${i}`, new Uint8Array(100).fill(i % 250))
    })
    s.close()
    const fd = openSync(path, 'r+')
    writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 4096 * 3)
    closeSync(fd)
    expect(() => openHere()).toThrow(expect.objectContaining({ code: 'store-corrupt' }))
  })

  it('reports a store whose directory is missing or unreadable', () => {
    expect(() => openHere(join(dir, 'nope', 'skein.db'))).toThrow(expect.objectContaining({ code: 'store-unreadable' }))
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked')
      mkdirSync(locked, { mode: 0o000 })
      try {
        expect(() => openHere(join(locked, 'skein.db'))).toThrow(expect.objectContaining({ code: 'store-unreadable' }))
      } finally {
        chmodSync(locked, 0o700)
      }
    }
  })

  it('maps SQLite result codes to SkeinError codes', () => {
    const e = (errcode: number): string => storeError('/x.db', Object.assign(new Error('m'), { errcode }), 'reading').code
    expect(e(11)).toBe('store-corrupt')
    expect(e(26)).toBe('store-corrupt')
    expect(e(14)).toBe('store-unreadable')
    expect(e(5)).toBe('store-busy')
    expect(e(13)).toBe('store-full')
    expect(e(266)).toBe('store-io') // SQLITE_IOERR_READ: extended codes map by their primary code
    expect(e(1)).toBe('store-error')
  })

  it('refuses use after close', () => {
    const s = openStore(path, { logger })
    s.close()
    s.close()
    expect(() => s.get('k')).toThrow(expect.objectContaining({ code: 'store-closed' }))
  })
})
