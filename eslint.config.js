// ESLint (flat config) with typescript-eslint: `npm run lint` checks the formatting (Prettier) and these rules.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.bench/', '.scratch/', 'test/package/fixtures/*/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Decorator and Nest signatures take `Function` and loose arguments by design.
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Jest loads global setup and teardown through CommonJS require(), where .js specifiers do not resolve.
    files: ['test/support/global-setup.ts', 'test/support/global-teardown.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
