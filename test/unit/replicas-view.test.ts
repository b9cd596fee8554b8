import { afterEach, describe, expect, it } from 'vitest'
import { createApiClient } from '../../src/api/client.ts'
import type { ReplicaView } from '../../src/api/replicas.ts'
import { createApiServer, type ApiServer } from '../../src/api/server.ts'
import type { PeerApi, ServiceView } from '../../src/api/types.ts'
import { formatReplicas, formatServices } from '../../src/cli/services.ts'
import { silentLogger } from '../../src/core/logger.ts'

const TOKEN = 'b'.repeat(64)
const NOW = Date.parse('2025-01-01T00:10:00.000Z')

const replicas: ReplicaView[] = [
  { service: 'web', slot: 0, host: 'h1', hostId: 'peer-1', state: 'running', health: 'none', containerId: '3f2a9c1d0b7e1234', startedAt: '2025-01-01T00:08:00.000Z', restarts: 1, exitCode: null, generation: 1, explain: null },
  { service: 'web', slot: 1, host: null, hostId: null, state: 'pending', health: 'none', containerId: null, startedAt: null, restarts: 0, exitCode: null, generation: null, explain: '1 of 2 replicas pending: constraint node.labels.zone == nowhere' },
]
const service: ServiceView = { name: 'web', stack: 's', image: 'local/busybox:1', mode: 'replicated', replicas: 2, revision: 1, updatedAt: '2025-01-01T00:00:00.000Z', writer: 'h1', running: 1, desired: 2, explain: replicas[1]?.explain ?? null }

describe('skein ps / services views', () => {
  let server: ApiServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('formats replicas with host, state, short container id, age, restarts and the explanation', () => {
    const out = formatReplicas(replicas, NOW)
    expect(out).toMatch(/^REPLICA\s+HOST\s+STATE\s+HEALTH\s+CONTAINER\s+AGE\s+RESTARTS\s+NOTE/)
    expect(out).toMatch(/web\.0\s+h1\s+running\s+none\s+3f2a9c1d0b7e\s+2m\s+1/)
    expect(out).toMatch(/web\.1\s+-\s+pending\s+none\s+-\s+-\s+0\s+1 of 2 replicas pending/)
  })

  it('services shows running/desired and the pending explanation', () => {
    const out = formatServices([service], NOW)
    expect(out).toMatch(/RUNNING/)
    expect(out).toMatch(/\b1\/2\b/)
    expect(out).toMatch(/web: 1 of 2 replicas pending/)
  })

  it('GET /v1/replicas answers every replica, or one service', async () => {
    const seen: (string | undefined)[] = []
    const peer = {
      replicas: (s: string | undefined) => {
        seen.push(s)
        return replicas.filter((r) => s === undefined || r.service === s)
      },
    } as unknown as PeerApi
    server = await createApiServer({ listen: '127.0.0.1:0', token: TOKEN, peer, logger: silentLogger() })
    const client = createApiClient({ address: server.address, token: TOKEN })
    expect(await client.replicas()).toEqual(replicas)
    expect(await client.replicas('db')).toEqual([])
    expect(seen).toEqual([undefined, 'db'])
  })
})
