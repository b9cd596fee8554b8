// Fault scenarios on the test bed (harness.ts): hosts in network namespaces, each with its own
// address, Docker engine and skein peer. These three run in .ci/run (`npm test`); the longer ones
// are in extended.test.ts (`npm run test:cluster`). Waits are bounded; nothing here is timed.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { converged, placement, releaseSkeinCommand, sleeperStack, total, up, until, type Host, type TestBed } from './harness.ts'

const STACK = sleeperStack

describe('fault scenarios on network-namespace hosts', () => {
  let bed: TestBed | undefined
  afterEach(async () => {
    await bed?.down()
    bed = undefined
  })
  afterAll(releaseSkeinCommand)

  for (const which of ['a host that is not the leader', "the leader's host"] as const) {
    it(`loses ${which}: 6 run again on the other two, none twice, also after it returns`, async () => {
      bed = await up(3)
      await bed.apply(bed.host(0), STACK('s', 'web', 6))
      const leader = await bed.leader()
      await converged(bed, leader, 'web', 6)
      expect(placement(bed, 'web')).toEqual({ h1: 2, h2: 2, h3: 2 })

      const lost = which === "the leader's host" ? leader : bed.hosts.find((h) => h !== leader) as Host
      const rest = bed.hosts.filter((h) => h !== lost)
      await bed.killHost(lost.index)
      const asker = which === "the leader's host" ? await bed.leader({ except: [lost.index], not: lost }) : leader
      expect(asker).not.toBe(lost)
      await converged(bed, asker, 'web', 6, [lost.name])
      const after = placement(bed, 'web', rest)
      expect(total(after)).toBe(6)
      expect(Object.keys(after).sort()).toEqual(rest.map((h) => h.name).sort())

      // It returns (its engine restarts with its old containers exited): nothing runs twice.
      await bed.restartHost(lost.index)
      await until(`${lost.name} alive again`, async () => (await bed!.nodes(asker)).find((m) => m.name === lost.name)?.state === 'alive', 30_000)
      await until(`${lost.name} to know the leader`, async () => (await bed!.status(lost))['leader'] === asker.name, 30_000)
      let most = 0
      for (let i = 0; i < 12; i++) {
        most = Math.max(most, total(placement(bed, 'web')))
        await new Promise((r) => setTimeout(r, 250))
      }
      expect(most).toBe(6)
      await converged(bed, asker, 'web', 6)
    }, 180_000)
  }

  it('minority/majority partition: no placements on the minority, its containers keep running, both sides\' writes survive the heal', async () => {
    bed = await up(3)
    await bed.apply(bed.host(0), STACK('s', 'web', 6))
    const leader = await bed.leader()
    await converged(bed, leader, 'web', 6)

    // The leader's host is the minority: it must step down and place nothing.
    const minority = leader
    const majority = bed.hosts.filter((h) => h !== minority)
    const kept = bed.containers(minority, 'io.skein.service=web').sort()
    expect(kept).toHaveLength(2)
    bed.partition([[minority.index], majority.map((h) => h.index)])

    const newLeader = await bed.leader({ except: [minority.index], not: minority })
    expect(newLeader).not.toBe(minority)
    await until(`${minority.name} to step down`, async () => (await bed!.status(minority))['role'] !== 'leader', 15_000)
    const commitBefore = (await bed.status(minority))['commitIndex']

    // Writes on both sides.
    await bed.apply(minority, STACK('left', 'lonely', 1))
    await bed.apply(newLeader, STACK('right', 'crowd', 2))
    await converged(bed, newLeader, 'web', 6, [minority.name])
    await converged(bed, newLeader, 'crowd', 2, [minority.name])

    // The minority placed nothing, committed nothing, and its containers still run.
    expect((await bed.status(minority))['commitIndex']).toBe(commitBefore)
    expect(bed.containers(minority, 'io.skein.service=lonely')).toHaveLength(0)
    expect(bed.containers(minority, 'io.skein.service=web').sort()).toEqual(kept)

    bed.heal()
    for (const h of bed.hosts) {
      await until(`both sides' writes on ${h.name}`, async () => {
        const names = (JSON.parse(await bed!.cli(h, ['services', '--json'])) as { name: string }[]).map((s) => s.name)
        return names.includes('lonely') && names.includes('crowd') && names.includes('web')
      }, 30_000)
    }
    const lead = await bed.leader()
    await converged(bed, lead, 'web', 6)
    await converged(bed, lead, 'crowd', 2)
    await converged(bed, lead, 'lonely', 1)
    // Exactly the desired count on the engines: the minority's stale copies are gone.
    await until('exactly 6 web containers on the engines', () => total(placement(bed!, 'web')) === 6 || undefined, 30_000)
    expect(total(placement(bed, 'crowd'))).toBe(2)
    expect(total(placement(bed, 'lonely'))).toBe(1)
  }, 180_000)
})
