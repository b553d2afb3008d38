import { findChromium, missingMessage } from './prerequisites.mjs';

/**
 * The Chromium or Chrome executable for the browser tests: CHROMIUM_PATH, else one found on PATH
 * (chromium, google-chrome-stable, google-chrome, chromium-browser) or, on macOS, in /Applications.
 * Throws a one-line Error saying what to install when there is none.
 */
export function chromiumExecutable(): string {
  const found = findChromium();
  if (found.path) return found.path;
  throw new Error(found.error ?? missingMessage(['chromium']));
}
