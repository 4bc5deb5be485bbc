// ESLint for ebb: rules that catch real bugs, not style. Type-aware (typescript-eslint with the
// TypeScript project service), so a promise nobody awaits, an `async` callback where a plain one is
// expected, or a `switch` that misses a case are errors. Formatting is left to the author.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Files tsc checks (tsconfig.json "include"); other .ts files (scratch, generated) are not linted. */
const tsFiles = ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'];

/** Time that decides behaviour goes through the injected Clock (src/shared/clock.ts) so tests can drive it. */
const clockMessage = 'Use the injected Clock (src/shared/clock.ts) so tests can drive time with FakeClock.';
const clockBound = ['src/domain/**/*.ts', 'src/control/**/*.ts', 'src/health/**/*.ts'];

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.ebb/', '.bench/', 'test-artifacts/'] },

  // The dashboard's page (assets/dashboard/) is plain browser JavaScript served as it is, with no build:
  // these Node-oriented rules do not fit it (browser globals, no type information), and it is tested
  // by running it in Chromium (test/integration/dashboard-browser.test.ts).
  { ignores: ['assets/dashboard/'] },

  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
  },

  {
    files: tsFiles,
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'warn' },
    rules: {
      // The bugs this config is for.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe() return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      'no-self-compare': 'error',
      'no-unreachable-loop': 'error',
      'no-constant-binary-expression': 'error',

      // tsc already reports these (noUnusedLocals, the type checker), or they fire on sound code at
      // the edges (parsed JSON, untyped wire data) where the code checks shapes itself.
      'no-undef': 'off',
      'no-redeclare': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      // ws hands messages as Buffer | ArrayBuffer | Buffer[]; with its default binaryType never an ArrayBuffer.
      '@typescript-eslint/no-base-to-string': ['error', { ignoredTypeNames: ['Error', 'RegExp', 'URL', 'URLSearchParams', 'ArrayBuffer'] }],
      // Parsing HTTP means matching control characters on purpose.
      'no-control-regex': 'off',
      // A `let` assigned once after a closure that reads it is sound.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },

  {
    // Tests reach into internals and fake what they need.
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },

  {
    files: clockBound,
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: clockMessage },
        { name: 'setInterval', message: clockMessage },
        { name: 'setImmediate', message: clockMessage },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: clockMessage },
        { object: 'performance', property: 'now', message: clockMessage },
        { object: 'globalThis', property: 'setTimeout', message: clockMessage },
        { object: 'globalThis', property: 'setInterval', message: clockMessage },
      ],
      'no-restricted-imports': [
        'error',
        { name: 'node:timers', message: clockMessage },
        { name: 'node:timers/promises', message: clockMessage },
        { name: 'timers', message: clockMessage },
        { name: 'timers/promises', message: clockMessage },
      ],
    },
  },
);
