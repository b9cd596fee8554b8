import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, stopAll, tempDir, waitFor, type Agent } from './harness/agents.ts'
import { startCluster } from './harness/cluster.ts'

/**
 * Desired state on five real `skein agent` processes (127.0.0.1, --debug-api for the traffic
 * filter): an apply at peer 3 reaches all five; an invalid file stores nothing anywhere and
 * prints every error; a peer killed during 50 changes catches up after its restart with
 * byte-identical state; writes on both sides of a partition converge on the later one.
 */

interface ServiceRow {
  name: string
  image: string
  replicas: number | null
  revision: number
}

async function services(a: Agent): Promise<ServiceRow[]> {
  return await a.get<ServiceRow[]>('/v1/services')
}

async function digest(a: Agent): Promise<string> {
  const s = (await a.status()) as { state?: { digest: string } }
  return s.state?.digest ?? ''
}

async function post(a: Agent, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${a.apiPort}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await a.apiToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  const json: unknown = await res.json()
  if (!res.ok) throw new Error(`${a.name} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`)
  return json
}

/** Wait until every agent reports the same desired-state digest; returns it. */
async function converged(agents: readonly Agent[], timeoutMs = 20_000): Promise<string> {
  return await waitFor(`${agents.map((a) => a.name).join(', ')} to hold identical desired state`, async () => {
    const ds = await Promise.all(agents.map((a) => digest(a)))
    return ds.every((d) => d !== '' && d === ds[0]) ? ds[0] : undefined
  }, timeoutMs, 100)
}

describe('desired state with real agents', () => {
  let agents: Agent[] = []
  let dir = ''

  beforeAll(async () => {
    dir = await tempDir('skein-state-files-')
    agents = await startCluster(5, { prefix: 's', extraArgs: ['--debug-api', '--log-level', 'info'] })
  }, 40_000)

  afterAll(async () => {
    await stopAll()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  const at = (i: number): Agent => agents[i - 1] as Agent

  it('an apply at peer 3 of 5 shows on all 5 (services --json)', async () => {
    const file = join(dir, 'web.yaml')
    await writeFile(file, 'stack: demo\nservices:\n  web:\n    image: nginx:1.27\n    replicas: 2\n  db:\n    image: postgres:16\n')
    const r = await cli(['apply', '-f', file, '--json', '--data-dir', at(3).dir])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as { applied: unknown[] }).applied).toHaveLength(2)
    await waitFor('all 5 to list web and db', async () => (await Promise.all(agents.map(services))).every((l) => l.map((s) => s.name).join() === 'db,web'), 10_000, 50)
    for (const a of agents) {
      const out = await cli(['services', '--json', '--data-dir', a.dir])
      expect(out.code, out.stderr).toBe(0)
      const list = JSON.parse(out.stdout) as ServiceRow[]
      expect(list.find((s) => s.name === 'web')).toMatchObject({ name: 'web', image: 'nginx:1.27', replicas: 2, revision: 1 })
    }
    await converged(agents)
  }, 30_000)

  it('an invalid file: every error printed, exit 1, nothing stored anywhere', async () => {
    const before = await converged(agents)
    const file = join(dir, 'bad.yaml')
    await writeFile(file, 'stack: demo\nservices:\n  web:\n    image: "Not An Image"\n    replicas: three\n  extra:\n    image: redis:7\n    replicas: -1\n')
    const r = await cli(['apply', '-f', file, '--data-dir', at(1).dir])
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split('\n')
    expect(lines.filter((l) => /bad\.yaml:\d+\)$/.test(l))).toHaveLength(3)
    expect(lines.every((l) => l.startsWith('skein: '))).toBe(true)
    expect(r.stderr).toMatch(/nothing applied/)
    await new Promise((ok) => setTimeout(ok, 500))
    for (const a of agents) expect(await digest(a)).toBe(before)
    // The server validates too: a forged stack is refused whole.
    await expect(post(at(2), '/v1/apply', { stack: { name: 'demo', services: [{ stack: 'demo', name: 'ok', image: 'redis:7' }, { stack: 'demo', name: 'BAD', image: 'x' }] } })).rejects.toThrow(/400/)
    for (const a of agents) expect(await digest(a)).toBe(before)
  }, 20_000)

  it('a peer killed during 50 changes catches up after its restart, byte-identical', async () => {
    const victim = at(5)
    await victim.kill9()
    for (let i = 0; i < 50; i++) {
      if (i % 10 === 9) await post(at(2), '/v1/apply', { stack: { name: 'extra', services: [{ stack: 'extra', name: `x${i}`, image: `redis:${i}` }] } })
      else await post(at(2), '/v1/services/scale', { services: [{ name: i % 2 === 0 ? 'web' : 'db', replicas: i + 1 }] })
    }
    victim.start(['--api', `127.0.0.1:${victim.apiPort}`, '--log-level', 'info', '--debug-api'])
    await converged(agents, 20_000)
    const same = async (args: string[]): Promise<void> => {
      const [x, y] = await Promise.all([cli([...args, '--data-dir', at(1).dir]), cli([...args, '--data-dir', victim.dir])])
      expect(x.code, x.stderr).toBe(0)
      expect(y.stdout).toBe(x.stdout)
    }
    await waitFor('the victim to name every writer', async () => (await services(victim)).length === (await services(at(1))).length)
    await same(['services', '--json'])
    for (const s of await services(at(1))) await same(['inspect', s.name, '--json'])
    expect((await services(victim)).find((s) => s.name === 'web')?.replicas).toBe(49)
  }, 40_000)

  it('writes on both sides of a partition converge on the later write after healing', async () => {
    const ids = await Promise.all(agents.map((a) => a.id()))
    const left = agents.slice(0, 2)
    const right = agents.slice(2)
    for (const a of left) await post(a, '/v1/debug/block', { peers: ids.slice(2) })
    for (const a of right) await post(a, '/v1/debug/block', { peers: ids.slice(0, 2) })
    await post(at(1), '/v1/services/scale', { services: [{ name: 'web', replicas: 7 }] })
    await post(at(1), '/v1/apply', { stack: { name: 'left', services: [{ stack: 'left', name: 'left-only', image: 'busybox:1' }] } })
    await new Promise((ok) => setTimeout(ok, 50))
    await post(at(4), '/v1/services/scale', { services: [{ name: 'web', replicas: 9 }] })
    await post(at(4), '/v1/apply', { stack: { name: 'right', services: [{ stack: 'right', name: 'right-only', image: 'busybox:2' }] } })
    // Each side holds its own writes, not the other's.
    await converged(left, 5_000)
    await converged(right, 5_000)
    expect((await services(at(2))).find((s) => s.name === 'web')?.replicas).toBe(7)
    expect((await services(at(5))).find((s) => s.name === 'web')?.replicas).toBe(9)
    expect((await services(at(5))).some((s) => s.name === 'left-only')).toBe(false)
    for (const a of agents) await post(a, '/v1/debug/unblock', {})
    await converged(agents, 30_000)
    for (const a of agents) {
      const list = await services(a)
      expect(list.find((s) => s.name === 'web')?.replicas, a.name).toBe(9)
      expect(list.some((s) => s.name === 'left-only') && list.some((s) => s.name === 'right-only'), a.name).toBe(true)
    }
  }, 45_000)
})
