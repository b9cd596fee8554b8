import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import { cli, startAgent, stopAll, tempDir, waitFor, type Agent, type NodeView } from './harness/agents.ts'

/**
 * Five real `skein agent` processes on 127.0.0.1: they join through one address, detect a
 * `kill -9`, take the restarted peer back under its old identity, and keep outsiders out.
 */
describe('five agents on loopback', () => {
  const agents: Agent[] = []
  let token = ''

  const aliveCount = (view: NodeView[]): number => view.filter((n) => n.state === 'alive').length

  beforeAll(async () => {
    const first = await startAgent({ name: 'p1' })
    agents.push(first)
    await waitFor('p1 API', async () => (await first.nodes()).length === 1)
    const t = await cli(['token', '--data-dir', first.dir])
    expect(t.code, t.stderr).toBe(0)
    token = t.stdout.trim()
    expect(token.length).toBeGreaterThan(20)
    for (let i = 2; i <= 5; i++) agents.push(await startAgent({ name: `p${i}`, join: [first.address], token, labels: [`zone=z${i % 2}`] }))
  }, 60_000)

  afterAll(async () => {
    await stopAll()
  })

  it('all five see five alive, joined through one address', async () => {
    for (const a of agents) {
      await waitFor(`${a.name} to see 5 alive`, async () => aliveCount(await a.nodes()) === 5, 20_000)
    }
    const view = await agents[3]!.nodes()
    expect(new Set(view.map((n) => n.name))).toEqual(new Set(['p1', 'p2', 'p3', 'p4', 'p5']))
    expect(view.filter((n) => n.self).map((n) => n.name)).toEqual(['p4'])
    const p3 = view.find((n) => n.name === 'p3')
    expect(p3?.labels).toEqual({ zone: 'z1' })
    expect(p3?.address).toBe(agents[2]!.address)
  }, 30_000)

  it('the CLI lists the members as a table and as JSON', async () => {
    const human = await cli(['nodes', '--data-dir', agents[0]!.dir])
    expect(human.code, human.stderr).toBe(0)
    for (const n of ['p1', 'p2', 'p3', 'p4', 'p5']) expect(human.stdout).toContain(n)
    const json = await cli(['nodes', '--json', '--data-dir', agents[0]!.dir])
    const parsed = JSON.parse(json.stdout) as NodeView[]
    expect(parsed).toHaveLength(5)
    for (const n of parsed) expect(Object.keys(n)).toEqual(expect.arrayContaining(['id', 'name', 'address', 'state', 'labels']))
    const status = await cli(['status', '--json', '--data-dir', agents[1]!.dir])
    expect(status.code, status.stderr).toBe(0)
    const s = JSON.parse(status.stdout) as { members: Record<string, number> }
    expect(s.members.alive).toBe(5)
  })

  it('kill -9 of one peer: the other four mark it dead', async () => {
    const victim = agents[2]!
    const victimId = await victim.id()
    await victim.kill9()
    for (const a of agents.filter((x) => x !== victim)) {
      await waitFor(`${a.name} to mark ${victim.name} dead`, async () => (await a.nodes()).find((n) => n.id === victimId)?.state === 'dead', 15_000)
    }
  }, 30_000)

  it('the killed peer restarts from its data dir under the same identity, and is alive again', async () => {
    const victim = agents[2]!
    const before = (await agents[0]!.nodes()).find((n) => n.name === victim.name)
    expect(before?.state).toBe('dead')
    victim.start(['--api', `127.0.0.1:${victim.apiPort}`, '--log-level', 'debug'])
    await waitFor('restarted p3 API', async () => (await victim.nodes()).length > 0)
    expect(await victim.id()).toBe(before?.id)
    for (const a of agents) {
      await waitFor(`${a.name} to see p3 alive again`, async () => (await a.nodes()).find((n) => n.id === before?.id)?.state === 'alive', 20_000)
    }
    const after = (await agents[0]!.nodes()).find((n) => n.id === before?.id)
    expect(after!.incarnation).toBeGreaterThan(before!.incarnation)
  }, 40_000)

  it('an agent with a wrong token is never listed and learns nothing', async () => {
    // A well-formed token, but of another cluster.
    const elsewhere = await startAgent({ name: 'elsewhere' })
    const other = await waitFor('token of another cluster', async () => {
      const r = await cli(['token', '--data-dir', elsewhere.dir])
      return r.code === 0 ? r.stdout.trim() : undefined
    })
    await elsewhere.kill9()
    const wrong = other
    const intruder = await startAgent({ name: 'intruder', join: [agents[0]!.address], token: wrong })
    // It may refuse the token outright or start and fail to connect; either way it must not get in.
    await new Promise((r) => setTimeout(r, 3000))
    for (const a of agents) {
      const names = (await a.nodes()).map((n) => n.name)
      expect(names).not.toContain('intruder')
    }
    if (intruder.running) {
      const seen = await intruder.nodes()
      expect(seen.map((n) => n.name)).toEqual(['intruder'])
    }
    await intruder.kill9()
  }, 30_000)

  it('joining without a token is refused with a clear error', async () => {
    const dir = await tempDir('skein-loner-')
    try {
      const res = await cli(['agent', '--data-dir', dir, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--join', agents[0]!.address])
      expect(res.code).not.toBe(0)
      expect(res.stderr).toMatch(/token/i)
      expect(res.stderr.trim().split('\n')).toHaveLength(1)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
