// The running flow end to end with the real Docker engine: 3 agents as processes on loopback share
// one engine, each managing only the containers labelled with its host id. A 6-replica service
// spreads 2/2/2; a kill -9'd agent adopts its containers; a `docker kill`ed container is restarted;
// an impossible constraint is pending with its explanation; losing a host (agent and containers)
// gets 6 running again on the other two; when that host returns, nothing runs twice. Then the
// leader's host is lost with its containers left running: the other two take over, and when it
// returns it stops its stale copies.
import { afterAll, describe, expect, it } from 'vitest'
import { agentArgs, applyStack, cliJson, stopAll, waitFor, type Agent } from './harness/agents.ts'
import { byName, startCluster, waitForAgreedLeader } from './harness/cluster.ts'
import { DOCKER_ENV, docker, labelled, removeLabelled } from './harness/docker.ts'
import type { ReplicaView as Replica } from '../../src/api/replicas.ts'


let clusterId: string | undefined

const ps = (a: Agent, service?: string): Promise<Replica[]> => cliJson(['ps', ...(service === undefined ? [] : [service])], a)

const apply = applyStack

/** Ids of the running containers carrying all these labels. */
const runningLabelled = (...labels: string[]): string[] =>
  docker(['ps', '-q', '--filter', 'status=running', ...labels.flatMap((l) => ['--filter', `label=${l}`])]).split('\n').filter((s) => s !== '')
const running = (list: Replica[], service: string): Replica[] => list.filter((r) => r.service === service && r.state === 'running')
const perHost = (list: Replica[]): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const r of list) out[r.host ?? '-'] = (out[r.host ?? '-'] ?? 0) + 1
  return out
}

