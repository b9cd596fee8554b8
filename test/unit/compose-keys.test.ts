import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as keys from '../../src/model/compose-keys.ts'
import { NATIVE_SERVICE_KEYS } from '../../src/model/native-service.ts'

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8')

function mentioned(text: string, key: string): boolean {
  const esc = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`\`([^\`\\n]*[^A-Za-z_\`])?${esc}([^A-Za-z_\`][^\`\\n]*)?\``).test(text)
}

const TABLES = {
  SERVICE_KEYS: keys.SERVICE_KEYS, DEPLOY_KEYS: keys.DEPLOY_KEYS, LIMITS_KEYS: keys.LIMITS_KEYS, RESERVATIONS_KEYS: keys.RESERVATIONS_KEYS,
  PLACEMENT_KEYS: keys.PLACEMENT_KEYS, HEALTHCHECK_KEYS: keys.HEALTHCHECK_KEYS, PORT_KEYS: keys.PORT_KEYS, VOLUME_KEYS: keys.VOLUME_KEYS,
  BIND_KEYS: keys.BIND_KEYS, VOLUME_OPTS_KEYS: keys.VOLUME_OPTS_KEYS, TMPFS_KEYS: keys.TMPFS_KEYS, TOP_KEYS: keys.TOP_KEYS,
  TOP_VOLUME_KEYS: keys.TOP_VOLUME_KEYS, TOP_CONFIG_KEYS: keys.TOP_CONFIG_KEYS, TOP_SECRET_KEYS: keys.TOP_SECRET_KEYS,
}

describe('documentation', () => {
  it('docs/compose.md names every Compose key Skein knows, in a table row with its treatment', () => {
    const text = doc('compose.md')
    const rows = text.split('\n').filter((l) => l.startsWith('|'))
    for (const [table, entries] of Object.entries(TABLES)) {
      for (const [key, t] of Object.entries(entries)) {
        const label = t.kind === 'silent' ? 'ignored silently' : t.kind
        const row = rows.find((r) => mentioned(r, key) && r.includes(label))
        expect(row, `${table}.${key} (${label})`).toBeDefined()
      }
    }
  })

  it('docs/spec.md documents every native service field', () => {
    const text = doc('spec.md')
    for (const key of NATIVE_SERVICE_KEYS) expect(mentioned(text, key), key).toBe(true)
  })
})

describe('key policing', () => {
  it('removes ignored, rejected, unknown and x- keys in place, and reports each', () => {
    const root = {
      name: 'demo', version: '3.8', 'x-anchor': 1,
      services: { web: { image: 'nginx', build: '.', volumes_from: ['db'], imgae: 'x', 'x-skein': { rebalance: true }, 'x-other': 1, deploy: { endpoint_mode: 'vip', replicas: 1 } } },
    }
    const seen: string[] = []
    keys.policeKeys(root, { warn: (p, m) => seen.push(`W ${p.join('.')}: ${m}`), error: (p, m) => seen.push(`E ${p.join('.')}: ${m}`) })
    expect(root).toEqual({ name: 'demo', services: { web: { image: 'nginx', 'x-skein': { rebalance: true }, deploy: { replicas: 1 } } } })
    expect(seen).toEqual([
      'W services.web.build: is ignored: a cluster runs images; build and push the image first, then set image',
      "E services.web.volumes_from: is not supported: containers of one service may run on other hosts than another's, so they cannot share volumes; declare a named volume",
      'E services.web.imgae: unknown key, did you mean "image"?',
      "W services.web.deploy.endpoint_mode: is ignored: Skein has no cluster networks yet: containers use each host's default bridge, and services reach each other through published ports",
    ])
  })
})
