import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { loadSpecFile } from '../../src/model/load.ts'

const at = (rel: string) => fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url))

describe('loadSpecFile', () => {
  it('reads .env for interpolation and env_file for the environment, and resolves binds against the file', async () => {
    const r = await loadSpecFile(at('compose/dotenv/compose.yaml'), { env: { DOMAIN: 'code.example.org' } })
    if (!r.ok) throw new Error(r.errors.map((e) => e.text).join('\n'))
    expect(r.format).toBe('compose')
    expect(r.stack.name).toBe('git')
    const gitea = r.stack.services[0]
    expect(gitea?.image).toBe('gitea/gitea:1.22.3')
    // The client's environment wins over .env; environment wins over env_file.
    expect(gitea?.env).toEqual({ GITEA__database__DB_TYPE: 'sqlite3', GITEA__server__DOMAIN: 'code.example.org', USER_UID: '1000' })
    expect(gitea?.ports.map((p) => `${p.published}:${p.target}`)).toEqual(['2022:22', '3000:3000'])
    expect(gitea?.mounts[0]).toEqual({ type: 'bind', source: at('compose/dotenv/data'), target: '/data', readOnly: false })
    expect(r.warnings.map((w) => w.message)).toEqual([`binds ./data as ${at('compose/dotenv/data')}: that path must exist on every host that may run gitea`])
  })

  it('reads the env files a Compose file names', async () => {
    const r = await loadSpecFile(at('compose/nextcloud-redis.yaml'), { env: {} })
    if (!r.ok) throw new Error(r.errors.map((e) => e.text).join('\n'))
    expect(r.stack.services.find((s) => s.name === 'mariadb')?.env['MYSQL_PASSWORD']).toBe('s3cr3t pass')
  })

  it('loads a native file and applies --stack', async () => {
    const r = await loadSpecFile(at('native/media.yaml'), { stack: 'media2' })
    if (!r.ok) throw new Error(r.errors.map((e) => e.text).join('\n'))
    expect(r.format).toBe('native')
    expect(r.stack.services.map((s) => s.stack)).toEqual(['media2', 'media2'])
    expect(r.stack.volumes['config']?.name).toBe('media2_config')
  })

  it('reports a missing file as an error', async () => {
    const r = await loadSpecFile(at('native/nope.yaml'))
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.errors.map((e) => e.message)).toEqual(['the file does not exist'])
  })

  it('names the file as given in messages', async () => {
    const r = await loadSpecFile(at('compose/bad-yaml.yaml'))
    if (r.ok) throw new Error('expected errors')
    expect(r.errors[0]?.text).toBe(`${at('compose/bad-yaml.yaml')}:5: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]`)
  })
})