describe('running containers with the real Docker engine', () => {
  afterAll(async () => {
    await stopAll()
    if (clusterId !== undefined) removeLabelled(`io.skein.cluster=${clusterId}`)
  })

  it('spreads, adopts after kill -9, explains the impossible, and heals a lost host', async () => {
    const agents = await startCluster(3, { prefix: 'run', env: DOCKER_ENV })
    const [a1, a2, a3] = agents as [Agent, Agent, Agent]
    clusterId = (await a1.status())['clusterId'] as string
    expect(clusterId).toMatch(/^[0-9a-f]+$/)
    const leader = await waitForAgreedLeader(agents)
    const lead = agents.find((a) => a.name === leader.name) as Agent
    const others = agents.filter((a) => a !== lead)

    // onHostLoss: wait, so that the kill -9 below tests adoption by the restarted agent rather than a
    // race between its restart and failure detection (~1 s); the re-apply further down drops it.
    await apply(a2, 'stack: it\nservices:\n  web:\n    image: local/busybox:1\n    command: [sh, -c, "trap \x27exit 0\x27 TERM; sleep 3600 & wait"]\n    replicas: 6\n    onHostLoss: wait 60s\n    restart: { condition: any, delay: 200ms }\n')
    const first = await waitFor('6 web replicas running', async () => {
      const list = await ps(a1, 'web')
      return running(list, 'web').length === 6 ? list : undefined
    }, 30_000, 200)
    expect(perHost(first)).toEqual({ [a1.name]: 2, [a2.name]: 2, [a3.name]: 2 })
    // Each container carries the label of the host that runs it: every agent manages only its own.
    for (const r of first) {
      expect(docker(['inspect', '-f', '{{index .Config.Labels "io.skein.host"}}', r.containerId as string])).toBe(r.hostId)
    }
    const services = await cliJson<{ name: string; running: number; desired: number }[]>(['services'], a3)
    expect(services.find((s) => s.name === 'web')).toMatchObject({ running: 6, desired: 6 })

    // kill -9 an agent and restart it: it adopts its containers (same ids and start times, 0 restarts).
    const victim = others[0] as Agent
    await victim.kill9()
    victim.start(agentArgs(victim, { name: victim.name }))
    await waitFor(`${victim.name} to answer again`, async () => (await victim.status())['leader'] != null, 15_000, 200)
    await new Promise((r) => setTimeout(r, 2500)) // a few reconcile rounds of the restarted agent
    const after = await waitFor('6 web replicas running after the restart', async () => {
      const list = await ps(victim, 'web')
      return running(list, 'web').length === 6 ? list : undefined
    }, 15_000, 200)
    const key = (l: Replica[]) => l.map((r) => `${r.slot}:${r.host}:${r.containerId}:${r.startedAt}:${r.restarts}`).sort()
    expect(key(after)).toEqual(key(first))
    expect(after.every((r) => r.restarts === 0)).toBe(true)

    // `docker kill` one container: its agent starts it again (same container, one restart).
    const killed = after[0] as Replica
    docker(['kill', killed.containerId as string])
    await waitFor('the killed container restarted', async () => {
      const r = (await ps(lead, 'web')).find((x) => x.slot === killed.slot)
      return r?.state === 'running' && r.restarts === 1 && r.containerId === killed.containerId
    }, 15_000, 200)

    // An impossible constraint: pending, with the leader's explanation.
    await apply(a1, 'stack: it\nservices:\n  web:\n    image: local/busybox:1\n    command: [sh, -c, "trap \x27exit 0\x27 TERM; sleep 3600 & wait"]\n    replicas: 6\n    restart: { condition: any, delay: 200ms }\n  nowhere:\n    image: local/busybox:1\n    command: [sleep, "3600"]\n    placement:\n      constraints: [node.labels.zone == nowhere]\n')
    const pending = await waitFor('the impossible replica pending with an explanation', async () => {
      const list = await ps(lead, 'nowhere')
      return list.length === 1 && list[0]?.state === 'pending' && list[0].explain !== null ? list : undefined
    }, 15_000, 200)
    expect(pending[0]?.explain).toMatch(/pending/)
    const onFollower = await ps(others[1] as Agent, 'nowhere')
    expect(onFollower.map((r) => r.state)).toEqual(['pending'])
    const svc = await cliJson<{ name: string; running: number; desired: number; explain: string | null }[]>(['services'], lead)
    expect(svc.find((s) => s.name === 'nowhere')).toMatchObject({ running: 0, desired: 1 })
    expect(svc.find((s) => s.name === 'nowhere')?.explain).toMatch(/pending/)

    // Lose a host that does not lead: its agent and its containers go together.
    const lost = others[1] as Agent
    const lostId = first.find((r) => r.host === lost.name)?.hostId as string
    await lost.kill9()
    removeLabelled(`io.skein.host=${lostId}`)
    const t0 = Date.now()
    const healed = await waitFor('6 web replicas running on the other two hosts', async () => {
      const list = running(await ps(lead, 'web'), 'web')
      return list.length === 6 && list.every((r) => r.host !== lost.name) ? list : undefined
    }, 40_000, 200)
    expect(Object.keys(perHost(healed)).sort()).toEqual(others.filter((a) => a !== lost).concat(lead).map((a) => a.name).sort())
    console.info(`lost host: 6 running again after ${Date.now() - t0} ms`)

    // The lost host returns (with no containers left): nothing runs twice.
    lost.start(agentArgs(lost, { name: lost.name }))
    const ours = () => labelled(`io.skein.cluster=${clusterId}`).length
    let most = 0
    const until = Date.now() + 4000
    while (Date.now() < until) {
      most = Math.max(most, ours())
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(await lost.status()).toMatchObject({ leader: lead.name })
    expect(lost.output).toMatch(/applied log state is current/)
    expect(most).toBe(6)
    expect(running(await ps(lead, 'web'), 'web')).toHaveLength(6)

    // Lose the leader's host. This time only its agent dies and its containers keep running (a host
    // cut off from the cluster): the other two elect a leader, declare the host dead and run all 6
    // themselves; the stale copies are not theirs to stop.
    const survivors = agents.filter((a) => a !== lead)
    const leadId = (await lead.status())['id'] as string
    const staleIds = runningLabelled(`io.skein.cluster=${clusterId}`, `io.skein.host=${leadId}`)
    expect(staleIds.length).toBeGreaterThan(0)
    await lead.kill9()
    const t1 = Date.now()
    const next = await waitForAgreedLeader(survivors, { not: lead.name, timeoutMs: 20_000 })
    const newLead = byName(survivors, next.name)
    const moved = await waitFor('6 web replicas running without the old leader', async () => {
      const list = running(await ps(newLead, 'web'), 'web')
      return list.length === 6 && list.every((r) => r.host !== lead.name) ? list : undefined
    }, 40_000, 200)
    console.info(`lost the leader's host: 6 running again after ${Date.now() - t1} ms`)
    expect(Object.keys(perHost(moved)).sort()).toEqual(survivors.map((a) => a.name).sort())
    expect(runningLabelled(`io.skein.host=${leadId}`).sort()).toEqual(staleIds.sort())

    // The old leader's host returns with its stale copies still running: once it has caught up with
    // the log, it stops them, and nothing runs twice for longer than that moment.
    lead.start(agentArgs(lead, { name: lead.name }))
    const t2 = Date.now()
    await waitFor('the stale copies stopped', async () => runningLabelled(`io.skein.host=${leadId}`).length === 0, 20_000, 100)
    console.info(`the returning host stopped its ${staleIds.length} stale copies ${Date.now() - t2} ms after its restart`)
    expect(runningLabelled(`io.skein.cluster=${clusterId}`)).toHaveLength(6)
    const t3 = Date.now()
    const final = await waitFor('the returned host to see 6 web replicas running', async () => {
      const list = running(await ps(lead, 'web'), 'web')
      return list.length === 6 ? list : undefined
    }, 15_000, 200)
    console.info(`the returned host's ps showed all 6 after another ${Date.now() - t3} ms`)
    expect(final.every((r) => r.host !== lead.name)).toBe(true)
    expect(final.map((r) => r.slot).sort()).toEqual([0, 1, 2, 3, 4, 5])
  }, 150_000)
})
