/**
 * Whether this build has the features that only the ESM/CJS builds carry: the subscription
 * handle (`ready`, `on`, `signal`), history on subscribe (`from`) with its local replay,
 * `iterate()`, `url`/`query`/`token` functions and the `debug` trace. The IIFE browser build
 * replaces this module with `features.browser.ts` (`false`), and its minifier drops the code
 * behind every `if (FULL)`, to stay within its size budget.
 */
export const FULL: boolean = true;
