// Lint config: typescript-eslint's recommended rules over src, test and bench;
// the dashboard's browser modules (src/dashboard/web, plain ES modules) get
// browser globals instead of Node's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { ignores: ['src/dashboard/web/**'], languageOptions: { globals: globals.node } },
  {
    files: ['src/dashboard/web/**/*.js'],
    languageOptions: { sourceType: 'module', globals: globals.browser },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
