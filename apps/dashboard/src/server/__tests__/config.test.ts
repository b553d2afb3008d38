import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../config.js';

describe('loadConfig', () => {
  it('defaults to port 8000 on 0.0.0.0 with the demo on and every token unset', () => {
    expect(loadConfig({})).toEqual({
      port: 8000,
      host: '0.0.0.0',
      adminToken: undefined,
      publishToken: undefined,
      redisUrl: undefined,
      redisPrefix: 'atp:ws',
      demo: true,
      demoSpeed: 1,
      logLevel: 'info',
    });
  });

  it('reads every documented environment variable', () => {
    expect(
      loadConfig({
        PORT: '9000',
        ATP_WS_ADMIN_TOKEN: 'a',
        ATP_WS_PUBLISH_TOKEN: 'p',
        ATP_WS_REDIS_URL: 'redis://localhost:6379',
        ATP_DEMO: '0',
      }),
    ).toMatchObject({
      port: 9000,
      adminToken: 'a',
      publishToken: 'p',
      redisUrl: 'redis://localhost:6379',
      demo: false,
    });
  });

  it('selects a Sentinel-managed primary or a Redis Cluster, one Redis mode at a time', () => {
    expect(
      loadConfig({
        ATP_WS_REDIS_SENTINELS: 'sentinel-1:26379, 10.0.0.2:26380',
        ATP_WS_REDIS_SENTINEL_NAME: 'atp',
        ATP_WS_REDIS_PASSWORD: 'pw',
      }),
    ).toMatchObject({
      redisUrl: undefined,
      redisSentinel: {
        sentinels: [
          { host: 'sentinel-1', port: 26379 },
          { host: '10.0.0.2', port: 26380 },
        ],
        name: 'atp',
      },
      redisPassword: 'pw',
    });
    expect(loadConfig({ ATP_WS_REDIS_CLUSTER: 'a:7000,b:7001' }).redisCluster).toEqual({
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
    });
    for (const env of [
      { ATP_WS_REDIS_SENTINELS: 'a:26379' },
      { ATP_WS_REDIS_SENTINELS: 'a', ATP_WS_REDIS_SENTINEL_NAME: 'x' },
      { ATP_WS_REDIS_CLUSTER: 'a:70000' },
      { ATP_WS_REDIS_URL: 'redis://a:6379', ATP_WS_REDIS_CLUSTER: 'a:7000' },
    ]) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(ConfigError);
    }
    expect(describeConfig(loadConfig({ ATP_WS_REDIS_CLUSTER: 'a:7000' })).join('\n')).toMatch(
      /ATP_WS_REDIS_CLUSTER\s+a:7000 \(Redis broker on a Redis Cluster, prefix atp:ws\)/,
    );
  });

  it('treats an empty token as unset, so its endpoints stay disabled', () => {
    expect(loadConfig({ ATP_WS_ADMIN_TOKEN: '', ATP_WS_PUBLISH_TOKEN: '  ' })).toMatchObject({
      adminToken: undefined,
      publishToken: undefined,
    });
  });

  it('turns the demo off only with 0 (or false, off, no)', () => {
    for (const value of ['0', 'false', 'OFF', 'no']) expect(loadConfig({ ATP_DEMO: value }).demo).toBe(false);
    for (const value of ['1', 'true', '']) expect(loadConfig({ ATP_DEMO: value }).demo).toBe(true);
  });

  it('refuses a PORT, speed or log level it cannot use', () => {
    for (const env of [
      { PORT: 'abc' },
      { PORT: '70000' },
      { PORT: '-1' },
      { ATP_DEMO_SPEED: '0' },
      { ATP_LOG_LEVEL: 'loud' },
    ]) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(ConfigError);
    }
  });
});

describe('describeConfig', () => {
  it('says what each variable does without printing secrets', () => {
    const lines = describeConfig(
      loadConfig({
        ATP_WS_ADMIN_TOKEN: 'top-secret',
        ATP_WS_REDIS_URL: 'redis://user:hunter2@redis:6379/0',
      }),
    ).join('\n');
    expect(lines).not.toContain('top-secret');
    expect(lines).not.toContain('hunter2');
    expect(lines).toContain('redis://user:***@redis:6379/0');
    expect(lines).toMatch(/ATP_WS_PUBLISH_TOKEN\s+unset: POST \/api\/ws\/publish disabled \(404\)/);
  });
});
