/** The IIFE browser build's `FULL` (see `features.ts`): without the ESM/CJS-only features. */
export const FULL: boolean = false;
