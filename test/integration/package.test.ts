// The packaged forms of Skein, end to end: the single binary (built into a temp dir, run with an
// empty environment: no Node on PATH), the image built from it without a base image, and the
// compose/ cluster of 3 peers on this engine: apply the example stack, stop one peer container,
// and the replicas run on the other two. Everything started here is torn down in afterAll.
import { execFile, spawn } from 'node:child_process'
import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import type { ReplicaView } from '../../src/api/replicas.ts'
import pkg from '../../package.json' with { type: 'json' }
import { freePort, NO_DOCKER, REPO, tempDir, waitFor, type NodeView } from './harness/agents.ts'
import { docker, removeLabelled } from './harness/docker.ts'

const run = promisify(execFile)
const IMAGE = `skein:${pkg.version}`
const PROJECT = `skeintest${process.pid}`

const dirs: string[] = []
let binary: string | undefined
let composeDir: string | undefined
let clusterId: string | undefined

/** `docker-compose ARGS` in the copied compose/ dir, as this test's project. */
async function compose(args: string[], timeout = 60_000): Promise<string> {
  if (composeDir === undefined) throw new Error('compose/ was not copied')
  const env = { ...process.env, COMPOSE_PROJECT_NAME: PROJECT, SKEIN_IMAGE: IMAGE }
  return (await run('docker-compose', args, { cwd: composeDir, env, timeout })).stdout
}

/** Run `skein ARGS --json` inside a peer container. */
async function inPeer<T>(peer: string, args: string[]): Promise<T> {
  return JSON.parse(await compose(['exec', '-T', peer, 'skein', ...args, '--json'], 20_000)) as T
}

afterAll(async () => {
  if (composeDir !== undefined) await compose(['down', '-v', '--remove-orphans'], 120_000).catch((err: unknown) => console.error(`docker-compose down: ${String(err)}`))
  // The replicas are the engine's containers, not the compose project's: remove them by cluster.
  if (clusterId !== undefined) removeLabelled(`io.skein.cluster=${clusterId}`)
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
}, 180_000)

