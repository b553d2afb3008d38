import { describe, expect, it } from 'vitest';
import { log, run, startHub } from './helpers.js';

describe('atp-ws tail: how it stops', () => {
  it('exits 1, not 0, when another connection takes over its client_id (close 4000) and it stops tailing', async () => {
    const hub = await startHub();
    const first = run(['tail', hub.base, '--topic', 'logs', '--client-id', 'shared-tail']);
    await first.waitFor('stderr', 'connected to');
    const second = run(['tail', hub.base, '--topic', 'logs', '--client-id', 'shared-tail']);
    await second.waitFor('stderr', 'connected to');
    // The first no longer receives anything: a script or CI job must not read its exit as success.
    expect((await first.exited).code).toBe(1);
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);
  });

  it('exits 1, not 0, when the hub refuses its token on a reconnect (HTTP 401)', async () => {
    let accept = true;
    const hub = await startHub({ authenticate: () => (accept ? { id: 'operator' } : null) });
    const cli = run(['tail', hub.base, '--topic', 'logs'], { ATP_WS_TOKEN: 't' });
    await cli.waitFor('stderr', 'connected to');
    accept = false;
    await hub.stop();
    await hub.start();
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderr).toMatch(/401/);
  });

  it('ends quietly when the reader of its stdout goes away (EPIPE), without an unhandled error', async () => {
    const hub = await startHub();
    const cli = run(['tail', hub.base, '--topic', 'logs']);
    await cli.waitFor('stderr', 'connected to');
    await expect
      .poll(async () => (await hub.hub.clients())[0]?.subscriptions, { timeout: 30_000 })
      .toEqual(['logs']);
    cli.child.stdout.destroy(); // `atp-ws tail … | head -1` once head has exited
    await hub.hub.publish([log(1, 'info', 'one'), log(1, 'info', 'two')]);
    const exited = await cli.exited;
    expect(cli.stderr).not.toMatch(/Unhandled 'error' event|at afterWriteDispatched/);
    expect(exited.code).toBe(0);
  });

  it('treats an invalid --client-id as wrong usage: exit 2 with a message, no stack trace', async () => {
    const hub = await startHub();
    const cli = run(['tail', hub.base, '--topic', 'logs', '--client-id', 'bad!id']);
    expect((await cli.exited).code).toBe(2);
    expect(cli.stderr).toContain('--client-id');
    expect(cli.stderr).not.toMatch(/\n\s+at /);
  });
});
