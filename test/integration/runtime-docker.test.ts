// The runtime contract against the real Docker engine (scripts/docker-setup.sh), plus what only a
// real engine shows: an engine that is not there.
import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { createDockerRuntime } from '../../src/runtime/docker.ts'
import { describeRuntime } from '../contract/runtime-contract.ts'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

describeRuntime('docker', async () => ({ runtime: createDockerRuntime({ logger: silentLogger() }), real: true, freePort }))

describe('docker runtime: engine unavailable', () => {
  it('gives engine-unavailable with a hint for a socket that does not exist, and does not crash', async () => {
    const rt = createDockerRuntime({ socketPath: '/tmp/skein-no-such-docker.sock', logger: silentLogger() })
    for (const call of [() => rt.ping(), () => rt.list(), () => rt.inspect('x'), () => rt.ensureImage('local/busybox:1'), () => rt.stats('x')]) {
      const err = await call().then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(SkeinError)
      expect((err as SkeinError).code).toBe('engine-unavailable')
      expect((err as SkeinError).message).toContain('/tmp/skein-no-such-docker.sock')
      expect((err as SkeinError).hint).toMatch(/is dockerd running\? DOCKER_HOST=/)
    }
    const events = (async () => { for await (const _ of rt.events({})) { /* nothing */ } })()
    await expect(events).rejects.toMatchObject({ code: 'engine-unavailable' })
    const logs = (async () => { for await (const _ of rt.logs('x', { follow: true })) { /* nothing */ } })()
    await expect(logs).rejects.toMatchObject({ code: 'engine-unavailable' })
  })
})