describe('the single binary, its image and the compose cluster', () => {
  it('builds a single binary that prints its version and commit and runs an agent with no Node on PATH', async () => {
    const out = await tempDir('skein-binary-')
    dirs.push(out)
    binary = join(out, 'skein')
    await run(process.execPath, [join(REPO, 'scripts/build.ts'), '--bin'], { cwd: REPO, env: { ...process.env, SKEIN_BUILD_BIN: binary }, timeout: 240_000 })

    const head = (await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO })).stdout.trim()
    // An empty environment: no PATH, so no Node could be found even if the binary looked for one.
    const text = (await run(binary, ['version'], { cwd: out, env: {} })).stdout
    expect(text).toMatch(new RegExp(`^skein ${pkg.version.replaceAll('.', '\\.')} \\(commit ${head}(-dirty)?, node v24\\.`))
    const json = JSON.parse((await run(binary, ['version', '--json'], { cwd: out, env: {} })).stdout) as { version: string; commit: string; node: string }
    expect(json.version).toBe(pkg.version)
    expect(json.commit.startsWith(head)).toBe(true)
    expect(json.node).toMatch(/^v24\./)

    const data = await tempDir('skein-binary-data-')
    dirs.push(data)
    const bin = binary
    const listen = `127.0.0.1:${await freePort()}`
    const agent = spawn(bin, ['agent', '--data-dir', data, '--listen', listen, '--api', `127.0.0.1:${await freePort()}`, '--log-level', 'warn'], {
      cwd: out,
      env: { DOCKER_HOST: NO_DOCKER },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    agent.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<number | null>((ok) => agent.once('exit', (code) => ok(code)))
    try {
      // The binary as its own client: `skein status` finds the agent through the data dir.
      const status = await waitFor('the binary agent to lead its new cluster', async () => {
        const res = JSON.parse((await run(bin, ['status', '--json', '--data-dir', data], { env: {}, timeout: 10_000 })).stdout) as { role: string; address: string }
        return res.role === 'leader' ? res : undefined
      }, 20_000, 250)
      expect(status.address, stderr).toBe(listen)
      agent.kill('SIGTERM')
      expect(await Promise.race([exited, new Promise((ok) => setTimeout(() => ok('still running'), 10_000))]), stderr).toBe(0)
    } finally {
      agent.kill('SIGKILL')
    }
  }, 300_000)

  it('builds the image from scratch: one layer, the binary runs in it', async () => {
    if (binary === undefined) throw new Error('the binary was not built')
    await run(process.execPath, [join(REPO, 'scripts/image.ts'), '--binary', binary], { cwd: REPO, timeout: 180_000 })
    // No base image: the only layer is the one holding the binary and its libraries.
    expect(docker(['image', 'inspect', '--format', '{{len .RootFS.Layers}}', IMAGE])).toBe('1')
    const head = (await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO })).stdout.trim()
    expect(docker(['run', '--rm', '--network', 'none', IMAGE, 'version'])).toContain(`skein ${pkg.version} (commit ${head}`)
  }, 240_000)

  it('runs 3 peers with docker-compose, and the replicas of a stopped peer run on the other two', async () => {
    composeDir = join(await tempDir('skein-compose-'), 'compose')
    dirs.push(join(composeDir, '..'))
    await cp(join(REPO, 'compose'), composeDir, { recursive: true })
    await rm(join(composeDir, '.env'), { force: true })
    await run(join(composeDir, 'up.sh'), [], { cwd: composeDir, env: { ...process.env, COMPOSE_PROJECT_NAME: PROJECT, SKEIN_IMAGE: IMAGE }, timeout: 120_000 })

    const nodes = await waitFor('3 alive peers', async () => {
      const list = await inPeer<NodeView[]>('peer1', ['nodes'])
      return list.filter((n) => n.state === 'alive').length === 3 ? list : undefined
    }, 60_000, 500)
    const idOf = new Map(nodes.map((n) => [n.name, n.id]))
    clusterId = (await inPeer<{ clusterId: string }>('peer1', ['status'])).clusterId
    expect(clusterId).toMatch(/^[0-9a-f]{12}$/)

    await compose(['exec', '-T', 'peer1', 'skein', 'apply', '-f', '/stacks/demo.yaml'], 30_000)
    const runningWeb = async (): Promise<ReplicaView[]> => (await inPeer<ReplicaView[]>('peer1', ['ps', 'web'])).filter((r) => r.state === 'running')
    const before = await waitFor('3 running replicas of web', async () => {
      const list = await runningWeb()
      return list.length === 3 ? list : undefined
    }, 90_000, 500)

    // Stop a peer other than peer1 (which answers the queries) that runs a replica.
    const victim = ['peer2', 'peer3'].find((p) => before.some((r) => r.host === p))
    if (victim === undefined) throw new Error(`no replica on peer2 or peer3: ${JSON.stringify(before.map((r) => r.host))}`)
    const stoppedAt = Date.now()
    await compose(['stop', victim])

    const after = await waitFor(`3 running replicas of web, none on ${victim}`, async () => {
      const list = await runningWeb()
      return list.length === 3 && list.every((r) => r.host !== victim) ? list : undefined
    }, 60_000, 500)
    // A stopped peer counts as restarting for its --restart-grace (5 s in compose/), then moves.
    console.info(`the replica of the stopped ${victim} ran elsewhere ${Date.now() - stoppedAt} ms after docker-compose stop began`)
    const survivors = ['peer1', 'peer2', 'peer3'].filter((p) => p !== victim)
    expect(after.every((r) => r.host !== null && survivors.includes(r.host))).toBe(true)
    // The engine agrees: 3 running containers of web carry the survivors' host ids.
    const onSurvivors = survivors.flatMap((p) =>
      docker(['ps', '-q', '--filter', 'status=running', '--filter', `label=io.skein.cluster=${clusterId}`, '--filter', 'label=io.skein.service=web', '--filter', `label=io.skein.host=${idOf.get(p)}`])
        .split('\n')
        .filter((s) => s !== ''),
    )
    expect(onSurvivors).toHaveLength(3)
  }, 360_000)
})
