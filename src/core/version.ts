import pkg from '../../package.json' with { type: 'json' }

/** The version of this build of skein, from package.json. */
export const VERSION: string = pkg.version

// Set by scripts/build.ts (esbuild `define`) in the bundle and the single binary; undeclared (so
// `typeof` is 'undefined') when the sources run directly.
declare const __SKEIN_COMMIT__: string | undefined

/** The git commit (short, `-dirty` when the tree had changes) the build came from; `unknown` when not built from git. */
export const COMMIT: string = typeof __SKEIN_COMMIT__ === 'string' && __SKEIN_COMMIT__ !== '' ? __SKEIN_COMMIT__ : 'unknown'
