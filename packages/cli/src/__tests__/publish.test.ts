import { describe, expect, it } from 'vitest';
import { log, PUBLISH_TOKEN, progress, run, startHub } from './helpers.js';

const env = { ATP_WS_PUBLISH_TOKEN: PUBLISH_TOKEN };

describe('atp-ws publish against a real hub', () => {
  it('publishes NDJSON from stdin, and a JSON array from an argument, to a tail that prints them', async () => {
    const hub = await startHub();
    const tail = run(['tail', hub.base, '--topic', 'logs', '--topic', 'test:progress', '--json']);
    await expect
      .poll(async () => (await hub.hub.clients())[0]?.subscriptions?.length, { timeout: 30_000 })
      .toBe(2);

    const ndjson = `${JSON.stringify(log(5, 'info', 'from-stdin-1'))}\n\n${JSON.stringify(log(5, 'info', 'from-stdin-2'))}\n`;
    const fromStdin = run(['publish', hub.base], env, ndjson);
    expect((await fromStdin.exited).code).toBe(0);
    expect(fromStdin.stderr).toContain('published 2 messages');

    const fromArgs = run(
      ['publish', `ws://127.0.0.1:${hub.port}/api/ws/updates`, JSON.stringify([progress(5, 1, 50)])],
      env,
    );
    expect((await fromArgs.exited).code).toBe(0);

    await tail.waitFor('stdout', /"progress_percent":50/);
    const got = tail.lines().map((line) => JSON.parse(line) as { type: string; sequence: number });
    expect(got.map((m) => [m.sequence, m.type])).toEqual([
      [1, 'log_entry'],
      [2, 'log_entry'],
      [3, 'test_progress'],
    ]);
  });

  it('exits 1 and says so on a bad token (401), publishing nothing', async () => {
    const hub = await startHub();
    const cli = run(['publish', hub.base, JSON.stringify(log(1, 'info', 'x'))], {
      ATP_WS_PUBLISH_TOKEN: 'wrong',
    });
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderr).toMatch(/answered 401 unauthorized: invalid publish token/);
    expect(cli.stderr).toContain('check ATP_WS_PUBLISH_TOKEN');
    expect((await hub.broker.position()).offset).toBe(0);
  });

  it('exits 1 with the server issues on an invalid message, and nothing of the batch is published', async () => {
    const hub = await startHub();
    const bad = { ...progress(1, 1, 10), payload: { ...progress(1, 1, 10).payload, progress_percent: 150 } };
    const cli = run(['publish', hub.base], env, JSON.stringify([progress(1, 1, 10), bad]));
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderr).toMatch(/answered 400 invalid_message/);
    expect(cli.stderr).toMatch(/message 2: payload\.progress_percent: /);
    expect(cli.stderr).toContain('nothing was published');
    expect((await hub.broker.position()).offset).toBe(0);
  });

  it('exits 2 without the token variable, and 1 when the server is unreachable', async () => {
    const hub = await startHub();
    const noToken = run(['publish', hub.base, JSON.stringify(log(1, 'info', 'x'))]);
    expect((await noToken.exited).code).toBe(2);
    expect(noToken.stderr).toContain('set ATP_WS_PUBLISH_TOKEN');
    const base = hub.base;
    await hub.stop();
    const down = run(['publish', base, JSON.stringify(log(1, 'info', 'x'))], env);
    expect((await down.exited).code).toBe(1);
    expect(down.stderr).toMatch(/could not reach .*ECONNREFUSED/);
  });
});
