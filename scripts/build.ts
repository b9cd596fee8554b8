/**
 * `npm run build`: the two production forms of Skein.
 *
 * - dist/skein.mjs: one ESM bundle, run with the project's Node 24 (`node dist/skein.mjs …`);
 *   benchmarks and tests use it. Only this: `node scripts/build.ts --mjs`.
 * - dist/skein: a single executable (Node's single-executable-application support): the Node
 *   binary that runs this script, stripped, with a CommonJS bundle and its V8 code cache injected
 *   by postject. It needs no Node on the host. Only this: `node scripts/build.ts --bin`.
 *
 * The binary embeds the Node binary running the build, so it is built for this machine's
 * architecture (build on an ARM64 host for ARM64: docs/install.md). SKEIN_NODE_BINARY names
 * another Node 24.21 binary to embed (its blob is made with this Node: the versions must match).
 * SKEIN_BUILD_OUT / SKEIN_BUILD_BIN let tests build elsewhere without touching dist/.
 */
import { build, type BuildOptions } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { chmod, copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const root = join(import.meta.dirname, '..')
const mjsOut = process.env.SKEIN_BUILD_OUT ?? join(root, 'dist/skein.mjs')
const binOut = process.env.SKEIN_BUILD_BIN ?? join(root, 'dist/skein')
const args = process.argv.slice(2)
const unknown = args.filter((a) => a !== '--mjs' && a !== '--bin')
if (unknown.length > 0) {
  console.error(`build: unknown argument ${unknown.join(' ')} (use --mjs, --bin, or nothing for both)`)
  process.exit(2)
}
const wantMjs = args.length === 0 || args.includes('--mjs')
const wantBin = args.length === 0 || args.includes('--bin')

/** Node 24's SEA fuse (postject's --sentinel-fuse). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

/** The short commit of the tree being built, `-dirty` when it has changes; `unknown` outside git. */
function gitCommit(): string {
  const git = (...a: string[]): string => execFileSync('git', a, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  try {
    const commit = git('rev-parse', '--short', 'HEAD')
    return git('status', '--porcelain', '--untracked-files=no') === '' ? commit : `${commit}-dirty`
  } catch {
    return 'unknown'
  }
}

const common: BuildOptions = {
  entryPoints: [join(root, 'node/skein.ts')],
  bundle: true,
  platform: 'node',
  target: 'node24',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  // dockerode reaches ssh2, whose native add-ons (sshcrypto.node, cpu-features) are optional and
  // loaded in try/catch: leave them out, so the bundle behaves as if they were not installed.
  // Skein talks to Docker over its Unix socket and never uses SSH.
  external: ['*.node', 'cpu-features'],
  logLevel: 'warning',
  define: { __SKEIN_COMMIT__: JSON.stringify(gitCommit()) },
}

/** Run a command, showing its output only if it fails. */
function quiet(cmd: string, cmdArgs: string[]): void {
  try {
    execFileSync(cmd, cmdArgs, { stdio: 'pipe' })
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer }
    console.error(`${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`)
    throw err
  }
}

async function report(what: string, file: string, started: number): Promise<void> {
  const { size } = await stat(file)
  console.log(`built ${what} ${file} (${(size / 1024 / 1024).toFixed(2)} MB) in ${Date.now() - started} ms`)
}

async function buildMjs(): Promise<void> {
  const started = Date.now()
  await build({
    ...common,
    format: 'esm',
    outfile: mjsOut,
    // Some dependencies are CommonJS and use require() and __dirname; give the ESM bundle both.
    banner: {
      js: [
        "import { createRequire as __skeinRequire } from 'node:module';",
        "import { fileURLToPath as __skeinPath } from 'node:url';",
        "import { dirname as __skeinDir } from 'node:path';",
        'const require = __skeinRequire(import.meta.url);',
        'const __filename = __skeinPath(import.meta.url);',
        'const __dirname = __skeinDir(__filename);',
      ].join(' '),
    },
  })
  await chmod(mjsOut, 0o755)
  await report('bundle', mjsOut, started)
}

async function buildBinary(): Promise<void> {
  const started = Date.now()
  const work = await mkdtemp(join(tmpdir(), 'skein-sea-'))
  try {
    // A SEA runs one CommonJS script; node/skein.ts has no top-level await for this reason, and
    // the sources use no import.meta. The SEA's require() loads only built-in modules, which is
    // all the bundle asks for (the optional native add-ons above fail as "not installed").
    const bundle = join(work, 'skein.cjs')
    await build({ ...common, format: 'cjs', outfile: bundle })
    const blob = join(work, 'skein.blob')
    const config = {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      // V8's code cache for the bundle: `skein version` starts in about 80 ms instead of 130 ms.
      useCodeCache: true,
      // What the shebang of node/skein.ts passes: a small young generation, less idle memory.
      execArgv: ['--max-semi-space-size=1'],
    }
    await writeFile(join(work, 'sea.json'), JSON.stringify(config))
    quiet(process.execPath, ['--experimental-sea-config', join(work, 'sea.json')])

    const exe = join(work, 'skein')
    await copyFile(process.env.SKEIN_NODE_BINARY ?? process.execPath, exe)
    await chmod(exe, 0o755)
    // The Node binary from npm carries debug symbols: strip them (127 MB → 108 MB) when strip is there.
    try {
      execFileSync('strip', [exe], { stdio: 'ignore' })
    } catch {
      console.log('build: strip is not available; the binary keeps its debug symbols')
    }
    // postject prints LIEF warnings about the stripped section names; they are harmless.
    quiet(process.execPath, [join(root, 'node_modules/postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE])
    await mkdir(dirname(binOut), { recursive: true })
    await rm(binOut, { force: true })
    await copyFile(exe, binOut)
    await chmod(binOut, 0o755)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  await report('single executable', binOut, started)
}

if (wantMjs) await buildMjs()
if (wantBin) await buildBinary()
