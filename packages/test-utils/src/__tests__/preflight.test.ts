import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Disposer } from '../disposer.js';
import { findChromium, findRedisServer, which } from '../prerequisites.mjs';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const PREFLIGHT = join(ROOT, 'scripts/preflight.mjs');

const disposer = new Disposer();
afterEach(() => disposer.run());

/**
 * A folder to use as the whole PATH: a link to every command of this PATH except those `drop`
 * matches, and an `apt-get` that only writes down how it was called (to `<folder>/apt-get.log`).
 */
function strippedPath(drop: RegExp): { path: string; aptLog: string } {
  const dir = mkdtempSync(join(tmpdir(), 'atp-preflight-path-'));
  disposer.add(() => rmSync(dir, { recursive: true, force: true }));
  const aptLog = join(dir, 'apt-get.log');
  writeFileSync(join(dir, 'apt-get'), `#!/bin/sh\necho "$*" >> '${aptLog}'\n`);
  chmodSync(join(dir, 'apt-get'), 0o755);
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    let names: string[] = [];
    try {
      names = readdirSync(folder);
    } catch {}
    for (const name of names) {
      if (drop.test(name) || existsSync(join(dir, name))) continue;
      symlinkSync(join(folder, name), join(dir, name));
    }
  }
  return { path: dir, aptLog };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `command args` with `env` (plus nothing else of this process), killed after 30 s. */
function run(command: string, args: string[], env: Record<string, string | undefined>): Promise<Run> {
  const started = Date.now();
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** This environment without what points the tests at things, and with `changes`. */
function envWith(changes: Record<string, string>): Record<string, string | undefined> {
  const { CHROMIUM_PATH: _chromium, ATP_TEST_NO_INSTALL: _install, ...rest } = process.env;
  return { ...rest, ...changes };
}

const linesOf = (text: string) => text.split('\n').filter((line) => line.trim() !== '');

describe('scripts/preflight.mjs', () => {
  it('passes and names what the tests use when redis-server and a browser are there', async () => {
    const result = await run(process.execPath, [PREFLIGHT], envWith({ ATP_TEST_NO_INSTALL: '1' }));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Tests use redis-server \S+ \(.+\) and .+; they start their own Redis servers\.\n$/,
    );
  });

  it('stops at once with one line when redis-server is not on PATH and installing is off', async () => {
    const { path, aptLog } = strippedPath(/^redis-/);
    expect(findRedisServer({ PATH: path })).toBeUndefined();
    const result = await run(
      process.execPath,
      [PREFLIGHT],
      envWith({ PATH: path, ATP_TEST_NO_INSTALL: '1' }),
    );
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(5000);
    expect(result.stdout).toBe('');
    expect(linesOf(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^The tests need redis-server, not found on this machine: .*apt-get install redis-server`; .*redis-server on PATH\.\n$/,
    );
    expect(existsSync(aptLog)).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'stops at once with one line naming CHROMIUM_PATH when no browser is found',
    async () => {
      const { path } = strippedPath(/^(chromium|google-chrome)/);
      expect(findChromium({ PATH: path })).toEqual({});
      const result = await run(
        process.execPath,
        [PREFLIGHT],
        envWith({ PATH: path, ATP_TEST_NO_INSTALL: '1' }),
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(linesOf(result.stderr)).toHaveLength(1);
      expect(result.stderr).toMatch(
        /a Chromium or Chrome, not found.*apt-get install chromium`.*CHROMIUM_PATH/,
      );
    },
  );

  it('says in one line when CHROMIUM_PATH is not a browser it can run', async () => {
    const result = await run(
      process.execPath,
      [PREFLIGHT],
      envWith({ CHROMIUM_PATH: '/nonexistent/chrome' }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'CHROMIUM_PATH=/nonexistent/chrome is not an executable file: set it to a Chromium or Chrome executable, or unset it to use chromium from PATH.\n',
    );
  });

  it('does not look for a browser with --redis-only', async () => {
    const { path } = strippedPath(/^(chromium|google-chrome)/);
    const result = await run(
      process.execPath,
      [PREFLIGHT, '--redis-only'],
      envWith({ PATH: path, ATP_TEST_NO_INSTALL: '1' }),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it.runIf(process.getuid?.() === 0)(
    'as root with apt-get, installs what is missing, and stops with one line if it is still missing',
    async () => {
      const { path, aptLog } = strippedPath(/^redis-/);
      const result = await run(process.execPath, [PREFLIGHT], envWith({ PATH: path }));
      expect(readFileSync(aptLog, 'utf8')).toBe('update -qq\ninstall -y -qq redis-server\n');
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/^Installing redis-server with apt-get/);
      expect(linesOf(result.stderr)).toHaveLength(1);
      expect(result.stderr).toMatch(/^The tests need redis-server, not found on this machine/);
    },
  );

  it('`pnpm test` stops at once with that line, before building anything', async () => {
    // pnpm test runs this through pnpm, so it is on PATH (and linked into the stripped PATH below).
    expect(which('pnpm'), 'pnpm on PATH').toBeDefined();
    const { path } = strippedPath(/^redis-/);
    expect(findRedisServer({ PATH: path })).toBeUndefined();
    // No dependency check before the script: this test must never run an install in the checkout.
    const noVerify = {
      pnpm_config_verify_deps_before_run: 'false',
      npm_config_verify_deps_before_run: 'false',
    };
    const result = await run(
      join(path, 'pnpm'),
      ['test'],
      envWith({ PATH: path, ATP_TEST_NO_INSTALL: '1', ...noVerify }),
    );
    expect(result.code).not.toBe(0);
    expect(result.ms).toBeLessThan(15_000);
    const output = `${result.stdout}\n${result.stderr}`;
    expect(output.match(/^The tests need redis-server, not found on this machine: .*$/gm)).toHaveLength(1);
    // turbo never started (it prints the packages in scope first), and no trace of a later failure
    expect(output).not.toMatch(/Packages in scope|Running test|ECONNREFUSED|Error:|\n\s+at /);
  });
});
