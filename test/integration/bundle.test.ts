import { execFile, spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, REPO, tempDir, waitFor } from './harness/agents.ts'

const run = promisify(execFile)

/** The bundle (`npm run build`) is what benchmarks and the binary run: it must build and start. */
describe('the bundled build', () => {
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  it('builds, prints its version and runs an agent that answers its API', async () => {
    const out = await tempDir('skein-bundle-')
    dirs.push(out)
    const bundle = join(out, 'skein.mjs')
    await run(process.execPath, [join(REPO, 'scripts/build.ts'), '--mjs'], { cwd: REPO, env: { ...process.env, SKEIN_BUILD_OUT: bundle } })
    const version = await run(process.execPath, [bundle, '--version'], { cwd: out })
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    // The build stamps the commit it came from (`skein version`).
    const head = (await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO })).stdout.trim()
    const stamped = JSON.parse((await run(process.execPath, [bundle, 'version', '--json'], { cwd: out })).stdout) as { commit: string }
    expect(stamped.commit.startsWith(head)).toBe(true)

    const data = await tempDir('skein-bundle-data-')
    dirs.push(data)
    const api = await freePort()
    // Run from another directory: the bundle must not depend on the source tree.
    const agent = spawn(process.execPath, [bundle, 'agent', '--data-dir', data, '--listen', `127.0.0.1:${await freePort()}`, '--api', `127.0.0.1:${api}`, '--log-level', 'warn'], {
      cwd: out,
      env: { ...process.env, DOCKER_HOST: `unix://${join(data, 'no-docker.sock')}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    agent.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    try {
      const health = await waitFor('the bundled agent API', async () => {
        const res = await fetch(`http://127.0.0.1:${api}/v1/health`, { signal: AbortSignal.timeout(1000) })
        return res.ok ? ((await res.json()) as { ok: boolean }) : undefined
      }, 20_000)
      expect(health.ok, stderr).toBe(true)
    } finally {
      agent.kill('SIGKILL')
    }
  }, 60_000)
})
