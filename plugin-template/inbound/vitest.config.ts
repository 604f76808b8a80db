import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*.test.ts'],
    // ssf-bridge ships TypeScript sources: let vitest transform them like this package's own.
    server: { deps: { inline: ['ssf-bridge'] } },
  },
});
