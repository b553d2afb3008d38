#!/usr/bin/env node
// `pnpm start`: builds the example dashboard and the packages it uses, quietly (the build's output is
// shown only when it fails), then serves it: the dashboard's banner, with its URL, is the first thing
// printed. Ctrl+C (SIGINT) or SIGTERM stops the server, which closes its clients, and this script ends
// with the server's status: 0 after a clean stop.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const slow = setTimeout(() => process.stderr.write('Building the dashboard and its packages…\n'), 3000);

const build = spawn(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=@atp/dashboard...', '--output-logs=errors-only'],
  {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
  },
);
let output = '';
build.stdout.on('data', (chunk) => {
  output += chunk;
});
build.stderr.on('data', (chunk) => {
  output += chunk;
});
// A signal during the build stops it (the terminal sends it to the build too).
let stopped = false;
const stopBuild = () => {
  stopped = true;
};
process.on('SIGINT', stopBuild);
process.on('SIGTERM', stopBuild);

build.on('exit', (code) => {
  clearTimeout(slow);
  process.off('SIGINT', stopBuild);
  process.off('SIGTERM', stopBuild);
  if (stopped) process.exit(0);
  if (code !== 0) {
    process.stderr.write(`${output}\nThe build failed (status ${code}); nothing was started.\n`);
    process.exit(code ?? 1);
  }
  serve();
});

function serve() {
  // Its own process group: a Ctrl+C reaches the server once, through this script, not twice.
  const server = spawn(process.execPath, ['apps/dashboard/dist/server/main.js'], {
    cwd: root,
    stdio: 'inherit',
    detached: true,
  });
  let forwarded = false;
  const forward = (signal) => {
    if (forwarded) return;
    forwarded = true;
    server.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  server.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
