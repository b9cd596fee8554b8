// Peer queries end to end with the real Docker engine: 3 agents on loopback share one engine. From
// a follower: `skein logs` gathers the lines of replicas on every host (and follows them), `skein
// events` merges every host's agent events (and follows them), `skein drain` / `undrain` are
// forwarded to the leader, and `skein ps` / `skein services` show the leader's explanation of an
// impossible replica. A host that is gone is one note line of `skein logs`.
import { spawn } from 'node:child_process'
import { afterAll, describe, expect, it } from 'vitest'
import type { ReplicaView } from '../../src/api/replicas.ts'
import type { EventView, LogItemView } from '../../src/api/running.ts'
import { REPO, SKEIN_COMMAND, applyStack as apply, cli, cliJson, stopAll, waitFor, type Agent } from './harness/agents.ts'
import { byName, startCluster, waitForAgreedLeader } from './harness/cluster.ts'
import { DOCKER_ENV, removeLabelled } from './harness/docker.ts'

let clusterId: string | undefined
const followers: { stop(): void }[] = []

const json = <T>(args: string[]): Promise<T> => cliJson<T>(args)

/** JSON lines (`logs --json` prints one object per line). */
const jsonLines = <T>(text: string): T[] => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T)

/** A CLI command that keeps running (`-f`): its output so far, and a stop (SIGKILL of that process). */
function startFollow(args: string[]): { output(): string; stop(): void } {
  const proc = spawn(SKEIN_COMMAND[0], [...SKEIN_COMMAND.slice(1), ...args], { cwd: REPO, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()))
  proc.stderr.on('data', (b: Buffer) => (err += b.toString()))
  const handle = { output: () => (err === '' ? out : `${out}\n[stderr] ${err}`), stop: () => void proc.kill('SIGKILL') }
  followers.push(handle)
  return handle
}

const TALK = (replicas: number) =>
  `    image: local/busybox:1\n    command: [sh, -c, "while true; do echo tick; sleep 1; done"]\n    replicas: ${replicas}\n    rebalance: true\n    onHostLoss: wait 60s\n    restart: { condition: any, delay: 200ms }\n`
const running = (list: ReplicaView[]): ReplicaView[] => list.filter((r) => r.state === 'running')

