// ESLint with typescript-eslint. The type-aware promise rules are why it is here (a floating
// promise is an unhandled rejection waiting to happen); formatting is Prettier's job.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // One logger setup (util/log.ts): components take a Logger from it, never make their own.
    // The access log is not a component log but a data file of its own (proxy/access-log.ts).
    files: ['src/**'],
    ignores: ['src/util/log.ts', 'src/proxy/access-log.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'pino', message: 'Loggers come from src/util/log.ts (createLogger, silentLogger, Logger).' }],
        },
      ],
    },
  },
  {
    // One style for private members: ECMAScript `#name` (private at run time too, and what the
    // proxy used from the start), not TypeScript's `private`. A private constructor stays (it
    // has no `#` form).
    files: ['src/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "PropertyDefinition[accessibility='private'], MethodDefinition[accessibility='private'][kind!='constructor'], TSParameterProperty[accessibility='private'], TSAbstractPropertyDefinition[accessibility='private']",
          message: 'Private members are #name (ECMAScript private), not TypeScript `private`.',
        },
      ],
    },
  },
  {
    // Tests feed malformed values to validators on purpose (`as any`) and match terminal escape codes.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'no-control-regex': 'off' },
  },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
);
