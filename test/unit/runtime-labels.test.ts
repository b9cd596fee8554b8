// containerSpecFor, the Skein labels, and the Docker stream helpers (pure).
import { describe, expect, it } from 'vitest'
import { serviceSpecSchema } from '../../src/model/spec.ts'
import { LABELS, containerName, containerSpecFor, hostSelector, replicaFromLabels, skeinLabels, type ReplicaIdentity } from '../../src/runtime/labels.ts'
import { LogDemuxer, PullTally, cpuPercent, memoryBytes, parseEngineTime } from '../../src/runtime/docker-stream.ts'

const replica: ReplicaIdentity = { cluster: 'c1', service: 'web', slot: '3', revision: 7, host: 'peerA', term: 4, index: 120 }

describe('containerSpecFor', () => {
  it('maps a canonical service to a container spec with every Skein label', () => {
    const svc = serviceSpecSchema.parse({
      stack: 'shop', name: 'web', image: 'nginx:1.27', command: ['nginx', '-g', 'daemon off;'], entrypoint: ['/docker-entrypoint.sh'],
      env: { A: '1' }, workingDir: '/srv', user: '1000:1000', labels: { team: 'x', [LABELS.host]: 'spoofed' },
      ports: [{ target: 80, published: 8080 }, { target: 53, protocol: 'udp' }],
      resources: { limits: { milliCpu: 500, memoryBytes: 64 * 1024 * 1024, pids: 100 } },
      mounts: [
        { type: 'volume', source: 'data', target: '/data', volume: { name: 'shop_data' } },
        { type: 'bind', source: '/etc/app', target: '/conf', readOnly: true },
        { type: 'tmpfs', target: '/tmp', sizeBytes: 1024 },
      ],
      healthcheck: { kind: 'exec', command: ['curl', '-f', 'http://localhost'], intervalMs: 5000, timeoutMs: 2000, retries: 2, startPeriodMs: 1000 },
    })
    const c = containerSpecFor(svc, replica)
    expect(c.name).toMatch(/^skein-web\.3-[0-9a-f]{8}$/)
    expect(c).toMatchObject({
      image: 'nginx:1.27', command: ['nginx', '-g', 'daemon off;'], entrypoint: ['/docker-entrypoint.sh'], env: { A: '1' },
      workingDir: '/srv', user: '1000:1000', memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pidsLimit: 100, network: 'bridge',
      ports: [{ containerPort: 80, protocol: 'tcp', hostPort: 8080, hostIp: null }, { containerPort: 53, protocol: 'udp', hostPort: null, hostIp: null }],
      mounts: [
        { type: 'volume', source: 'shop_data', target: '/data', readOnly: false },
        { type: 'bind', source: '/etc/app', target: '/conf', readOnly: true },
        { type: 'tmpfs', target: '/tmp', sizeBytes: 1024, mode: null },
      ],
      healthcheck: { test: ['CMD', 'curl', '-f', 'http://localhost'], intervalNs: 5e9, timeoutNs: 2e9, retries: 2, startPeriodNs: 1e9 },
    })
    expect(c.labels).toEqual({
      team: 'x', [LABELS.cluster]: 'c1', [LABELS.service]: 'web', [LABELS.slot]: '3', [LABELS.revision]: '7',
      [LABELS.host]: 'peerA', [LABELS.term]: '4', [LABELS.index]: '120',
    })
    expect(replicaFromLabels(c.labels)).toEqual(replica)
  })

  it('keeps defaults as null and maps the healthcheck kinds', () => {
    const base = { stack: 's', name: 'a', image: 'busybox' }
    const c = containerSpecFor(serviceSpecSchema.parse(base), replica)
    expect(c).toMatchObject({ command: null, entrypoint: null, workingDir: null, user: null, memoryBytes: null, nanoCpus: null, pidsLimit: null, healthcheck: null, ports: [], mounts: [] })
    const hc = (healthcheck: unknown) => containerSpecFor(serviceSpecSchema.parse({ ...base, healthcheck }), replica).healthcheck
    expect(hc({ kind: 'none' })?.test).toEqual(['NONE'])
    expect(hc({ kind: 'shell', command: 'test -f /ok' })?.test).toEqual(['CMD-SHELL', 'test -f /ok'])
    // Probed by the agent; the image's own check is disabled, as any service check replaces it.
    expect(hc({ kind: 'http', port: 80 })?.test).toEqual(['NONE'])
    expect(hc({ kind: 'tcp', port: 80 })?.test).toEqual(['NONE'])
  })

  it('is pure and names differ per decision', () => {
    const svc = serviceSpecSchema.parse({ stack: 's', name: 'a', image: 'busybox' })
    expect(containerSpecFor(svc, replica)).toEqual(containerSpecFor(svc, replica))
    expect(containerName(replica)).not.toBe(containerName({ ...replica, term: 5 }))
    expect(containerName({ ...replica, service: 'my/svc', slot: 'a b' })).toMatch(/^skein-my_svc\.a_b-/)
  })

  it('selects a host and reads labels back, rejecting malformed ones', () => {
    expect(hostSelector('c1', 'peerA')).toEqual({ [LABELS.cluster]: 'c1', [LABELS.host]: 'peerA' })
    expect(replicaFromLabels({ ...skeinLabels(replica), [LABELS.term]: 'x' })).toBeNull()
    const { [LABELS.slot]: _, ...noSlot } = skeinLabels(replica)
    expect(replicaFromLabels(noSlot)).toBeNull()
  })
})