describe('peer queries: logs, events, drain and explain from any peer', () => {
  afterAll(async () => {
    for (const f of followers) f.stop()
    await stopAll()
    if (clusterId !== undefined) removeLabelled(`io.skein.cluster=${clusterId}`)
  })

  it('gathers from every host, forwards drains to the leader, and shows the leader’s explanation', async () => {
    const agents = await startCluster(3, { prefix: 'pq', env: DOCKER_ENV })
    clusterId = (await agents[0]!.status())['clusterId'] as string
    const leader = await waitForAgreedLeader(agents)
    const lead = byName(agents, leader.name)
    const [f1, f2] = agents.filter((a) => a !== lead) as [Agent, Agent]
    const names = agents.map((a) => a.name).sort()

    await apply(f1, `stack: pq\nservices:\n  talk:\n${TALK(3)}`)
    const first = await waitFor('3 talk replicas running, one per host', async () => {
      const list = running(await json<ReplicaView[]>(['ps', 'talk', '--data-dir', lead.dir]))
      return list.length === 3 && new Set(list.map((r) => r.host)).size === 3 ? list : undefined
    }, 30_000, 300)
    expect(first.map((r) => r.host).sort()).toEqual(names)

    // logs, once, from a follower: every replica's lines, from all three hosts.
    const items = await waitFor('lines of all 3 replicas from one follower', async () => {
      const r = await cli(['logs', 'talk', '--tail', '3', '--json', '--data-dir', f1.dir])
      if (r.code !== 0) throw new Error(r.stderr)
      const got = jsonLines<LogItemView>(r.stdout)
      return [0, 1, 2].every((s) => got.some((i) => i.slot === s && i.kind === 'line' && i.text === 'tick')) ? got : undefined
    }, 20_000, 500)
    expect(new Set(items.filter((i) => i.kind === 'line').map((i) => i.host)).size).toBe(3)
    expect(items.filter((i) => i.kind !== 'line')).toEqual([])
    expect(items.filter((i) => i.slot === 0).length).toBeLessThanOrEqual(3)
    const times = items.map((i) => Date.parse(i.time as string))
    expect(times).toEqual([...times].sort((a, b) => a - b))
    const text = await cli(['logs', 'talk', '--tail', '1', '--data-dir', f2.dir])
    expect(text.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(['talk.0 | tick', 'talk.1 | tick', 'talk.2 | tick'])

    // logs -f from the other follower: new lines of every host's replica keep coming.
    const logsF = startFollow(['logs', 'talk', '-f', '--tail', '0', '--data-dir', f2.dir])
    await waitFor('followed lines of all 3 replicas', async () => [0, 1, 2].every((s) => logsF.output().split('\n').filter((l) => l === `talk.${s} | tick`).length >= 2), 20_000, 200)
    logsF.stop()

    // events, once, from a follower: every host's agent events; committed-log events only once.
    const events = await json<EventView[]>(['events', '--data-dir', f1.dir])
    const started = events.filter((e) => e.kind === 'started' && e.service === 'talk')
    expect(new Set(started.map((e) => e.host)).size).toBe(3)
    const assigned = events.filter((e) => e.kind === 'assigned' && e.service === 'talk').map((e) => `${e.slot}/${e.generation}`)
    expect(assigned.length).toBeGreaterThanOrEqual(3)
    expect(new Set(assigned).size).toBe(assigned.length)
    const eventTimes = events.map((e) => Date.parse(e.time))
    expect(eventTimes).toEqual([...eventTimes].sort((a, b) => a - b))

    // drain f2 from f1 (neither leads): forwarded to the leader; f2's replica moves off, and events -f
    // on f1 shows f2's agent stopping it (an event of another host).
    const eventsF = startFollow(['events', '-f', '--json', '--data-dir', f1.dir])
    const movingF = startFollow(['logs', 'talk', '-f', '--tail', '0', '--json', '--data-dir', f1.dir])
    await waitFor('events -f to print the history', async () => eventsF.output().includes('"kind":"started"'), 15_000, 200)
    const drained = await cli(['drain', f2.name, '--timeout', '40', '--json', '--data-dir', f1.dir])
    expect(drained.stderr).toBe('')
    expect(drained.code).toBe(0)
    expect(JSON.parse(drained.stdout)).toMatchObject({ name: f2.name, drained: true, remaining: 0 })
    const moved = await waitFor('3 running off the drained host', async () => {
      const list = running(await json<ReplicaView[]>(['ps', 'talk', '--data-dir', f1.dir]))
      return list.length === 3 && list.every((r) => r.host !== f2.name) ? list : undefined
    }, 30_000, 300)
    expect(moved).toHaveLength(3)
    expect((await json<{ name: string; drained: boolean }[]>(['nodes', '--data-dir', lead.dir])).find((n) => n.name === f2.name)?.drained).toBe(true)
    await waitFor('events -f on f1 to show f2 stopping its replica', async () => {
      const seen = jsonLines<EventView>(eventsF.output())
      return seen.some((e) => e.host === f2.name && (e.kind === 'stopped' || e.kind === 'removed') && e.service === 'talk') && seen.some((e) => e.kind === 'drained')
    }, 20_000, 200)
    eventsF.stop()
    // logs -f on f1 picked up the moved replica on its new host.
    const movedSlot = first.find((r) => r.host === f2.name)?.slot as number
    const newHost = moved.find((r) => r.slot === movedSlot)?.host as string
    await waitFor(`logs -f to follow talk.${movedSlot} on ${newHost}`, async () =>
      jsonLines<LogItemView>(movingF.output()).some((i) => i.slot === movedSlot && i.host === newHost && i.text === 'tick'), 20_000, 200)
    movingF.stop()

    // undrain from f2 itself (a follower): the flag clears, and with rebalance a replica comes back.
    const undrained = await cli(['undrain', f2.name, '--json', '--data-dir', f2.dir])
    expect(undrained.code, undrained.stderr).toBe(0)
    expect(JSON.parse(undrained.stdout)).toMatchObject({ name: f2.name, drained: false })
    await waitFor('a replica back on the undrained host', async () => running(await json<ReplicaView[]>(['ps', 'talk', '--data-dir', lead.dir])).some((r) => r.host === f2.name), 30_000, 300)
    const after = await json<EventView[]>(['events', '--data-dir', f2.dir])
    expect(after.filter((e) => e.kind === 'drained' && e.host === f2.name)).toHaveLength(1)
    expect(after.filter((e) => e.kind === 'undrained' && e.host === f2.name)).toHaveLength(1)

    // An impossible constraint: a follower's ps and services show the leader's explanation.
    await apply(f2, `stack: pq\nservices:\n  talk:\n${TALK(3)}  nowhere:\n    image: local/busybox:1\n    command: [sleep, "3600"]\n    placement:\n      constraints: [node.labels.zone == nowhere]\n`)
    const pending = await waitFor('the impossible replica explained on a follower', async () => {
      const list = await json<ReplicaView[]>(['ps', 'nowhere', '--data-dir', f1.dir])
      return list.length === 1 && list[0]?.state === 'pending' && list[0].explain !== null ? list : undefined
    }, 20_000, 300)
    expect(pending[0]?.explain).toMatch(/pending/)
    const table = await cli(['ps', 'nowhere', '--data-dir', f1.dir])
    expect(table.stdout).toContain(pending[0]?.explain as string)
    const services = await json<{ name: string; explain: string | null }[]>(['services', '--data-dir', f2.dir])
    expect(services.find((s) => s.name === 'nowhere')?.explain).toMatch(/pending/)
    expect(services.find((s) => s.name === 'talk')?.explain).toBeNull()

    // A host that is gone: its replica's logs are one note line, the others still come.
    const gone = running(await json<ReplicaView[]>(['ps', 'talk', '--data-dir', lead.dir])).find((r) => r.host === f2.name) as ReplicaView
    await f2.kill9()
    const r = await cli(['logs', 'talk', '--tail', '1', '--json', '--data-dir', f1.dir])
    expect(r.code, r.stderr).toBe(0)
    const last = jsonLines<LogItemView>(r.stdout)
    const notes = last.filter((i) => i.kind === 'note')
    expect(notes).toHaveLength(1)
    expect(notes[0]?.text).toContain(`talk.${gone.slot}`)
    expect(notes[0]?.text).toContain(f2.name)
    expect(last.filter((i) => i.kind === 'line').length).toBeGreaterThanOrEqual(2)
  }, 180_000)
})
