/**
 * The behaviour every RaftStorage must have. Run it against each implementation:
 *   describeRaftStorage('sqlite', () => openSqliteRaftStorage(tmp))
 */
import { describe, expect, it } from 'vitest'
import { encodeConfChange } from '../../src/consensus/confchange.ts'
import { bootstrap, type RaftStorage } from '../../src/consensus/storage.ts'
import type { Entry, Snapshot } from '../../src/consensus/types.ts'

const e = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index & 0xff, term & 0xff]) })
const snap = (index: number, term: number, voters: string[]): Snapshot => ({ index, term, conf: { voters, learners: ['l'] }, data: new Uint8Array([7, index & 0xff]) })

export function describeRaftStorage(name: string, make: () => RaftStorage): void {
  describe(`RaftStorage contract: ${name}`, () => {
    it('starts empty', () => {
      const s = make()
      expect([s.firstIndex(), s.lastIndex(), s.term(0), s.term(1)]).toEqual([1, 0, 0, undefined])
      expect(s.initialState()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, conf: { voters: [], learners: [] } })
      expect(s.entries(1, 1)).toEqual([])
      expect(s.snapshot()).toMatchObject({ index: 0, term: 0 })
    })

    it('appends, and replaces a conflicting suffix', () => {
      const s = make()
      s.append([e(1, 1), e(2, 1), e(3, 1)])
      s.append([e(2, 2)])
      expect([s.lastIndex(), s.term(2), s.term(3)]).toEqual([2, 2, undefined])
      s.append([e(3, 2), e(4, 3)])
      expect(s.entries(2, 5)).toEqual([e(2, 2), e(3, 2), e(4, 3)])
      expect(() => s.append([e(9, 3)])).toThrow()
      s.append([])
      expect(s.lastIndex()).toBe(4)
    })

    it('keeps the hard state', () => {
      const s = make()
      s.setHardState({ term: 4, vote: 'peer-x', commit: 0 })
      s.setHardState({ term: 5, vote: null, commit: 0 })
      expect(s.initialState().hardState).toEqual({ term: 5, vote: null, commit: 0 })
    })

    it('compacts: keeps the snapshot with its configuration, drops the entries up to it', () => {
      const s = make()
      s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)])
      s.compact(snap(2, 1, ['a', 'b']))
      expect([s.firstIndex(), s.lastIndex(), s.term(2), s.term(1), s.term(3)]).toEqual([3, 4, 1, undefined, 2])
      expect(s.entries(3, 5)).toEqual([e(3, 2), e(4, 2)])
      expect(s.snapshot()).toEqual(snap(2, 1, ['a', 'b']))
      expect(s.initialState().conf).toEqual({ voters: ['a', 'b'], learners: ['l'] })
      s.append([e(2, 1), e(3, 2), e(4, 2), e(5, 3)]) // at or below the snapshot: skipped
      expect([s.firstIndex(), s.lastIndex(), s.term(5)]).toEqual([3, 5, 3])
      s.compact(snap(1, 1, ['a'])) // older than the current snapshot: nothing happens
      expect(s.firstIndex()).toBe(3)
    })

    it('applies a snapshot from the leader: the whole log is replaced', () => {
      const s = make()
      s.append([e(1, 1), e(2, 1)])
      s.applySnapshot(snap(10, 4, ['a', 'b', 'c']))
      expect([s.firstIndex(), s.lastIndex(), s.term(10), s.term(2)]).toEqual([11, 10, 4, undefined])
      expect(s.snapshot()).toEqual(snap(10, 4, ['a', 'b', 'c']))
      s.append([e(11, 4)])
      expect(s.entries(11, 12)).toEqual([e(11, 4)])
    })

    it('can be bootstrapped once', () => {
      const s = make()
      bootstrap(s, ['a', 'b'])
      expect(s.entries(1, 3).map((x) => x.data)).toEqual([encodeConfChange({ type: 'add-voter', id: 'a' }), encodeConfChange({ type: 'add-voter', id: 'b' })])
      expect(s.initialState().hardState).toEqual({ term: 1, vote: null, commit: 2 })
      expect(() => bootstrap(s, ['a'])).toThrow()
    })
  })
}
