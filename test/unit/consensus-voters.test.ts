import { describe, expect, it } from 'vitest'
import { nextVoterChange, quorum, type PolicyMember, type VoterAction, type VoterPolicyConfig, type VoterPolicyInput } from '../../src/consensus/voters.ts'

const NOW = 1_000_000
const CONFIG: VoterPolicyConfig = { maxVoters: 5, deadGraceMs: 10_000, catchUpLag: 10 }

/** A situation in shorthand: voters/learners as ids; every member alive and caught up unless said otherwise. */
interface Situation {
  voters: string[]
  learners?: string[]
  /** Members outside the configuration (alive). */
  others?: string[]
  dead?: Record<string, number>
  left?: string[]
  suspect?: string[]
  lagging?: string[]
  silent?: string[]
  removals?: string[]
  pending?: boolean
  transferring?: boolean
  maxVoters?: number
  unknown?: string[]
}

function input(s: Situation): VoterPolicyInput {
  const learners = s.learners ?? []
  const ids = [...s.voters, ...learners, ...(s.others ?? [])]
  const members: PolicyMember[] = ids
    .filter((id) => !(s.unknown ?? []).includes(id))
    .map((id) => {
      const deadFor = s.dead?.[id]
      if (deadFor !== undefined) return { id, state: 'dead', since: NOW - deadFor }
      if (s.left?.includes(id)) return { id, state: 'left', since: NOW - 1 }
      if (s.suspect?.includes(id)) return { id, state: 'suspect', since: NOW - 1 }
      return { id, state: 'alive', since: NOW - 60_000 }
    })
  const progress: Record<string, { match: number; recentActive: boolean }> = {}
  for (const id of [...s.voters, ...learners]) {
    const gone = s.dead?.[id] !== undefined || (s.silent ?? []).includes(id)
    progress[id] = { match: (s.lagging ?? []).includes(id) ? 50 : 100, recentActive: !gone }
  }
  return {
    self: 'L',
    voters: s.voters,
    learners,
    progress,
    lastIndex: 100,
    pending: s.pending ?? false,
    transferring: s.transferring ?? false,
    members,
    removals: s.removals ?? [],
    now: NOW,
  }
}

const decide = (s: Situation): VoterAction | undefined => nextVoterChange(input(s), { ...CONFIG, maxVoters: s.maxVoters ?? CONFIG.maxVoters })
const short = (a: VoterAction | undefined): string => (a === undefined ? 'none' : a.type === 'transfer' ? `transfer ${a.to}` : `${a.type} ${a.id}`)

