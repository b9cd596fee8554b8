import { describe, expect, it } from 'vitest'
import { formatCpu, formatDuration, formatMemory, parseCpu, parseDuration, parseFileMode, parseMemory } from '../../src/model/units.ts'
import { Fail, formatConstraint, parseConstraint, parsePortShort, parseVolumeShort, shellWords } from '../../src/model/syntax.ts'
import { editDistance, formatPath, suggestKey } from '../../src/model/errors.ts'

describe('durations', () => {
  it.each([
    ['10s', 10_000], ['1m30s', 90_000], ['250ms', 250], ['1.5h', 5_400_000], ['2h45m', 9_900_000], ['0s', 0], ['0', 0],
    ['1d', 86_400_000], ['1500us', undefined], ['1000us', 1], ['.5s', 500],
  ])('%s → %s ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })
  it.each(['', '10', 's', '-1s', '1x', '10 s', '1m 30s', '1.0001ms', '31d', 'soon'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined()
  })
  it('formats so that parsing gives the same number back', () => {
    for (const ms of [0, 1, 999, 1000, 1500, 60_000, 90_000, 3_600_000, 3_723_004]) expect(parseDuration(formatDuration(ms))).toBe(ms)
    expect(formatDuration(90_000)).toBe('1m30s')
    expect(formatDuration(3_723_004)).toBe('1h2m3s4ms')
  })
})

describe('memory', () => {
  it.each([
    ['256M', 268_435_456], ['256m', 268_435_456], ['256MB', 268_435_456], ['256Mi', 268_435_456], ['256MiB', 268_435_456],
    ['1G', 1_073_741_824], ['1.5g', 1_610_612_736], ['64k', 65_536], ['100b', 100], ['2T', 2 * 1024 ** 4], [1024, 1024], ['1024', 1024],
  ] as const)('%s → %s bytes', (input, bytes) => {
    expect(parseMemory(input)).toBe(bytes)
  })
  it.each(['', 'lots', '-1M', '1X', '0', 0, -5, 1.5, null, true])('rejects %j', (input) => {
    expect(parseMemory(input)).toBeUndefined()
  })
  it('formats with the largest unit that divides exactly', () => {
    expect(formatMemory(268_435_456)).toBe('256M')
    expect(formatMemory(1_610_612_736)).toBe('1536M')
    expect(formatMemory(1_073_741_824)).toBe('1G')
    expect(formatMemory(1000)).toBe('1000B')
  })
})

describe('cpu', () => {
  it.each([[0.5, 500], ['0.50', 500], ['2', 2000], [1.25, 1250], ['500m', 500], ['.1', 100], [0.001, 1]] as const)('%j → %s millicores', (input, milli) => {
    expect(parseCpu(input)).toBe(milli)
  })
  it.each([0, '0', -1, '0.0005', 'half', '1 core', null, 1001])('rejects %j', (input) => {
    expect(parseCpu(input)).toBeUndefined()
  })
  it('formats as cores', () => {
    expect(formatCpu(500)).toBe('0.5')
    expect(formatCpu(2000)).toBe('2')
  })
})

describe('file modes', () => {
  it.each([['0440', 0o440], ['440', 0o440], ['0o600', 0o600], [292, 292], ['1777', 0o1777]] as const)('%j → %s', (input, mode) => {
    expect(parseFileMode(input)).toBe(mode)
  })
  it.each(['0980', 'rw', -1, 0o10000])('rejects %j', (input) => {
    expect(parseFileMode(input)).toBeUndefined()
  })
})

describe('shell words', () => {
  it.each([
    ['bundle exec thin -p 3000', ['bundle', 'exec', 'thin', '-p', '3000']],
    [`sh -c 'echo "hi there"'`, ['sh', '-c', 'echo "hi there"']],
    [`echo "a \\"b\\" \\$HOME" c\\ d`, ['echo', 'a "b" $HOME', 'c d']],
    ['  spaced   out  ', ['spaced', 'out']],
    [`''`, ['']],
    ['', []],
  ])('%j', (text, words) => {
    expect(shellWords(text)).toEqual(words)
  })
  it('rejects unterminated quotes', () => {
    expect(shellWords(`echo 'x`)).toEqual(new Fail('expected a command; it has an unterminated single quote'))
    expect(shellWords(`echo "x`)).toBeInstanceOf(Fail)
  })
})

describe('short port syntax', () => {
  it.each([
    ['80', [{ target: 80, published: null, protocol: 'tcp', hostIp: null }]],
    [8080, [{ target: 8080, published: null, protocol: 'tcp', hostIp: null }]],
    ['8080:80', [{ target: 80, published: 8080, protocol: 'tcp', hostIp: null }]],
    ['53:53/udp', [{ target: 53, published: 53, protocol: 'udp', hostIp: null }]],
    ['127.0.0.1:8001:8001', [{ target: 8001, published: 8001, protocol: 'tcp', hostIp: '127.0.0.1' }]],
    ['[::1]:6001:6001', [{ target: 6001, published: 6001, protocol: 'tcp', hostIp: '::1' }]],
    ['9090-9091:8080-8081', [{ target: 8080, published: 9090, protocol: 'tcp', hostIp: null }, { target: 8081, published: 9091, protocol: 'tcp', hostIp: null }]],
    ['3000-3001', [{ target: 3000, published: null, protocol: 'tcp', hostIp: null }, { target: 3001, published: null, protocol: 'tcp', hostIp: null }]],
  ] as const)('%j', (input, ports) => {
    expect(parsePortShort(input)).toEqual(ports)
  })
  it.each([
    ['99999', 'expected a port like "8080:80", "127.0.0.1:8080:80/udp" or "80"'],
    ['80:80/sctp', 'expected protocol tcp or udp, got "sctp"'],
    ['8000-8010:80', 'expected published and target ranges of the same length'],
    ['host:80:80', 'expected a port like "8080:80", "127.0.0.1:8080:80/udp" or "80"; "host" is not an IP address'],
    ['1:2:3:4', 'expected a port like "8080:80", "127.0.0.1:8080:80/udp" or "80"'],
    ['0:80', 'expected a port like "8080:80", "127.0.0.1:8080:80/udp" or "80"'],
  ])('rejects %j', (input, message) => {
    expect(parsePortShort(input)).toEqual(new Fail(message))
  })
})

describe('short volume syntax', () => {
  it.each([
    ['data:/var/lib/data', { type: 'volume', source: 'data', target: '/var/lib/data', readOnly: false, otherModes: [] }],
    ['/srv/media:/media:ro', { type: 'bind', source: '/srv/media', target: '/media', readOnly: true, otherModes: [] }],
    ['./config:/config', { type: 'bind', source: './config', target: '/config', readOnly: false, otherModes: [] }],
    ['/cache', { type: 'volume', source: null, target: '/cache', readOnly: false, otherModes: [] }],
    ['/:/host:ro,rslave', { type: 'bind', source: '/', target: '/host', readOnly: true, otherModes: ['rslave'] }],
    ['db:/data:z', { type: 'volume', source: 'db', target: '/data', readOnly: false, otherModes: ['z'] }],
  ] as const)('%j', (input, mount) => {
    expect(parseVolumeShort(input)).toEqual(mount)
  })
  it.each([
    ['data:relative', 'expected an absolute container path, not "relative"'],
    ['a:b:c:d', 'expected a volume like "data:/var/lib/data", "/srv/media:/media:ro" or "/cache"'],
    ['C:\\data:/data', 'expected a Linux path; Windows paths are not supported'],
    ['bad name!:/x', 'expected a volume name or a path as the source, not "bad name!"'],
  ])('rejects %j', (input, message) => {
    expect(parseVolumeShort(input)).toEqual(new Fail(message))
  })
})

describe('constraints', () => {
  it.each([
    ['node.labels.zone == attic', { attribute: 'node.labels', label: 'zone', op: 'in', values: ['attic'] }],
    ['node.labels.zone != attic', { attribute: 'node.labels', label: 'zone', op: 'notIn', values: ['attic'] }],
    ['node.labels.disk in (ssd, nvme)', { attribute: 'node.labels', label: 'disk', op: 'in', values: ['ssd', 'nvme'] }],
    ['node.labels.disk not in (hdd)', { attribute: 'node.labels', label: 'disk', op: 'notIn', values: ['hdd'] }],
    ['node.hostname==pi4', { attribute: 'node.hostname', label: null, op: 'in', values: ['pi4'] }],
    ['node.platform.arch != "arm64"', { attribute: 'node.platform.arch', label: null, op: 'notIn', values: ['arm64'] }],
    ['node.labels.example.com/role == db', { attribute: 'node.labels', label: 'example.com/role', op: 'in', values: ['db'] }],
  ] as const)('%j', (text, c) => {
    expect(parseConstraint(text)).toEqual(c)
  })
  it.each([
    ['node.labels.zone = attic', /^expected a constraint like/],
    ['node.role == manager', /^node.role has no meaning in Skein/],
    ['engine.labels.zone == a', /^Skein has one set of host labels; write node.labels.zone$/],
    ['node.cpu == 4', /^expected node.labels.KEY, node.hostname/],
    ['node.labels.zone in attic', /^expected a constraint like/],
    ['node.labels.zone == two words', /values are words without spaces$/],
  ])('rejects %j', (text, message) => {
    const r = parseConstraint(text)
    expect(r).toBeInstanceOf(Fail)
    expect((r as Fail).message).toMatch(message)
  })
  it('formats back to the way people write them', () => {
    for (const text of ['node.labels.zone == attic', 'node.labels.zone != attic', 'node.labels.disk in (ssd, nvme)', 'node.id not in (a, b)']) {
      expect(formatConstraint(parseConstraint(text) as never)).toBe(text)
    }
  })
})

describe('paths and suggestions', () => {
  it('formats paths as written, without the services prefix', () => {
    expect(formatPath(['services', 'web', 'deploy', 'replicas'])).toBe('web.deploy.replicas')
    expect(formatPath(['services', 'web', 'labels', 'traefik.enable'])).toBe('web.labels["traefik.enable"]')
    expect(formatPath(['services', 'web', 'ports', 2])).toBe('web.ports[2]')
    expect(formatPath(['volumes', 'data', 'driver'])).toBe('volumes.data.driver')
    expect(formatPath([])).toBe('')
  })
  it('suggests close keys, camelCase forms and synonyms', () => {
    const keys = ['image', 'replicas', 'workingDir', 'env']
    expect(suggestKey('imgae', keys)).toBe('image')
    expect(suggestKey('replica', keys)).toBe('replicas')
    expect(suggestKey('working_dir', keys)).toBe('workingDir')
    expect(suggestKey('WorkingDir', keys)).toBe('workingDir')
    expect(suggestKey('environment', keys, { environment: 'env' })).toBe('env')
    expect(suggestKey('volumes', keys)).toBeUndefined()
    expect(editDistance('imgae', 'image')).toBe(1)
    expect(editDistance('kitten', 'sitting')).toBe(3)
  })
})
