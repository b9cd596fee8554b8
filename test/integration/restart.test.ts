// A graceful stop (SIGTERM, as `systemctl restart skein` sends) announces the restart through the
// log: the others declare the host dead after failure detection, but its replicas wait for it
// (`--restart-grace`, 30 s by default) instead of being placed elsewhere, and when it returns it
// adopts its running containers (and clears the announcement). 3 agents on loopback share the real
// Docker engine; a follower is stopped for 4 s, then the leader; then a kill -9 (not graceful) of a
// host just back from its graceful stop still moves its replicas at once (so does
// test/integration/running.test.ts, "Lose the leader's host").
import { afterAll, describe, expect, it } from 'vitest'
import type { EventView } from '../../src/api/running.ts'
import type { ReplicaView as Replica } from '../../src/api/replicas.ts'
import { agentArgs, applyStack, cli, cliJson, stopAll, waitFor, type Agent } from './harness/agents.ts'
import { byName, startCluster, waitForAgreedLeader } from './harness/cluster.ts'
import { DOCKER_ENV, removeLabelled } from './harness/docker.ts'

let clusterId: string | undefined

const ps = (a: Agent, service: string): Promise<Replica[]> => cliJson(['ps', service], a)
const events = (a: Agent): Promise<EventView[]> => cliJson(['events'], a)

async function serviceExplain(a: Agent, name: string): Promise<string | null> {
  const r = await cli(['services', '--json', '--data-dir', a.dir])
  if (r.code !== 0) return null
  return (JSON.parse(r.stdout) as { name: string; explain: string | null }[]).find((s) => s.name === name)?.explain ?? null
}

const running = (list: Replica[]): Replica[] => list.filter((r) => r.state === 'running')
const key = (l: Replica[]): string[] => l.map((r) => `${r.slot}:${r.hostId}:${r.containerId}:${r.startedAt}:${r.restarts}`).sort()
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('a graceful stop (SIGTERM) keeps the host’s replicas waiting for it', () => {
  afterAll(async () => {
    await stopAll()
    if (clusterId !== undefined) removeLabelled(`io.skein.cluster=${clusterId}`)
  })

  it('a follower, then the leader, stopped for 4 s: same containers, same hosts, nothing assigned elsewhere', async () => {
    const agents = await startCluster(3, { prefix: 'rst', env: DOCKER_ENV })
    clusterId = (await (agents[0] as Agent).status())['clusterId'] as string
    const leader = await waitForAgreedLeader(agents)
    const lead = byName(agents, leader.name)
    const [follower, witness] = agents.filter((a) => a !== lead) as [Agent, Agent]

    // The default onHostLoss (replace): without the announcement the replicas would move.
    await applyStack(witness, 'stack: rs\nservices:\n  web:\n    image: local/busybox:1\n    command: [sh, -c, "trap \x27exit 0\x27 TERM; sleep 3600 & wait"]\n    replicas: 6\n    restart: { condition: any, delay: 200ms }\n')
    const first = await waitFor('6 web replicas running', async () => {
      const list = await ps(witness, 'web')
      return running(list).length === 6 ? list : undefined
    }, 30_000, 200)
    expect(new Set(first.map((r) => r.hostId)).size).toBe(3)

    // `witness` is never stopped: its events hold every committed entry, timed when it applied it.
    const gracefulStop = async (victim: Agent, others: Agent[]): Promise<void> => {
      const t0 = Date.now()
      const from = new Date(t0).toISOString()
      await victim.stop()
      const stopMs = Date.now() - t0
      expect(victim.output).toMatch(/restart announced/)
      // Beyond failure detection: the others have declared it dead, and the leader explains the wait.
      let explained: string | null = null
      const until = Date.now() + 4000
      while (Date.now() < until) {
        for (const a of others) explained = (await serviceExplain(a, 'web').catch(() => null)) ?? explained
        await sleep(300)
      }
      console.info(`${victim.name}: SIGTERM took ${stopMs} ms; explain while away: ${explained ?? '(none)'}`)
      expect(explained).toMatch(new RegExp(`^2 of 6 replicas waiting for restarting host ${victim.name} \\(until \\d\\d:\\d\\d:\\d\\d UTC\\)$`))
      const dead = (await witness.nodes()).find((n) => n.name === victim.name)
      expect(dead?.state).toBe('dead')

      const t1 = Date.now()
      victim.start(agentArgs(victim, { name: victim.name }))
      await waitFor(`${victim.name} to answer again`, async () => (await victim.status())['leader'] != null, 15_000, 200)
      await sleep(2500) // a few reconcile rounds of the returned agent
      const after = await waitFor('6 web replicas running after the restart', async () => {
        const list = await ps(victim, 'web')
        return running(list).length === 6 ? list : undefined
      }, 15_000, 200)
      console.info(`${victim.name}: back, 6 running with the same containers ${Date.now() - t1} ms after its start`)
      expect(key(after)).toEqual(key(first))
      expect(after.every((r) => r.restarts === 0)).toBe(true)
      // Back and seen alive, it clears its announcement: a crash from now on is handled as one.
      const since = await waitFor('the announcement cleared', async () => {
        const list = (await events(witness)).filter((e) => e.time >= from)
        return list.some((e) => e.kind === 'restarting' && /cleared/.test(e.reason ?? '')) ? list : undefined
      }, 10_000, 300)
      expect(since.filter((e) => e.kind === 'restarting').map((e) => `${e.host} ${(e.reason ?? '').replace(/,.*/, '')}`)).toEqual([
        `${victim.name} stopping gracefully`, `${victim.name} restart announcement cleared`,
      ])
      expect(since.filter((e) => e.kind === 'assigned' || e.kind === 'unassigned')).toEqual([])
      expect(since.filter((e) => e.kind === 'host-dead').map((e) => e.host)).toEqual([victim.name])
    }

    await gracefulStop(follower, [lead, witness])
    await waitForAgreedLeader(agents)
    await gracefulStop(lead, [follower, witness])

    // kill -9 is not graceful: nothing is announced, and the replicas move as before, although this
    // host's last announcement (cleared since it returned) would still be within its grace.
    await waitForAgreedLeader(agents)
    const leadId = (await lead.status())['id'] as string
    const t2 = Date.now()
    await lead.kill9()
    const moved = await waitFor('6 web replicas running without the killed host', async () => {
      const list = running(await ps(witness, 'web'))
      return list.length === 6 && list.every((r) => r.host !== lead.name) ? list : undefined
    }, 30_000, 200)
    console.info(`kill -9 of ${lead.name}: 6 running elsewhere after ${Date.now() - t2} ms`)
    const assigned = (await events(witness)).filter((e) => e.time >= new Date(t2).toISOString() && e.kind === 'assigned')
    expect(assigned.map((e) => e.slot).sort()).toEqual(first.filter((r) => r.hostId === leadId).map((r) => r.slot).sort())
    expect(moved.every((r) => r.hostId !== leadId)).toBe(true)
  }, 150_000)
})
