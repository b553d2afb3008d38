#!/usr/bin/env node
// Run by `pnpm test` (and, with --redis-only, `pnpm test:reliability`) before anything else: checks
// that this machine has what the tests need, a redis-server binary (the tests start their own Redis
// servers) and a Chromium or Chrome (the browser tests).
//
// When something is missing and this runs as root on a system with apt-get, it installs Debian's
// packages (redis-server, chromium). ATP_TEST_NO_INSTALL=1 turns that off. Otherwise, or when the
// install fails, it prints one line saying what to install and how to point the tests at an
// installed copy, and exits with 1 before any build or test starts.
import { spawnSync } from 'node:child_process';
import {
  debianPackages,
  findChromium,
  findRedisServer,
  missingMessage,
  versionOf,
  which,
} from '../packages/test-utils/src/prerequisites.mjs';

const redisOnly = process.argv.includes('--redis-only');

function fail(line) {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

/** What is missing: 'redis-server' and/or 'chromium'. Exits on a CHROMIUM_PATH that is wrong. */
function missing() {
  const result = [];
  if (!findRedisServer()) result.push('redis-server');
  if (!redisOnly) {
    const chromium = findChromium();
    if (chromium.error) fail(chromium.error);
    if (!chromium.path) result.push('chromium');
  }
  return result;
}

function canInstall() {
  if (process.env.ATP_TEST_NO_INSTALL === '1') return false;
  return process.getuid?.() === 0 && which('apt-get') !== undefined;
}

let lacking = missing();
if (lacking.length > 0 && canInstall()) {
  const packages = debianPackages(lacking);
  console.log(`Installing ${packages.join(' ')} with apt-get (ATP_TEST_NO_INSTALL=1 turns this off)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install =
    update.status === 0
      ? spawnSync('apt-get', ['install', '-y', '-qq', ...packages], {
          stdio: 'inherit',
          env,
        })
      : update;
  if (install.status !== 0) {
    fail(`apt-get could not install ${packages.join(' ')}: ${missingMessage(lacking)}`);
  }
  lacking = missing();
}
if (lacking.length > 0) fail(missingMessage(lacking));

// Found: both must also run (a broken install or a stub fails here, not halfway through the tests).
const found = [];
try {
  const redis = findRedisServer();
  found.push(`redis-server ${/v=(\S+)/.exec(versionOf(redis))?.[1] ?? '?'} (${redis})`);
  if (!redisOnly) {
    const chromium = findChromium().path;
    found.push(`${versionOf(chromium)} (${chromium})`);
  }
} catch (error) {
  fail(
    `${error.message}: reinstall it, or ${redisOnly ? 'put a working redis-server on PATH' : 'put a working redis-server on PATH and set CHROMIUM_PATH to a working browser'}.`,
  );
}
console.log(`Tests use ${found.join(' and ')}; they start their own Redis servers.`);
