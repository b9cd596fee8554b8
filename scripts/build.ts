/**
 * `npm run build`: bundle the CLI and agent into one ESM file, dist/skein.mjs, runnable with
 * the project's Node 24 (`node dist/skein.mjs …`). The production form of Skein: it starts
 * faster and uses less memory than running the TypeScript sources through type stripping.
 */
import { build } from 'esbuild'
import { chmod, stat } from 'node:fs/promises'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
// SKEIN_BUILD_OUT lets the tests build elsewhere without touching dist/.
const outfile = process.env.SKEIN_BUILD_OUT ?? join(root, 'dist/skein.mjs')

const started = Date.now()
await build({
  entryPoints: [join(root, 'node/skein.ts')],
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  outfile,
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  // dockerode reaches ssh2, whose native add-ons (sshcrypto.node, cpu-features) are optional and
  // loaded in try/catch: leave them out, so the bundle behaves as if they were not installed.
  // Skein talks to Docker over its Unix socket and never uses SSH.
  external: ['*.node', 'cpu-features'],
  logLevel: 'warning',
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
await chmod(outfile, 0o755)
const { size } = await stat(outfile)
console.log(`built ${outfile} (${(size / 1024 / 1024).toFixed(2)} MB) in ${Date.now() - started} ms`)