describe('voter policy', () => {
  it('quorum', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorum)).toEqual([1, 2, 2, 3, 3, 4, 4])
  })

  it.each<[string, Situation, string]>([
    // joiners
    ['a new alive member becomes a learner', { voters: ['L'], others: ['b'] }, 'add-learner b'],
    ['new members are added in id order', { voters: ['L'], others: ['d', 'c'] }, 'add-learner c'],
    ['a suspect or dead outsider is not added', { voters: ['L'], others: ['b', 'c'], suspect: ['b'], dead: { c: 1 } }, 'none'],
    ['nothing while a change is pending', { voters: ['L'], others: ['b'], pending: true }, 'none'],
    ['nothing during a transfer', { voters: ['L'], others: ['b'], transferring: true }, 'none'],
    // promotion, odd counts
    ['1 voter + 1 learner: stay at 1 (2 voters survive nothing more)', { voters: ['L'], learners: ['b'] }, 'none'],
    ['1 voter + 2 learners: promote toward 3', { voters: ['L'], learners: ['b', 'c'] }, 'add-voter b'],
    ['2 voters + 1 learner: promote to 3', { voters: ['L', 'b'], learners: ['c'] }, 'add-voter c'],
    ['3 voters + 1 learner: stay at 3', { voters: ['L', 'b', 'c'], learners: ['d'] }, 'none'],
    ['3 voters + 2 learners: promote toward 5', { voters: ['L', 'b', 'c'], learners: ['d', 'e'] }, 'add-voter d'],
    ['4 voters + 1 learner: promote to 5', { voters: ['L', 'b', 'c', 'd'], learners: ['e'] }, 'add-voter e'],
    ['5 voters: learners stay learners', { voters: ['L', 'b', 'c', 'd', 'e'], learners: ['f', 'g'] }, 'none'],
    ['--voters 3: 3 voters + 2 learners stay', { voters: ['L', 'b', 'c'], learners: ['d', 'e'], maxVoters: 3 }, 'none'],
    ['--voters 1: learners stay', { voters: ['L'], learners: ['b', 'c'], maxVoters: 1 }, 'none'],
    ['a lagging learner is not promoted', { voters: ['L'], learners: ['b', 'c'], lagging: ['c'] }, 'none'],
    ['a silent learner is not promoted', { voters: ['L', 'b'], learners: ['c'], silent: ['c'] }, 'none'],
    ['a suspect learner is not promoted', { voters: ['L', 'b'], learners: ['c'], suspect: ['c'] }, 'none'],
    ['the most caught-up learner is promoted first', { voters: ['L', 'b'], learners: ['c', 'd'], lagging: ['c'] }, 'add-voter d'],
    // dead voters
    ['a voter dead for less than the grace stays', { voters: ['L', 'b', 'c'], dead: { c: 9_000 } }, 'none'],
    ['a voter dead past the grace is removed', { voters: ['L', 'b', 'c'], dead: { c: 10_000 } }, 'remove c'],
    ['…even with no learner to replace it', { voters: ['L', 'b', 'c', 'd', 'e'], dead: { e: 20_000 } }, 'remove e'],
    ['…and replaced by a learner afterwards', { voters: ['L', 'b'], learners: ['d'] }, 'add-voter d'],
    ['two dead of five: removed one at a time', { voters: ['L', 'b', 'c', 'd', 'e'], dead: { d: 20_000, e: 20_000 } }, 'remove d'],
    ['no removal that would lose the quorum', { voters: ['L', 'b', 'c', 'd', 'e'], dead: { d: 20_000 }, silent: ['b', 'c'] }, 'none'],
    ['a voter unknown to membership is left alone', { voters: ['L', 'b', 'c'], unknown: ['c'] }, 'none'],
    ['a voter that left is removed at once', { voters: ['L', 'b', 'c'], left: ['c'] }, 'remove c'],
    // learners that are gone
    ['a learner that left is removed', { voters: ['L'], learners: ['b'], left: ['b'] }, 'remove b'],
    ['a learner dead past the grace is removed', { voters: ['L'], learners: ['b'], dead: { b: 60_000 } }, 'remove b'],
    // too many voters
    ['--voters lowered to 3: demote a voter (the least healthy first)', { voters: ['L', 'b', 'c', 'd', 'e'], suspect: ['d'], silent: ['d'], maxVoters: 3 }, 'demote d'],
    ['--voters lowered to 3: never demote the leader', { voters: ['L', 'b', 'c', 'd'], maxVoters: 3 }, 'demote b'],
    // requested removals (leave, voters remove)
    ['a follower voter asks to leave: removed', { voters: ['L', 'b', 'c'], removals: ['b'] }, 'remove b'],
    ['a leaving voter is not re-added as learner', { voters: ['L', 'c'], others: ['b'], removals: ['b'] }, 'none'],
    ['a leaving learner is removed', { voters: ['L'], learners: ['b'], removals: ['b'] }, 'remove b'],
    ['the leader leaves: hand over to a caught-up voter first', { voters: ['L', 'b', 'c'], lagging: ['b'], removals: ['L'] }, 'transfer c'],
    ['the only voter leaves: promote a caught-up learner first', { voters: ['L'], learners: ['b'], removals: ['L'] }, 'add-voter b'],
    ['…then hand over to it', { voters: ['L', 'b'], removals: ['L'] }, 'transfer b'],
    ['the only voter leaves with nobody to hand over to: nothing', { voters: ['L'], removals: ['L'] }, 'none'],
    ['a removal that would lose the quorum waits', { voters: ['L', 'b', 'c'], dead: { c: 1_000 }, removals: ['b'] }, 'none'],
  ])('%s', (_name, situation, expected) => {
    expect(short(decide(situation))).toBe(expected)
  })

  it('gives a reason with every action', () => {
    const a = decide({ voters: ['L', 'b', 'c'], dead: { c: 12_000 } })
    expect(a).toMatchObject({ type: 'remove', id: 'c', reason: 'the voter has been dead for 12 s' })
  })
})
