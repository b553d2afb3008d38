import { defineConfig } from 'tsup';

/** Only the Redis launchers are built (for the bench, which is plain JavaScript); the tests use the sources. */
export const tsupConfig = defineConfig({
  entry: ['src/redis.ts'],
  format: ['esm'],
  clean: true,
  target: 'es2022',
});

export default tsupConfig;
