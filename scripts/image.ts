/**
 * `npm run image`: the container image skein:VERSION (and skein:latest), built without pulling a
 * base image: `FROM scratch` plus the single binary (dist/skein, `npm run build`), the shared
 * libraries `ldd` names for it, the dynamic loader, and a few files of /etc. Hosts may be offline.
 *
 *   node scripts/image.ts [--binary PATH] [--tag NAME:TAG]
 *
 * Prints the image's size. The peer inside reaches the engine through a mounted
 * /var/run/docker.sock (see compose/).
 */
import { execFileSync } from 'node:child_process'
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import pkg from '../package.json' with { type: 'json' }

const root = join(import.meta.dirname, '..')
const { values } = parseArgs({ options: { binary: { type: 'string' }, tag: { type: 'string' } } })
const binary = values.binary ?? join(root, 'dist/skein')
const tags = values.tag === undefined ? [`skein:${pkg.version}`, 'skein:latest'] : [values.tag]

/** The files the dynamic loader needs for `binary`: every `=> /path` and the loader itself. */
function sharedLibraries(file: string): string[] {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' })
  const libs: string[] = []
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line)
    if (m?.[1] !== undefined) libs.push(m[1])
  }
  if (!libs.some((l) => l.includes('ld-linux'))) throw new Error(`ldd ${file} names no dynamic loader:\n${out}`)
  return libs
}

const started = Date.now()
let version: string
try {
  version = execFileSync(binary, ['version'], { encoding: 'utf8', env: {} }).trim()
} catch (err) {
  console.error(`image: ${binary} does not run (${String(err)}); build it first with npm run build`)
  process.exit(1)
}
const commit = /commit (\S+?),/.exec(version)?.[1] ?? 'unknown'

const ctx = await mkdtemp(join(tmpdir(), 'skein-image-'))
try {
  const rootfs = join(ctx, 'rootfs')
  const put = async (from: string, to: string): Promise<void> => {
    await mkdir(join(rootfs, dirname(to)), { recursive: true })
    await copyFile(from, join(rootfs, to)) // follows symlinks: the real file lands at the name asked for
  }
  await put(binary, '/usr/local/bin/skein')
  for (const lib of sharedLibraries(binary)) await put(lib, lib)
  // root's entry (HOME, user name lookups), host lookups from /etc/hosts first, then DNS (compose
  // service names come from Docker's DNS); resolv.conf and hosts are mounted by the engine.
  await mkdir(join(rootfs, 'etc'), { recursive: true })
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/usr/local/bin/skein\n')
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\n')
  await writeFile(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n')
  for (const d of ['tmp', 'root', 'var/lib/skein']) await mkdir(join(rootfs, d), { recursive: true })
  await chmod(join(rootfs, 'tmp'), 0o1777)
  await chmod(join(rootfs, 'var/lib/skein'), 0o700)
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      'FROM scratch',
      'COPY rootfs/ /',
      'ENV PATH=/usr/local/bin',
      `LABEL org.opencontainers.image.title=skein org.opencontainers.image.version=${pkg.version} org.opencontainers.image.revision=${commit}`,
      'VOLUME /var/lib/skein',
      'EXPOSE 7420',
      'ENTRYPOINT ["/usr/local/bin/skein"]',
      'CMD ["agent"]',
      '',
    ].join('\n'),
  )
  // The classic builder: BuildKit needs the buildx plugin, which hosts may lack; `FROM scratch`
  // pulls nothing with either. Its output (and the CLI's deprecation notice) shows only on failure.
  try {
    execFileSync('docker', ['build', '-q', ...tags.flatMap((t) => ['-t', t]), ctx], { stdio: 'pipe', env: { ...process.env, DOCKER_BUILDKIT: '0' } })
  } catch (err) {
    console.error((err as { stderr?: Buffer }).stderr?.toString() ?? '')
    throw err
  }
} finally {
  await rm(ctx, { recursive: true, force: true })
}
const size = Number(execFileSync('docker', ['image', 'inspect', '--format', '{{.Size}}', tags[0] ?? ''], { encoding: 'utf8' }).trim())
console.log(`built image ${tags.join(', ')} (${(size / 1024 / 1024).toFixed(2)} MB, ${size} bytes; ${version}) in ${Date.now() - started} ms`)
