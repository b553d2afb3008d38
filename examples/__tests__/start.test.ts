import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

// `pnpm start` as a person runs it: the banner with the URL comes first (the build is quiet), and
// Ctrl+C (SIGINT to the whole process group, as a terminal sends it) ends it with status 0 and no
// pnpm failure lines.
it('pnpm start prints the banner first and stops on Ctrl+C with status 0, quietly', async () => {
  const child = spawn('pnpm', ['start'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: '0', ATP_DEMO: '0' },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    await expect.poll(() => output, { timeout: 240_000, interval: 200 }).toContain('Press Ctrl+C to stop.');
    const beforeBanner = output.slice(0, output.indexOf('ATP dashboard listening on')).trim().split('\n');
    // At most pnpm's echo of the command and one "Building…" line (a build longer than 3 s).
    expect(
      beforeBanner.filter(
        (line) => !/^\$ exec node scripts\/start\.mjs$|^Building the dashboard/.test(line) && line !== '',
      ),
    ).toEqual([]);
    expect(output).toMatch(/open\s+http:\/\/localhost:\d+\//);
    process.kill(-(child.pid as number), 'SIGINT');
    const end = await exited;
    expect(end).toEqual({ code: 0, signal: null });
    expect(output).not.toMatch(/ELIFECYCLE|ERR_PNPM/);
    expect(output).toContain('SIGINT: closing WebSocket clients');
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid as number), 'SIGKILL');
  }
}, 300_000);
