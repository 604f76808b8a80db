import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Connectors may import from the core only through its public plugin API. Anything else under
 * core/ is an internal that can change at any time.
 */
const coreInternals = {
  group: [
    '**/core/*',
    '**/core/*/**',
    '!**/core/plugin-api',
    '!**/core/plugin-api/index.ts',
    '!**/core/plugin-api/testing',
    '!**/core/plugin-api/testing/index.ts',
  ],
  message:
    'Connectors import the core only through its public plugin API (core/plugin-api/index.ts, and core/plugin-api/testing/index.ts in tests).',
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'data/**', '.tmp/**', 'coverage/**', 'core/console/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='console'][property.name='log']",
          message: 'Use the logger (or the CLI io) instead of console.log.',
        },
      ],
    },
  },
  {
    // The command's entry point is CommonJS (core/cli/bin.cjs says why).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['connectors/**/*.ts', 'plugin-template/**/*.ts'],
    ignores: ['connectors/index.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [coreInternals] }],
      'no-restricted-syntax': [
        'error',
        { selector: 'Decorator', message: 'Connector code uses no decorators.' },
        {
          selector: 'ImportDeclaration[source.value=/^(axios|jose|inversify|node-cron)$/]',
          message: 'Connectors reach HTTP, JWTs, DI and scheduling only through their context.',
        },
      ],
    },
  },
  {
    files: ['core/**/*.ts'],
    ignores: ['core/di/**', 'core/runtime/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'inversify', message: 'Only core/di and core/runtime touch inversify.' }] },
      ],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
