/**
 * Whether this build has the features that only the ESM/CJS builds carry (the client README's
 * Builds lists them): the subscription handle, history on subscribe (`from`) with its local
 * replay, the `online` probe, the `clientId`/`query`/`token` options, the fixed error texts, … The
 * IIFE browser build replaces this module with `features.browser.ts` (`false`), and its minifier
 * drops the code behind every `if (FULL)`, to stay within its size budget; class members that only
 * the ESM/CJS builds have are marked `// #region ESM/CJS only` (see tsup.config.ts).
 */
export const FULL: boolean = true;