describe('docker stream helpers', () => {
  const frame = (type: number, text: string) => {
    const p = Buffer.from(text)
    const h = Buffer.alloc(8)
    h[0] = type
    h.writeUInt32BE(p.length, 4)
    return Buffer.concat([h, p])
  }

  it('demultiplexes frames split anywhere, with timestamps', () => {
    const all = Buffer.concat([frame(1, '2024-05-01T10:00:00.123456789Z hello\n2024-05-01T10:00:01Z wor'), frame(2, '2024-05-01T10:00:02Z err\n'), frame(1, 'ld\n')])
    for (const cut of [1, 3, 8, 9, 20, all.length - 1]) {
      const d = new LogDemuxer({ timestamps: true, now: () => 0 })
      const lines = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut)), ...d.end()]
      expect(lines).toEqual([
        { stream: 'stdout', time: Date.parse('2024-05-01T10:00:00.123Z'), text: 'hello' },
        { stream: 'stderr', time: Date.parse('2024-05-01T10:00:02Z'), text: 'err' },
        { stream: 'stdout', time: Date.parse('2024-05-01T10:00:01Z'), text: 'world' },
      ])
    }
  })

  it('parses engine times and computes stats like docker stats', () => {
    expect(parseEngineTime('0001-01-01T00:00:00Z')).toBeNull()
    expect(parseEngineTime('2024-05-01T10:00:00.5Z')).toBe(Date.parse('2024-05-01T10:00:00.500Z'))
    expect(cpuPercent({ cpu_stats: { cpu_usage: { total_usage: 300 }, system_cpu_usage: 2000, online_cpus: 2 }, precpu_stats: { cpu_usage: { total_usage: 100 }, system_cpu_usage: 1000 } })).toBe(40)
    expect(cpuPercent({})).toBe(0)
    expect(memoryBytes({ memory_stats: { usage: 1000, stats: { cache: 300 } } })).toBe(700)
    expect(memoryBytes({ memory_stats: { usage: 1000, stats: { inactive_file: 100 } } })).toBe(900)
  })
})

describe('pull progress tally', () => {
  it('counts layers done of those announced and sums the downloaded bytes, as Docker reports them', () => {
    const t = new PullTally()
    const p = (status: string, layer?: string, current?: number, total?: number) => t.push({ image: 'x:1', status, ...(layer === undefined ? {} : { layer }), ...(current === undefined ? {} : { current, total }) })
    p('pulling')
    p('Pulling from library/x', '1') // the tag, not a layer
    p('Pulling fs layer', 'a')
    p('Pulling fs layer', 'b')
    p('Already exists', 'c')
    expect(t.summary()).toEqual({ layersDone: 1, layersTotal: 3, bytes: 0, bytesTotal: null })
    p('Downloading', 'a', 100, 400)
    p('Downloading', 'b', 50, 1000)
    p('Downloading', 'a', 300, 400)
    expect(t.summary()).toEqual({ layersDone: 1, layersTotal: 3, bytes: 350, bytesTotal: 1400 })
    p('Download complete', 'a')
    p('Extracting', 'a', 400, 400) // extraction bytes are not downloads
    p('Pull complete', 'a')
    expect(t.summary()).toEqual({ layersDone: 2, layersTotal: 3, bytes: 450, bytesTotal: 1400 })
    p('Digest: sha256:abc')
    p('Status: Downloaded newer image for x:1')
    expect(t.summary().layersTotal).toBe(3)
  })
})
