import { DeliveredDataMessageSchema } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { log, progress, run, startHub } from './helpers.js';

describe('atp-ws tail against a real hub', () => {
  it('prints the filtered live messages readably, without colour on a pipe, and exits 0 on SIGINT', async () => {
    const hub = await startHub();
    const cli = run(['tail', hub.base, '--topic', 'logs', '--filter', 'suite_execution_id=42']);
    await cli.waitFor('stderr', /connected to ws:\/\/127\.0\.0\.1:\d+\/api\/ws\/updates as /);
    // Subscribed once the hub lists the subscription.
    await expect
      .poll(async () => (await hub.hub.clients())[0]?.subscriptions, { timeout: 30_000 })
      .toEqual(['logs']);
    await hub.hub.publish([
      log(41, 'info', 'other suite'),
      log(42, 'error', 'disk full'),
      log(42, 'info', 'ok'),
    ]);
    await cli.waitFor('stdout', 'ok');
    expect(cli.lines()).toHaveLength(2);
    expect(cli.lines()[0]).toMatch(
      /^2024-01-15T10:30:00Z #1 log_entry ERROR disk full suite_execution_id=42$/,
    );
    expect(cli.stdout).not.toContain('other suite');
    expect(cli.stdout).not.toContain('\u001b[');
    cli.child.kill('SIGINT');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(cli.stderr).toContain('interrupted');
  });

  it('never prints the credentials of the URL it was given', async () => {
    const hub = await startHub();
    const cli = run(['tail', `ws://operator:s3cret@127.0.0.1:${hub.port}`, '--topic', 'logs']);
    await cli.waitFor('stderr', /connected to ws:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+\/api\/ws\/updates as /);
    cli.child.kill('SIGINT');
    await cli.exited;
    expect(cli.stderr).not.toContain('s3cret');
    expect(cli.stderr).not.toContain('operator');
  });

  it('prints NDJSON with --json: each line a delivered message of the protocol', async () => {
    const hub = await startHub();
    const cli = run(['tail', hub.base, '--topic', 'test:progress', '--json']);
    await expect
      .poll(async () => (await hub.hub.clients())[0]?.subscriptions, { timeout: 30_000 })
      .toEqual(['test:progress']);
    await hub.hub.publish([progress(1, 1, 10), progress(1, 2, 20)]);
    await cli.waitFor('stdout', /"progress_percent":20/);
    const lines = cli.lines().map((line) => DeliveredDataMessageSchema.parse(JSON.parse(line)));
    expect(lines.map((m) => [m.sequence, m.type])).toEqual([
      [1, 'test_progress'],
      [2, 'test_progress'],
    ]);
  });

  it('replays history with --from start before live messages', async () => {
    const hub = await startHub();
    await hub.hub.publish([log(7, 'info', 'before-1'), log(7, 'info', 'before-2')]);
    const cli = run(['tail', `ws://127.0.0.1:${hub.port}/api/ws/updates`, '-t', 'logs', '--from', 'start']);
    await cli.waitFor('stdout', 'before-2');
    await hub.hub.publish([log(7, 'info', 'live-3')]);
    await cli.waitFor('stdout', 'live-3');
    expect(cli.lines().map((line) => /(before|live)-\d/.exec(line)?.[0])).toEqual([
      'before-1',
      'before-2',
      'live-3',
    ]);
  });

  it('follows a hub restart: resumes and gets what was published while it was away, then reports a gap when history is lost', async () => {
    const hub = await startHub();
    const cli = run(['tail', hub.base, '--topic', 'logs']);
    await expect
      .poll(async () => (await hub.hub.clients())[0]?.subscriptions, { timeout: 30_000 })
      .toEqual(['logs']);
    await hub.hub.publish([log(1, 'info', 'first')]);
    await cli.waitFor('stdout', 'first');

    // Restart with the same broker: the history survives, so the session resumes without loss.
    await hub.stop();
    await cli.waitFor('stderr', /disconnected \(1001[^)]*\), reconnecting/);
    await hub.broker.publish([log(1, 'info', 'while-away')]);
    await hub.start();
    await cli.waitFor('stderr', 'reconnected: resumed session');
    await cli.waitFor('stdout', 'while-away');
    expect(cli.lines()[1]).toMatch(/#2 log_entry INFO while-away/);

    // Restart with a new broker: the history is gone, which the client reports as a gap.
    await hub.stop();
    await hub.start(true);
    await cli.waitFor('stderr', /gap: message #3 will not arrive \(epoch_changed\)/);
    await expect
      .poll(async () => (await hub.hub.clients())[0]?.subscriptions, { timeout: 30_000 })
      .toEqual(['logs']);
    await hub.hub.publish([log(1, 'info', 'after-gap')]);
    await cli.waitFor('stdout', 'after-gap');
    expect(cli.lines()[2]).toMatch(/#4 log_entry INFO after-gap/);
    cli.child.kill('SIGINT');
    expect((await cli.exited).code).toBe(0);
  });

  it('exits 1 with the reason when the hub refuses its token', async () => {
    const hub = await startHub({
      authenticate: (_request, token) => (token === 'good' ? { id: 'operator' } : null),
    });
    const cli = run(['tail', hub.base, '--topic', 'logs'], { ATP_WS_TOKEN: 'bad' });
    expect((await cli.exited).code).toBe(1);
    expect(cli.stderr).toMatch(/could not connect to .*401/);
    const ok = run(['tail', hub.base, '--topic', 'logs'], { ATP_WS_TOKEN: 'good' });
    await ok.waitFor('stderr', 'connected to');
  });

  it('exits 1 when a subscription is refused, and 2 on wrong usage', async () => {
    const hub = await startHub();
    const refused = run(['tail', hub.base, '--topic', 'no-such-topic']);
    expect((await refused.exited).code).toBe(1);
    expect(refused.stderr).toMatch(/subscription to no-such-topic refused/);
    const usage = run(['tail', hub.base, '--topic', 'logs', '--filter', 'suite_execution_id=abc']);
    expect((await usage.exited).code).toBe(2);
    expect(usage.stderr).toContain('--filter suite_execution_id takes an integer');
  });
});
