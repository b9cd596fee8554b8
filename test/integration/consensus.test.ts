import { writeFileSync, openSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cli, startAgent, stopAll, waitFor, type Agent } from './harness/agents.ts'
import { agreedLeader, byName, raftStatus, startCluster, voters, waitForAgreedLeader, waitForVoters } from './harness/cluster.ts'

/**
 * Real `skein agent` processes on 127.0.0.1: 3, then 5 of them elect one leader that all agree
 * on; after `kill -9` of the leader the others agree on a new one; the killed peer comes back as
 * a follower; `skein voters remove` and `skein leave` take voters out through the log; a peer
 * whose store was garbled, or whose Raft rows are inconsistent, refuses to start with one line.
 */
describe('consensus with real agents', () => {
  const agents: Agent[] = []
  let token = ''

  afterAll(async () => {
    await stopAll()
  })

  it('3 agents elect exactly one leader, and all agree on it', async () => {
    agents.push(...(await startCluster(3, { prefix: 'r' })))
    const t = await cli(['token', '--data-dir', agents[0]!.dir])
    token = t.stdout.trim()
    const leader = await waitForAgreedLeader(agents)
    expect(['r1', 'r2', 'r3']).toContain(leader.name)
    // Every agent lists the same three voters by name (once membership has told it every name).
    for (const a of agents) {
      await waitFor(`${a.name} to list r1..r3 as voters`, async () => {
        const names = (await voters(a)).filter((v) => v.role === 'voter').map((v) => v.name).sort()
        return names.join() === 'r1,r2,r3'
      })
    }
    const list = await voters(agents[1]!)
    expect(list.filter((v) => v.leader).map((v) => v.name)).toEqual([leader.name])
    // status --json carries the contract fields.
    const s = await cli(['status', '--json', '--data-dir', agents[2]!.dir])
    const json = JSON.parse(s.stdout) as Record<string, unknown>
    expect(json).toMatchObject({ leader: leader.name, term: leader.term, role: expect.stringMatching(/^(leader|follower)$/), commitIndex: expect.any(Number) })
  }, 40_000)

  it('kill -9 of the leader: the other two agree on a new leader; the killed one rejoins as a follower', async () => {
    const before = await waitForAgreedLeader(agents)
    const victim = byName(agents, before.name)
    const killedAt = Date.now()
    await victim.kill9()
    const survivors = agents.filter((a) => a !== victim)
    const after = await waitForAgreedLeader(survivors, { not: before.name, timeoutMs: 10_000 })
    const failoverMs = Date.now() - killedAt
    expect(after.term).toBeGreaterThan(before.term)
    expect(failoverMs).toBeLessThan(5_000)

    victim.start(['--api', `127.0.0.1:${victim.apiPort}`, '--log-level', 'debug'])
    const back = await waitForAgreedLeader(agents, { timeoutMs: 20_000 })
    expect(back.name).not.toBe(victim.name)
    const vs = await raftStatus(victim)
    expect(vs.role).toBe('follower')
    expect(vs.leader).toBe(back.name)
  }, 40_000)

  it('5 agents: one leader all agree on; kill -9 of the leader, the four others agree on a new one; voters remove and leave go through the log', async () => {
    for (let i = 4; i <= 5; i++) agents.push(await startAgent({ name: `r${i}`, join: [agents[0]!.address], token }))
    const first = await waitForAgreedLeader(agents)
    await waitForVoters(byName(agents, first.name), 5)
    const before = await waitForAgreedLeader(agents)
    const victim = byName(agents, before.name)
    await victim.kill9()
    const survivors = agents.filter((a) => a !== victim)
    const after = await waitForAgreedLeader(survivors, { not: before.name, timeoutMs: 10_000 })
    expect(after.term).toBeGreaterThan(before.term)
    expect(await agreedLeader(survivors)).toEqual(after)

    // The manual removal, through the log, from a follower (before the automatic one, after 10 s).
    const follower = survivors.find((a) => a.name !== after.name)!
    const removed = await cli(['voters', 'remove', victim.name, '--json', '--data-dir', follower.dir])
    expect(removed.code, removed.stderr).toBe(0)
    expect(JSON.parse(removed.stdout)).toMatchObject({ removed: true, name: victim.name, forced: false })
    const leader = byName(agents, after.name)
    await waitFor('the leader to drop the removed voter', async () => !(await voters(leader)).some((v) => v.name === victim.name))
    agents.splice(agents.indexOf(victim), 1)

    // A graceful leave: the voter is out of the configuration before it goes.
    const leaver = survivors.find((a) => a.name !== after.name && a !== follower)!
    const left = await cli(['leave', '--data-dir', leaver.dir])
    expect(left.code, left.stderr).toBe(0)
    expect((await voters(leader)).map((v) => v.name)).not.toContain(leaver.name)
    expect(leaver.output).toMatch(/removed from the voter set; leaving/)
    agents.splice(agents.indexOf(leaver), 1)
    expect((await voters(leader)).filter((v) => v.role === 'voter')).toHaveLength(3)
    await waitForAgreedLeader(agents)
  }, 40_000)

  it('a peer whose store is garbled refuses to start, with one clear line', async () => {
    const victim = agents.find((a) => a.running)!
    await victim.kill9()
    const db = join(victim.dir, 'skein.db')
    const fd = openSync(db, 'r+')
    writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, 0)
    closeSync(fd)
    writeFileSync(`${db}-wal`, Buffer.alloc(0))
    const res = await cli(['agent', '--data-dir', victim.dir, '--api', '127.0.0.1:0', '--listen', '127.0.0.1:0'])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^skein: the store .*skein\.db is corrupt/)
    expect(res.stderr.trim().split('\n')).toHaveLength(1)
  }, 20_000)

  it('a peer whose Raft rows are inconsistent refuses to start, with one clear line', async () => {
    const victim = agents.find((a) => a.running)!
    await victim.stop()
    const { DatabaseSync } = await import('node:sqlite')
    const db = new DatabaseSync(join(victim.dir, 'skein.db'))
    db.exec('UPDATE raft_hard_state SET commit_index = commit_index + 1000')
    db.close()
    const res = await cli(['agent', '--data-dir', victim.dir, '--api', '127.0.0.1:0', '--listen', '127.0.0.1:0'])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^skein: the Raft state in .*skein\.db is inconsistent: the commit index \d+ is beyond the last stored index \d+/)
    expect(res.stderr.trim().split('\n')).toHaveLength(1)
  }, 20_000)
})
