import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Disposer, RawTestClient, testRedisUrl, withTimeout } from '@atp/test-utils';
import { CloseCode } from '@atp/ws-protocol';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

// The built entry that `pnpm start` serves; turbo builds it (and the packages it loads) before `pnpm test`.
const MAIN = fileURLToPath(new URL('../../../dist/server/main.js', import.meta.url));

const disposer = new Disposer();
afterEach(() => disposer.run());

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(env: Record<string, string>): Started {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(ATP_|PORT$|HOST$)/.test(key)),
  );
  const child = spawn(process.execPath, [MAIN], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  disposer.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => output, exited };
}

async function waitForOutput(started: Started, pattern: RegExp): Promise<RegExpMatchArray> {
  return withTimeout(
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = started.output().match(pattern);
        if (match) resolve(match);
      };
      started.child.stdout?.on('data', check);
      started.child.once('exit', () => {
        check();
        reject(new Error(`exited before printing ${pattern}:\n${started.output()}`));
      });
      check();
    }),
    10_000,
    `output matching ${pattern}`,
  );
}

describe('dist/server/main.js', () => {
  beforeAll(() => {
    if (!existsSync(MAIN)) {
      throw new Error(`${MAIN} is missing: run \`pnpm build\` first (\`pnpm test\` builds it through turbo)`);
    }
  });

  it('prints the URL to open and the environment, serves, and closes clients with 1001 on SIGTERM', async () => {
    const started = run({ PORT: '0', HOST: '127.0.0.1', ATP_DEMO_SPEED: '50', ATP_WS_ADMIN_TOKEN: 'secret' });
    const [, url] = await waitForOutput(started, /open\s+(http:\/\/\S+?)\/?\n/);
    const output = started.output();
    expect(output).toMatch(/ATP_WS_ADMIN_TOKEN\s+set: GET \/api\/ws\/clients and \/api\/ws\/metrics enabled/);
    expect(output).toMatch(/ATP_WS_PUBLISH_TOKEN\s+unset: POST \/api\/ws\/publish disabled \(404\)/);
    expect(output).toMatch(/ATP_WS_REDIS_URL\s+unset \(embedded in-memory broker\)/);
    expect(output).toMatch(/ATP_DEMO\s+on \(simulated ATP runner, speed 50x\)/);
    expect(output).not.toContain('secret');

    const info = (await (await fetch(`${url}/api/ws/info`)).json()) as { url: string };
    const client = await RawTestClient.connect(info.url);
    disposer.add(() => client.close());
    await client.request('subscribe', { topic: 'suite:progress' });
    await client.waitForData(1);

    started.child.kill('SIGTERM');
    expect((await client.waitForClose()).code).toBe(CloseCode.GoingAway);
    expect(await withTimeout(started.exited, 10_000, 'exit')).toBe(0);
  });

  it('starts on the Redis broker when ATP_WS_REDIS_URL is set, and says so', async () => {
    const prefix = `atp-dashboard-main:${Date.now()}`;
    const started = run({
      PORT: '0',
      ATP_DEMO: '0',
      ATP_WS_REDIS_URL: testRedisUrl(),
      ATP_WS_REDIS_PREFIX: prefix,
    });
    const [, shown] = await waitForOutput(
      started,
      /ATP_WS_REDIS_URL\s+(\S+) \(Redis broker, prefix atp-dashboard-main/,
    );
    expect(new URL(shown ?? '').host).toBe(new URL(testRedisUrl()).host);
    started.child.kill('SIGTERM');
    expect(await withTimeout(started.exited, 10_000, 'exit')).toBe(0);
  });

  it('exits with 1 and says why when PORT is not a port', async () => {
    const started = run({ PORT: 'eighty' });
    expect(await withTimeout(started.exited, 10_000, 'exit')).toBe(1);
    expect(started.output()).toContain("PORT must be an integer from 0 to 65535, got 'eighty'");
  });
});
