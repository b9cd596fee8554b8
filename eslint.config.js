// Lint rules that keep the seams: pure cores take their clock and randomness from outside,
// and only the adapter files import libp2p or dockerode.
import tseslint from 'typescript-eslint'

// Pure decision cores: everything in these folders except the shells, which are named
// service.ts or *-shell.ts (they own the timers and the I/O).
const PURE_CORES = ['src/membership/**/*.ts', 'src/consensus/**/*.ts', 'src/sim/**/*.ts', 'src/state/**/*.ts', 'src/scheduler/**/*.ts']
const SHELLS = ['src/**/service.ts', 'src/**/*-shell.ts', 'src/**/*-sqlite.ts']

const impure = [
  { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'Pure cores take `now` as an argument; do not read the clock.' },
  { selector: "NewExpression[callee.name='Date']", message: 'Pure cores take `now` as an argument; do not construct Dates.' },
  { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'Pure cores take an injected Rng; do not call Math.random.' },
  { selector: "CallExpression[callee.object.name='performance'][callee.property.name='now']", message: 'Pure cores take `now` as an argument.' },
]

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/transport/libp2p*.ts', 'src/runtime/docker*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['libp2p', '@libp2p/*', '@chainsafe/*', '@multiformats/*'], message: 'Only src/transport/libp2p*.ts import libp2p.' },
          { group: ['dockerode'], message: 'Only src/runtime/docker*.ts import dockerode.' },
        ],
      }],
    },
  },
  {
    files: PURE_CORES,
    ignores: SHELLS,
    rules: {
      'no-restricted-syntax': ['error', ...impure],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Pure cores have no timers; the shell calls tick().' },
        { name: 'setInterval', message: 'Pure cores have no timers; the shell calls tick().' },
        { name: 'setImmediate', message: 'Pure cores have no timers; the shell calls tick().' },
        { name: 'queueMicrotask', message: 'Pure cores have no timers; the shell calls tick().' },
        { name: 'process', message: 'Pure cores do not touch the process.' },
        { name: 'fetch', message: 'Pure cores do no I/O.' },
      ],
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'net', 'http', 'crypto', 'timers'], message: 'Pure cores do no I/O.' },
          { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'dockerode', 'pino'], message: 'Pure cores import no adapters.' },
        ],
      }],
    },
  },
)
