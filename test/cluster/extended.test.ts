// The longer fault scenarios on the test bed (`npm run test:cluster`; scenarios.test.ts has the
// ones .ci/run runs). Waits are bounded; every fault loop has a fixed count.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { converged, placement, releaseSkeinCommand, sleeperStack, total, up, until, type Host, type TestBed } from './harness.ts'

const stack = sleeperStack

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The (term, leader) pairs each peer logged as "this peer is leader". */
function leadersByTerm(bed: TestBed): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>()
  for (const h of bed.hosts) {
    for (const m of h.output.matchAll(/leader is (\S+) \(term (\d+)\); this peer is leader/g)) {
      const term = Number(m[2])
      const set = out.get(term) ?? new Set<string>()
      set.add(m[1] as string)
      out.set(term, set)
    }
  }
  return out
}

interface Voter { name: string | null; role: string; health: string }

describe('extended fault scenarios on network-namespace hosts', () => {
  let bed: TestBed | undefined
  afterEach(async () => {
    await bed?.down()
    bed = undefined
  })
  afterAll(releaseSkeinCommand)

  it('3: two hosts lost one after the other in a 5-host cluster, voters replaced: all replicas on the 3 left', async () => {
    bed = await up(5, { agentArgs: ['--voters', '3'] })
    const b = bed
    await b.apply(b.host(0), stack('s', 'web', 9))
    let leader = await b.leader()
    await converged(b, leader, 'web', 9)
    const votersOf = async (h: Host): Promise<Voter[]> => JSON.parse(await b.cli(h, ['voters', '--json'])) as Voter[]
    const voterNames = async (h: Host): Promise<string[]> => (await votersOf(h)).filter((v) => v.role === 'voter').map((v) => v.name ?? '?').sort()

    // First a voter that does not lead, then the leader's host.
    const first = (await voterNames(leader)).map((n) => b.hosts.find((h) => h.name === n) as Host).find((h) => h !== leader) as Host
    await b.killHost(first.index)
    await converged(b, leader, 'web', 9, [first.name], 40_000)
    await until(`${first.name} replaced as a voter`, async () => {
      const v = await voterNames(leader)
      return v.length === 3 && !v.includes(first.name)
    }, 40_000, 500)

    const second = leader
    await b.killHost(second.index)
    leader = await b.leader({ except: [first.index, second.index], not: second, timeoutMs: 40_000 })
    const lost = [first.name, second.name]
    await converged(b, leader, 'web', 9, lost, 40_000)
    await until(`${second.name} replaced as a voter`, async () => {
      const v = await voterNames(leader)
      return v.length === 3 && v.every((n) => !lost.includes(n))
    }, 40_000, 500)
    const left = b.hosts.filter((h) => !lost.includes(h.name))
    expect(total(placement(b, 'web', left))).toBe(9)
    expect(Object.keys(placement(b, 'web', left)).sort()).toEqual(left.map((h) => h.name).sort())
  }, 300_000)

  it('5: an agent kill -9\'d ten times, some while containers start: no container restarts, nothing twice', async () => {
    bed = await up(3)
    const b = bed
    const wait = '    onHostLoss: wait 5m\n'
    await b.apply(b.host(0), stack('s', 'web', 6, wait))
    const leader = await b.leader()
    await converged(b, leader, 'web', 6)
    const before = new Map((await b.ps(leader, 'web')).map((r) => [r.slot, r.containerId]))
    let most = 0
    for (let i = 0; i < 10; i++) {
      const h = b.host(i % 3)
      // Every other round, a scale-up first, so that the kill lands while containers are starting.
      if (i % 2 === 0) await b.apply(b.host((i + 1) % 3), stack('s', 'web', 6 + 1 + (i % 4), wait))
      await sleep(i % 2 === 0 ? 150 : 400)
      await b.killPeer(h.index)
      most = Math.max(most, countPerSlotMax(b))
      b.startPeer(h.index)
      await until(`${h.name} back with a leader`, async () => typeof (await b.status(h))['leader'] === 'string', 20_000)
      most = Math.max(most, countPerSlotMax(b))
    }
    await b.apply(b.host(0), stack('s', 'web', 6, wait))
    await converged(b, leader, 'web', 6, [], 40_000)
    await until('6 web containers on the engines', () => total(placement(b, 'web')) === 6 || undefined, 30_000)
    const rows = await b.ps(leader, 'web')
    expect(rows.filter((r) => r.state === 'running')).toHaveLength(6)
    expect(rows.map((r) => (r as unknown as { restarts: number }).restarts)).toEqual([0, 0, 0, 0, 0, 0])
    for (const r of rows) expect(r.containerId).toBe(before.get(r.slot))
    expect(most).toBeLessThanOrEqual(1)
  }, 300_000)

  it('6: the leader killed every 10 s for 2 minutes under an apply a second: one leader per term, no acknowledged apply lost, converged within 10 s', async () => {
    bed = await up(3)
    const b = bed
    await b.apply(b.host(0), stack('s', 'web', 6))
    await converged(b, await b.leader(), 'web', 6)
    const acked: string[] = []
    let stop = false
    let applyN = 0
    const client = (async () => {
      for (let k = 0; !stop && k < 200; k++) {
        const t = Date.now()
        const via = b.host(k % 3)
        if (via.peer !== undefined) {
          const name = `c${k}`
          try {
            await b.apply(via, stack(name, name, k % 10 === 0 ? 1 : 0))
            acked.push(name)
          } catch {
            // not acknowledged: nothing is owed
          }
          applyN++
        }
        await sleep(Math.max(0, 1000 - (Date.now() - t)))
      }
    })()
    const t0 = Date.now()
    let kills = 0
    while (kills < 12 && Date.now() - t0 < 150_000) {
      await sleep(Math.max(0, t0 + 10_000 * (kills + 1) - Date.now()))
      const leader = await b.leader({ timeoutMs: 8_000 })
      await b.killPeer(leader.index)
      kills++
      await sleep(2000)
      b.startPeer(leader.index)
    }
    stop = true
    await client
    const lastFault = Date.now()

    // At most one leader per term, from the peers' own logs.
    const terms = leadersByTerm(b)
    expect(terms.size).toBeGreaterThanOrEqual(kills)
    for (const [term, names] of terms) expect([term, [...names]]).toEqual([term, [...names].slice(0, 1)])

    // Every acknowledged apply is present on every peer.
    expect(acked.length).toBeGreaterThan(applyN / 2)
    for (const h of b.hosts) {
      await until(`${acked.length} acknowledged applies on ${h.name}`, async () => {
        const names = new Set((JSON.parse(await b.cli(h, ['services', '--json'])) as { name: string }[]).map((s) => s.name))
        return acked.every((n) => names.has(n))
      }, 30_000, 500)
    }
    // Running equals desired within 10 s after the last fault.
    const leader = await b.leader()
    const want = new Map<string, number>([['web', 6], ...acked.map((n): [string, number] => [n, Number(n.slice(1)) % 10 === 0 ? 1 : 0])])
    await until('running equals desired', async () => {
      const svcs = JSON.parse(await b.cli(leader, ['services', '--json'])) as { name: string; running: number; desired: number }[]
      return [...want].every(([n, d]) => svcs.some((s) => s.name === n && s.desired === d && s.running === d))
    }, 10_000 - (Date.now() - lastFault), 250)
    expect(kills).toBe(12)
  }, 400_000)

  it('7: a host rebooted with no peer reachable for a while keeps its containers running and rejoins cleanly', async () => {
    bed = await up(3)
    const b = bed
    await b.apply(b.host(0), stack('s', 'db', 3, '    onHostLoss: wait 5m\n'))
    const leader = await b.leader()
    await converged(b, leader, 'db', 3)
    const h = b.hosts.find((x) => x !== leader) as Host
    const id = (await b.status(h))['id']
    const before = b.containers(h, 'io.skein.service=db').length
    expect(before).toBe(1)
    // The reboot: everything in the host dies, and it comes back with its link still down.
    await b.killHost(h.index)
    await b.restartHost(h.index, { linkUp: false })
    await until(`${h.name}'s container running again with no peer reachable`, () => b.containers(h, 'io.skein.service=db').length === 1 || undefined, 30_000)
    await sleep(5000)
    expect(b.containers(h, 'io.skein.service=db')).toHaveLength(1)
    const kept = b.containers(h, 'io.skein.service=db')
    b.link(h.index, true)
    await until(`${h.name} alive again`, async () => (await b.nodes(leader)).find((m) => m.name === h.name)?.state === 'alive', 30_000)
    expect((await b.status(h))['id']).toBe(id)
    await converged(b, leader, 'db', 3)
    await sleep(3000)
    expect(b.containers(h, 'io.skein.service=db')).toEqual(kept)
    expect(total(placement(b, 'db'))).toBe(3)
  }, 240_000)
})

/** The most running containers any one (service, slot) has across the bed's live engines. */
function countPerSlotMax(bed: TestBed): number {
  const seen = new Map<string, number>()
  for (const h of bed.hosts) {
    for (const id of bed.containers(h, 'io.skein.service=web')) {
      const slot = bed.inspectLabel(h, id, 'io.skein.slot')
      seen.set(slot, (seen.get(slot) ?? 0) + 1)
    }
  }
  return Math.max(0, ...seen.values())
}
