// What the tests need from the machine: a redis-server binary (the tests start their own Redis) and a
// Chromium or Chrome (the browser tests drive it headless). Plain JavaScript, so that
// scripts/preflight.mjs can import it with Node alone, before anything is built.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Browsers tried in this order on PATH when CHROMIUM_PATH is unset. */
const CHROMIUM_COMMANDS = ['chromium', 'google-chrome-stable', 'google-chrome', 'chromium-browser'];

/** Browsers tried after PATH, by absolute path (macOS application bundles). */
function chromiumLocations() {
  if (process.platform !== 'darwin') return [];
  const bundles = ['Google Chrome.app/Contents/MacOS/Google Chrome', 'Chromium.app/Contents/MacOS/Chromium'];
  return ['/Applications', join(homedir(), 'Applications')].flatMap((dir) =>
    bundles.map((bundle) => join(dir, bundle)),
  );
}

function isExecutableFile(path) {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `command` on `PATH` (the `pathEnv` given), or undefined. */
export function which(command, pathEnv = process.env.PATH ?? '') {
  for (const dir of pathEnv.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** The redis-server on PATH, or undefined. */
export function findRedisServer(env = process.env) {
  return which('redis-server', env.PATH);
}

/**
 * The browser the tests drive: CHROMIUM_PATH when set, else the first of chromium,
 * google-chrome-stable, google-chrome, chromium-browser on PATH, else (macOS) Google Chrome or
 * Chromium in /Applications. `{ path }` when found; `{ error }` (one line) when CHROMIUM_PATH names
 * something that is not an executable file; `{}` when nothing was found.
 */
export function findChromium(env = process.env) {
  const given = env.CHROMIUM_PATH;
  if (given) {
    return isExecutableFile(given)
      ? { path: given }
      : {
          error: `CHROMIUM_PATH=${given} is not an executable file: set it to a Chromium or Chrome executable, or unset it to use chromium from PATH.`,
        };
  }
  for (const command of CHROMIUM_COMMANDS) {
    const path = which(command, env.PATH);
    if (path) return { path };
  }
  const path = chromiumLocations().find(isExecutableFile);
  return path ? { path } : {};
}

/** How packages get installed here: 'apt' (apt-get found), 'brew' (macOS), or 'other'. */
export function packageManager(env = process.env) {
  if (which('apt-get', env.PATH) || isExecutableFile('/usr/bin/apt-get')) return 'apt';
  if (process.platform === 'darwin') return 'brew';
  return 'other';
}

/** Debian package names of what is missing. */
export function debianPackages(missing) {
  return missing.map((what) => (what === 'redis-server' ? 'redis-server' : 'chromium'));
}

/**
 * One line saying what is missing, what to install on this system and how to point the tests at
 * an installed copy. `missing` holds 'redis-server' and/or 'chromium'.
 */
export function missingMessage(missing, env = process.env) {
  const needsRedis = missing.includes('redis-server');
  const needsChromium = missing.includes('chromium');
  const names = [needsRedis && 'redis-server', needsChromium && 'a Chromium or Chrome'].filter(Boolean);
  const manager = packageManager(env);
  let install;
  if (manager === 'apt') {
    const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
    install = `run \`${sudo}apt-get install ${debianPackages(missing).join(' ')}\``;
  } else if (manager === 'brew') {
    install = [
      needsRedis && 'run `brew install redis`',
      needsChromium && 'install Google Chrome (or `brew install --cask chromium`)',
    ]
      .filter(Boolean)
      .join(' and ');
  } else {
    install = `install ${names.join(' and ')} with your package manager`;
  }
  const pointers = [
    needsRedis && 'put the folder of redis-server on PATH',
    needsChromium && 'set CHROMIUM_PATH to the browser executable',
  ]
    .filter(Boolean)
    .join(' and ');
  return `The tests need ${names.join(' and ')}, not found on this machine: ${install}; or, if already installed elsewhere, ${pointers}.`;
}

/**
 * Runs `path --version` and returns its first line, or throws a one-line Error when it does not run
 * (a broken install, or a stub that only points at another package).
 */
export function versionOf(path) {
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  const firstLine = output.split('\n')[0] ?? '';
  if (result.error || result.status !== 0) {
    const why = result.error ? result.error.message : `exit code ${result.status}`;
    throw new Error(`${path} --version failed (${why})${firstLine ? `: ${firstLine}` : ''}`);
  }
  return firstLine;
}
