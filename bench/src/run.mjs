// `pnpm bench`: our hub vs a bare `ws` broadcast (the floor) vs Socket.IO with
// rooms, side by side in one run. Each target is a fresh server process; the
// load generator is another process of raw `ws` clients. Targets are
// interleaved (A B C A B C …) and each figure is the median of the repetitions.
//
//   node src/run.mjs [--quick] [--reps=N] [--only=fanout-1k,burst-1k] [--targets=floor,hub]
//                    [--profile | --cpu-prof] [--no-pin] [--replay-1m]
//                    (Redis targets: their redis-server, Sentinel set or Cluster is started for each run on
//                    free loopback ports; ATP_BENCH_REDIS_URL=redis://… makes hub-redis use that Redis instead)
//                    [--client-builds=old=/path/to/packages/client/dist/index.js,…]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageFor, nowMicros, REPLAY_SUITE } from './scenario.mjs';
import { bundleSizes } from './sizes.mjs';
import { printTable } from './table.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, '..', 'results');
const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split(/=(.*)/s);
    return [k, v ?? true];
  }),
);
const quick = args.has('quick');
const reps = Number(args.get('reps') ?? (quick ? 1 : 3));
const only = typeof args.get('only') === 'string' ? args.get('only').split(',') : undefined;
const profile = args.has('profile');
const onlyTargets = typeof args.get('targets') === 'string' ? args.get('targets').split(',') : undefined;
/** Pins each server to CPU 0 and the load generator to CPU 1 (2-core machines), unless --no-pin. */
const pin = !args.has('no-pin') && cpus().length >= 2;
/** An existing Redis for hub-redis, when given; by default each run starts a redis-server of its own. */
const EXISTING_REDIS_URL = process.env.ATP_BENCH_REDIS_URL;
/** Targets of two hub processes sharing a Redis: one server, a Sentinel-managed primary, a 3-master Cluster. */
const REDIS_TARGETS = ['hub-redis', 'hub-sentinel', 'hub-cluster'];
const PUBLISH_TOKEN = 'bench-publish-token';
/** Source addresses of the clients: the hub allows 1,000 connections per address by default. */
const SOURCE_ADDRESSES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`);

const ALL = ['floor', 'hub', 'hub-http', 'socketio'];
/**
 * The @atp/ws-client builds the client-cpu scenario measures: `client` is this workspace's build;
 * `--client-builds=label=path,…` adds others (`client@label`), e.g. the build of an older commit.
 */
const CLIENT_BUILDS = new Map([['client', join(here, '..', '..', 'packages', 'client', 'dist', 'index.js')]]);
if (typeof args.get('client-builds') === 'string') {
  for (const spec of args.get('client-builds').split(',')) {
    const [label, path] = spec.split(/=(.*)/);
    CLIENT_BUILDS.set(`client@${label}`, path);
  }
}
const q = (full, small) => (quick ? small : full);

/** The scenarios; `count` messages are measured after `warm` warm-up messages. */
export const SCENARIOS = [
  {
    name: 'fanout-1k',
    title: 'fan-out, 1,000 subscribers, 1 message per tick',
    kind: 'fanout',
    clients: q(1000, 500),
    warm: 60,
    count: q(800, 200),
    window: 32,
    // The ratio to Socket.IO is the goal closest to the noise (±5-10% per run): 5 repetitions.
    reps: q(5, 1),
    targets: ALL,
  },
  {
    // The clients of fanout-1k subscribed together, so they are all at the same
    // sequence: every frame of a message is the same bytes. Here each client
    // resumes with a sequence of its own, as dashboards opened at different
    // times are: every connection's frame differs in its sequence digits.
    name: 'fanout-1k-distinct',
    title: 'fan-out, 1,000 subscribers at distinct sequences, 1 message per tick',
    kind: 'fanout',
    clients: q(1000, 500),
    warm: 60,
    count: q(800, 200),
    window: 32,
    distinctSequences: true,
    // Socket.IO and the floor have no sequence: for them this is fanout-1k again.
    targets: ALL,
  },
  {
    name: 'fanout-5k',
    title: 'fan-out, 5,000 subscribers, 1 message per tick',
    kind: 'fanout',
    clients: q(5000, 2000),
    warm: 20,
    count: q(120, 60),
    window: 16,
    // The ratio to Socket.IO is the goal closest to the noise (±5-10% per run): 5 repetitions.
    reps: q(5, 1),
    targets: ALL,
  },
  {
    name: 'burst-1k',
    title: 'bursts of 10 messages per tick, 1,000 subscribers',
    kind: 'fanout',
    clients: q(1000, 500),
    warm: 100,
    count: q(2500, 600),
    window: 60,
    burst: 10,
    targets: ALL,
  },
  {
    name: 'latency-1k',
    title: 'latency, 1,000 subscribers x 100 msg/s',
    kind: 'fanout',
    clients: 1000,
    warm: 50,
    count: q(500, 200),
    rate: 100,
    // p99 of a near-saturated machine varies from run to run: more repetitions for its median.
    reps: q(5, 1),
    targets: ALL,
  },
  {
    name: 'selective-5k',
    title: 'selective: 5,000 clients on 5,000 suites, publish to one',
    kind: 'selective',
    clients: q(5000, 2000),
    suites: q(5000, 2000),
    warm: 2000,
    count: q(20000, 5000),
    window: 512,
    reportEvery: 128,
    targets: ['floor', 'hub', 'socketio'],
  },
  {
    // The common deployment: a runner publishes over POST /api/ws/publish in batches, and each message
    // reaches the one dashboard watching its suite. Every target gets the same HTTP bodies: the floor
    // and Socket.IO parse them (JSON.parse) and route each message through their rooms.
    name: 'selective-rest-5k',
    title: 'selective over REST: 5,000 clients on 5,000 suites, POST batches of 500 to random suites',
    kind: 'selective-random',
    clients: q(5000, 2000),
    suites: q(5000, 2000),
    warm: 5000,
    count: q(100_000, 20_000),
    burst: 500,
    window: 2000,
    reportEvery: 250,
    rest: true,
    targets: ['floor', 'hub-http', 'socketio'],
  },
  {
    name: 'selective-1',
    title: 'selective: 1 client, publish to it',
    kind: 'selective',
    clients: 1,
    suites: 1,
    warm: 2000,
    count: q(20000, 5000),
    window: 512,
    reportEvery: 128,
    targets: ['floor', 'hub', 'socketio'],
  },
  {
    name: 'idle-10k',
    title: 'memory: 10,000 idle subscribed connections',
    kind: 'selective',
    clients: q(10000, 4000),
    suites: 5000,
    memory: true,
    targets: ['floor', 'hub', 'socketio'],
  },
  {
    name: 'mixed-1k',
    title: 'mixed: progress, events, logs, suite progress; 10 suites, filters; bursts of 10',
    kind: 'mixed',
    clients: q(1000, 500),
    warm: 200,
    count: q(4000, 1000),
    window: 100,
    burst: 10,
    targets: ALL,
  },
  // Dashboards opened late on a run: each subscribes to the suite's progress, completions, events and
  // logs with `from: "start"` while 200 live clients get its progress at 100 msg/s. The hub only: the
  // floor and Socket.IO keep no history to replay a run from.
  ...replayScenarios('replay', q(100_000, 30_000)),
  // 1,000,000 messages: only with --replay-1m (or named in --only).
  ...replayScenarios('replay-1m', 1_000_000, { reps: 1, flag: 'replay-1m', serverHeapMB: 8192 }),
  {
    // The client's own cost: one connection receiving a stream of progress messages from the hub,
    // through @atp/ws-client or through a bare `ws` socket that parses each frame (the floor); the
    // figure is the client process's CPU time per delivered message.
    name: 'client-cpu',
    title: 'client CPU per delivered message (Node), 1 connection, @atp/ws-client vs bare ws',
    kind: 'client',
    warm: q(5000, 2000),
    count: q(50_000, 10_000),
    window: 64,
    reportEvery: 32,
    reps: q(5, 1),
    targets: ['floor', ...CLIENT_BUILDS.keys()],
  },
  {
    name: 'redis-1k',
    title: 'two hub processes through Redis vs one, fan-out 1,000',
    kind: 'fanout',
    clients: q(1000, 500),
    warm: 60,
    count: q(800, 200),
    window: 64,
    targets: ['floor', 'hub', 'hub-redis'],
  },
  // High availability. Two hub processes as in redis-1k, through a primary that three sentinels watch
  // (plus its replica), or through a Cluster of three masters, each interleaved with one redis-server.
  {
    name: 'redis-sentinel-1k',
    title:
      'two hub processes through a Sentinel-managed primary (1 replica, 3 sentinels) vs one Redis, fan-out 1,000',
    kind: 'fanout',
    clients: q(1000, 500),
    warm: 60,
    count: q(800, 200),
    window: 64,
    targets: ['hub-redis', 'hub-sentinel'],
  },
  {
    name: 'redis-cluster-1k',
    title: 'two hub processes through a 3-master Redis Cluster vs one Redis, fan-out 1,000',
    kind: 'fanout',
    clients: q(1000, 500),
    warm: 60,
    count: q(800, 200),
    window: 64,
    targets: ['hub-redis', 'hub-cluster'],
  },
  {
    // 50 msg/s, not latency-1k's 100: two hubs and Redis on one core saturate it at ~100,000 deliveries/s.
    name: 'redis-latency-1k',
    title: 'latency through Redis, two hub processes, 1,000 subscribers x 50 msg/s',
    kind: 'fanout',
    clients: 1000,
    warm: 50,
    count: q(500, 200),
    rate: 50,
    reps: q(5, 1),
    targets: ['hub', ...REDIS_TARGETS],
  },
  {
    // kill -9 of the primary while the hubs publish; the sentinels promote the replica.
    name: 'redis-sentinel-failover',
    title:
      'failover: kill -9 of the Sentinel-managed primary, 100 msg/s published in one of two hub processes, 200 subscribers',
    kind: 'failover',
    clients: q(200, 100),
    rate: 100,
    warmS: 3,
    limitS: 30,
    reps: q(3, 1),
    targets: ['hub-sentinel'],
  },
  {
    // As redis-sentinel-failover, but the replica is cut off 300 ms before the kill (stopped, its link
    // killed): the primary acknowledges writes no replica gets, which Redis then loses.
    name: 'redis-sentinel-failover-lossy',
    title:
      'failover as redis-sentinel-failover, the replica cut off for the last 300 ms: acknowledged writes are lost',
    kind: 'failover',
    clients: q(200, 100),
    rate: 100,
    warmS: 3,
    limitS: 30,
    cutReplicaMs: 300,
    reps: q(3, 1),
    targets: ['hub-sentinel'],
  },
];

/** `<prefix>-1` and `<prefix>-100`: 1 and 100 dashboards joining a run of `history` messages. */
function replayScenarios(prefix, history, extra = {}) {
  return [1, 100].map((joiners) => ({
    name: `${prefix}-${joiners}`,
    title:
      `replay: ${joiners} dashboard${joiners > 1 ? 's' : ''} join${joiners > 1 ? '' : 's'} a run of ` +
      `${history.toLocaleString('en')} messages (compacted) from the start, 200 live clients x 100 msg/s`,
    kind: 'replay',
    history,
    joiners,
    live: q(200, 100),
    rate: 100,
    warmS: 2,
    baselineS: q(10, 3),
    joinLimitS: Math.min(1200, Math.max(60, Math.ceil((history * joiners) / 20_000))),
    targets: ['hub'],
    // One joiner is caught up in well under a second: its window of live latency is short and moves
    // with any neighbour on the machine, hence several joins in turn per window, and more repetitions.
    rounds: joiners === 1 ? q(10, 3) : 1,
    reps: q(joiners === 1 ? 5 : 3, 1),
    ...extra,
  }));
}

// ── processes ───────────────────────────────────────────────────────────────

/**
 * Starts a node child with an IPC channel, its open-file limit raised to the
 * hard limit (10,000 sockets need more than the usual 1,024).
 */
function startChild(script, execArgv = [], cpu = undefined, env = process.env, niceness = 0) {
  const command = [process.execPath, ...execArgv, script];
  if (niceness) command.unshift('nice', '-n', String(niceness));
  if (pin && cpu !== undefined) command.unshift('taskset', '-c', String(cpu));
  const child = spawn(
    '/bin/sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', ...command],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env },
  );
  child.inbox = [];
  child.waiters = [];
  child.on('message', (message) => {
    if (message.type === 'progress') return child.onAny?.(message);
    const i = child.waiters.findIndex((w) => w.type === message.type);
    if (i >= 0) child.waiters.splice(i, 1)[0].resolve(message);
    else child.inbox.push(message);
  });
  child.on('exit', (code) => {
    for (const w of child.waiters.splice(0)) w.reject(new Error(`${script} exited with ${code}`));
  });
  return child;
}

function waitFor(child, type, timeoutMs = 60_000) {
  const i = child.inbox.findIndex((m) => m.type === type);
  if (i >= 0) return Promise.resolve(child.inbox.splice(i, 1)[0]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${type}`)), timeoutMs);
    timer.unref();
    child.waiters.push({
      type,
      resolve: (m) => {
        clearTimeout(timer);
        resolve(m);
      },
      reject,
    });
  });
}

async function stopChild(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send({ cmd: 'exit' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

// ── POST /api/ws/publish publisher (runs here, so its cost is not the server's) ──

async function httpPhase(port, { from, count, window, burst = 1, rate, kind, suites }, credit) {
  const { Agent, request } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (body) =>
    new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/ws/publish',
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${PUBLISH_TOKEN}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(data),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 202 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const end = from + count;
  let next = from;
  const started = performance.now();
  while (next < end) {
    if (rate) {
      const wait = started + ((next - from) * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else await new Promise((resolve) => setImmediate(resolve));
    } else if (window - (next - 1 - credit.through) < Math.min(burst, end - next)) {
      await credit.changed();
      continue;
    }
    const n = rate ? 1 : Math.min(burst, end - next);
    const batch = [];
    for (let k = 0; k < n; k++) batch.push(messageFor(kind, next++, nowMicros(), suites));
    // One request at a time: the order of publishes is the order of requests.
    await post(n === 1 ? batch[0] : batch);
  }
  agent.destroy();
}

// ── one run of one target ───────────────────────────────────────────────────

async function runOnce(scenario, target, rep) {
  const serverCount = REDIS_TARGETS.includes(target) ? 2 : 1;
  // POST /api/ws/publish from this process: the hub-http target, or every target of a REST scenario.
  const viaHttp = target === 'hub-http' || scenario.rest === true;
  const redisPrefix = `atp:bench:${process.pid}:${scenario.name}:${rep}`;
  const execArgv = ['--expose-gc'];
  // --cpu-prof: V8's profile of each whole server process (start-up and connecting included);
  // --profile: of the measured phase only.
  if (args.has('cpu-prof')) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(resultsDir, 'profiles')}`);
  const servers = [];
  const result = { scenario: scenario.name, target, rep, loadAverage: loadavg()[0] };
  let generator;
  let redis;
  try {
    if (REDIS_TARGETS.includes(target)) redis = await startRedisFor(target);
    for (let s = 0; s < serverCount; s++) {
      const env = profile
        ? {
            ...process.env,
            BENCH_PROFILE_DIR: join(resultsDir, 'profiles'),
            BENCH_PROFILE_NAME: `${scenario.name}-${target}-${rep}`,
          }
        : process.env;
      const server = startChild(join(here, 'server.mjs'), execArgv, 0, env);
      servers.push(server);
      await waitFor(server, 'started');
      server.send({
        cmd: 'start',
        target: target.startsWith('hub') ? 'hub' : target,
        ...(redis ? { redis: redis.broker, redisPrefix } : {}),
      });
      const ready = await Promise.race([waitFor(server, 'ready'), waitFor(server, 'failed')]);
      if (ready.type === 'failed') throw new Error(ready.error);
      server.port = ready.port;
    }
    const [publisher] = servers;
    let baseline;
    if (scenario.memory) {
      publisher.send({ cmd: 'memory' });
      baseline = await waitFor(publisher, 'memory');
    }
    generator = startChild(join(here, 'generator.mjs'), [], 1);
    await waitFor(generator, 'started');
    generator.send({
      cmd: 'connect',
      target: target.startsWith('hub') ? 'hub' : target,
      urls: servers.map((s) =>
        target === 'socketio'
          ? `ws://127.0.0.1:${s.port}/socket.io/?EIO=4&transport=websocket`
          : `ws://127.0.0.1:${s.port}/api/ws/updates`,
      ),
      sourceAddresses: SOURCE_ADDRESSES,
      kind: scenario.kind,
      clients: scenario.clients,
      suites: scenario.suites ?? 1,
      distinctSequences: scenario.distinctSequences === true,
    });
    const connected = await waitFor(generator, 'connected', 300_000);
    result.connectMs = connected.ms;
    result.connectFailures = connected.failed;
    if (scenario.memory) {
      publisher.send({ cmd: 'memory' });
      const after = await waitFor(publisher, 'memory');
      const n = scenario.clients - connected.failed;
      result.rssPerConnectionKB = (after.rss - baseline.rss) / n / 1024;
      result.heapPerConnectionKB =
        (after.heapUsed + after.external - baseline.heapUsed - baseline.external) / n / 1024;
      result.memoryDeltaKB = Object.fromEntries(
        Object.keys(after).map((k) => [k, Number(((after[k] - baseline[k]) / n / 1024).toFixed(2))]),
      );
      generator.send({ cmd: 'report' });
      const report = await waitFor(generator, 'report');
      result.closedEarly = report.closedEarly;
      result.losses = connected.failed + report.closedEarly;
      result.reorders = 0;
      return result;
    }
    // Credits: the generator reports the newest message every client has; the publisher keeps a window.
    const credit = { through: 0, waiter: undefined };
    credit.changed = () => new Promise((resolve) => (credit.waiter = resolve));
    let progressWaiter;
    generator.onAny = (message) => {
      if (message.type !== 'progress') return;
      credit.through = message.through;
      if (!viaHttp) publisher.send({ cmd: 'credit', through: message.through });
      credit.waiter?.();
      progressWaiter?.(message.through);
    };
    const runPhase = async (from, count, measure) => {
      const phase = {
        from,
        count,
        window: scenario.window,
        burst: scenario.burst ?? 1,
        rate: scenario.rate,
        kind: scenario.kind,
        suites: scenario.suites ?? 1,
      };
      generator.send({
        cmd: 'phase',
        from,
        count,
        reportEvery: scenario.reportEvery ?? Math.max(1, Math.floor(scenario.window / 8) || 1),
      });
      await waitFor(generator, 'phase-ready');
      const last = from + count - 1;
      const done = new Promise((resolve) => {
        if (credit.through >= last) return resolve();
        progressWaiter = (through) => through >= last && resolve();
      });
      for (const [s, server] of servers.entries()) {
        const publishes = s === 0 && !viaHttp;
        server.send({ cmd: 'phase', ...phase, measure, count: publishes ? count : 0 });
      }
      if (viaHttp) await httpPhase(publisher.port, phase, credit);
      const limitMs = 20_000 + (count * scenario.clients) / 20;
      let timer;
      const timedOut = await Promise.race([
        done.then(() => false),
        new Promise((resolve) => (timer = setTimeout(() => resolve(true), limitMs))),
      ]);
      clearTimeout(timer);
      progressWaiter = undefined;
      return timedOut;
    };
    await runPhase(1, scenario.warm, false);
    const timedOut = await runPhase(scenario.warm + 1, scenario.count, true);
    let cpuMs = 0;
    let userMs = 0;
    for (const server of servers) {
      server.send({ cmd: 'finish' });
      const finished = await waitFor(server, 'finished');
      cpuMs += finished.cpuMs;
      userMs += finished.userMs;
    }
    generator.send({ cmd: 'report' });
    const report = await waitFor(generator, 'report');
    Object.assign(result, {
      timedOut,
      cpuMs,
      deliveries: report.deliveries,
      expected: report.expected,
      losses: report.losses + report.sequenceGaps,
      reorders: report.reorders,
      sequenceGaps: report.sequenceGaps,
      closedEarly: report.closedEarly,
      controlErrors: report.controlErrors,
      seconds: report.seconds,
      deliveriesPerSecond: report.deliveries / report.seconds,
      cpuUsPerDelivery: (cpuMs * 1000) / report.deliveries,
      userShare: userMs / cpuMs,
      latencyMs: report.latencyMs,
      generatorCpuUsPerDelivery: (report.generatorCpuMs * 1000) / report.deliveries,
    });
    return result;
  } finally {
    if (generator) await stopChild(generator);
    for (const server of servers) await stopChild(server);
    if (redis?.existing) await cleanRedis(redis.broker.url, redisPrefix);
    await redis?.stop();
  }
}

/**
 * The Redis of a run of `target`, started for it on free loopback ports (never 6379) with the
 * launchers the tests use (`@atp/test-utils/redis`, built): a redis-server (hub-redis), a primary with a
 * replica and three sentinels (hub-sentinel), or three cluster masters (hub-cluster). `broker` is what
 * RedisBroker takes to find it; `stop` kills it. ATP_BENCH_REDIS_URL: hub-redis uses that Redis instead.
 */
async function startRedisFor(target) {
  if (target === 'hub-redis' && EXISTING_REDIS_URL) {
    return { broker: { url: EXISTING_REDIS_URL }, existing: true, stop: async () => {} };
  }
  const launchers = await import('@atp/test-utils/redis');
  if (target === 'hub-sentinel') {
    const set = await launchers.startSentinelSet();
    return { broker: { sentinel: set.sentinel }, set, stop: () => set.stop() };
  }
  if (target === 'hub-cluster') {
    const set = await launchers.startRedisCluster();
    return { broker: { cluster: set.cluster }, set, stop: () => set.stop() };
  }
  const server = await launchers.RedisServer.start();
  return { broker: { url: server.url }, stop: () => server.kill() };
}

// ── one run of the failover scenario ────────────────────────────────────────

/**
 * Two hub processes on a Sentinel-managed primary, `clients` subscribers split between them, `rate`
 * messages per second published in the first; after `warmS`, kill -9 of the primary. Publishing goes on
 * until Redis has acknowledged publishes for 1 s after the last refusal (at most `limitS`). Measures how
 * long publishing was refused, and per client how many acknowledged messages it never got (the messages
 * Redis lost in the failover: the hub's gap must cover them, a hole in the client's `sequence`).
 */
async function runFailoverOnce(scenario, target, rep) {
  const result = { scenario: scenario.name, target, rep, loadAverage: loadavg()[0] };
  const children = [];
  let redis;
  try {
    redis = await startRedisFor(target);
    const servers = [];
    for (let s = 0; s < 2; s++) {
      const server = startChild(join(here, 'server.mjs'), [], 0);
      children.push(server);
      servers.push(server);
      await waitFor(server, 'started');
      server.send({
        cmd: 'start',
        target: 'hub',
        redis: redis.broker,
        redisPrefix: `atp:bench:${process.pid}:${scenario.name}:${rep}`,
        track: s === 0,
      });
      const ready = await Promise.race([waitFor(server, 'ready'), waitFor(server, 'failed')]);
      if (ready.type === 'failed') throw new Error(ready.error);
      server.port = ready.port;
    }
    const [publisher] = servers;
    const generator = startChild(join(here, 'generator.mjs'), [], 1);
    children.push(generator);
    await waitFor(generator, 'started');
    generator.send({
      cmd: 'connect',
      target: 'hub',
      urls: servers.map((s) => `ws://127.0.0.1:${s.port}/api/ws/updates`),
      sourceAddresses: SOURCE_ADDRESSES,
      kind: 'fanout',
      clients: scenario.clients,
      suites: 1,
    });
    const connected = await waitFor(generator, 'connected', 300_000);
    const seconds = scenario.warmS + scenario.limitS + 30;
    generator.send({
      cmd: 'record',
      capacity: Math.min(8_000_000, scenario.clients * scenario.rate * seconds),
      numbers: scenario.rate * seconds,
    });
    publisher.send({ cmd: 'live', from: 1, rate: scenario.rate, kind: 'fanout' });
    await waitFor(publisher, 'live-started');
    await sleep(scenario.warmS * 1000);
    const summary = async (sinceMs) => {
      publisher.send({ cmd: 'publish-summary', sinceMs });
      return waitFor(publisher, 'publish-summary');
    };
    const { primary, replica } = redis.set;
    if (scenario.cutReplicaMs) {
      // Shorter than down-after-milliseconds: the sentinels still promote the replica afterwards.
      process.kill(replica.pid, 'SIGSTOP');
      const { redisCommand } = await import('@atp/test-utils/redis');
      await redisCommand(primary.port, ['CLIENT', 'KILL', 'TYPE', 'replica']);
      await sleep(scenario.cutReplicaMs);
    }
    const before = await summary(0);
    const killedAtMs = before.nowMs;
    await primary.kill();
    if (scenario.cutReplicaMs) process.kill(replica.pid, 'SIGCONT');
    const deadline = Date.now() + scenario.limitS * 1000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      await sleep(250);
      const now = await summary(killedAtMs);
      recovered =
        now.nowMs - killedAtMs > 2000 &&
        now.lastAckedAt !== undefined &&
        now.lastAckedAt > (now.lastRefusedAt ?? killedAtMs) + 1000;
    }
    publisher.send({ cmd: 'live-stop' });
    const { last } = await waitFor(publisher, 'live-stopped');
    publisher.send({ cmd: 'publish-outcomes', sinceMs: killedAtMs });
    const outcomes = await waitFor(publisher, 'publish-outcomes', 30_000);
    generator.send({ cmd: 'failover-check', acked: outcomes.acked });
    const check = await waitFor(generator, 'failover-checked', 30_000);
    const { redisCommand } = await import('@atp/test-utils/redis');
    const master = await redisCommand(redis.set.sentinels[0].port, [
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      redis.set.sentinel.name,
    ]);
    const missing = check.missing;
    result.failover = {
      refusedMs: outcomes.longestRefusalMs,
      refusedCalls: outcomes.refusedCalls,
      longestCallMs: outcomes.longestCallMs,
      refusedBeforeKill: before.refusedCalls,
      published: last,
      acked: outcomes.acked.length,
      clients: check.clients,
      clientsWithGap: check.withGap,
      gapMin: missing[0],
      gapMax: missing.at(-1),
      promoted: Array.isArray(master) && master[1] === String(redis.set.replica.port) ? 1 : 0,
      controlFrames: check.controlErrors,
    };
    result.refusals = outcomes.errors;
    if (!recovered) console.log(`    not recovered; refusals: ${JSON.stringify(outcomes.errors)}`);
    Object.assign(result, {
      timedOut: !recovered,
      // Lost: what a client missed without a hole in its sequence, and clients that did not connect or closed.
      losses:
        check.silent +
        connected.failed +
        check.closedEarly +
        (scenario.clients - connected.failed - check.clients),
      reorders: check.reorders,
    });
    return result;
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    await redis?.stop();
  }
}

// ── one run of the client-cpu scenario ──────────────────────────────────────

/** The hub on CPU 0 publishes, one client process on CPU 1 receives and measures its own CPU time. */
async function runClientOnce(scenario, target, rep) {
  const result = { scenario: scenario.name, target, rep, loadAverage: loadavg()[0] };
  const children = [];
  try {
    const server = startChild(join(here, 'server.mjs'), ['--expose-gc'], 0);
    children.push(server);
    await waitFor(server, 'started');
    server.send({ cmd: 'start', target: 'hub' });
    const ready = await Promise.race([waitFor(server, 'ready'), waitFor(server, 'failed')]);
    if (ready.type === 'failed') throw new Error(ready.error);
    const client = startChild(join(here, 'client.mjs'), [], 1);
    children.push(client);
    await waitFor(client, 'started');
    client.send({
      cmd: 'connect',
      target: target === 'floor' ? 'floor' : 'client',
      module: CLIENT_BUILDS.get(target),
      url: `ws://127.0.0.1:${ready.port}/api/ws/updates`,
    });
    const connected = await waitFor(client, 'connected');
    if (connected.failed) throw new Error(connected.error);
    let through = 0;
    let progressWaiter;
    client.onAny = (message) => {
      through = message.through;
      server.send({ cmd: 'credit', through });
      progressWaiter?.(through);
    };
    const runPhase = async (from, count, measure) => {
      client.send({ cmd: 'phase', from, count, reportEvery: scenario.reportEvery });
      await waitFor(client, 'phase-ready');
      const last = from + count - 1;
      const done = new Promise((resolve) => {
        progressWaiter = (n) => n >= last && resolve();
      });
      server.send({ cmd: 'phase', from, count, window: scenario.window, kind: 'fanout', measure });
      let timer;
      const timedOut = await Promise.race([
        done.then(() => false),
        new Promise((resolve) => (timer = setTimeout(() => resolve(true), 60_000 + count))),
      ]);
      clearTimeout(timer);
      progressWaiter = undefined;
      return timedOut;
    };
    await runPhase(1, scenario.warm, false);
    const timedOut = await runPhase(scenario.warm + 1, scenario.count, true);
    client.send({ cmd: 'report' });
    const report = await waitFor(client, 'report');
    Object.assign(result, {
      timedOut,
      deliveries: report.deliveries,
      losses: scenario.warm + scenario.count - report.received,
      reorders: report.reorders,
      duplicates: report.duplicates,
      sequenceGaps: report.sequenceGaps,
      seconds: report.seconds,
      deliveriesPerSecond: report.deliveries / report.seconds,
      cpuUsPerDelivery: (report.cpuMs * 1000) / report.deliveries,
      userShare: report.userMs / report.cpuMs,
    });
    return result;
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}

// ── one run of a replay scenario (the hub only) ────────────────────────────

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Busy time of CPU `n` (0: the server's, 1: the clients', when pinned) so far, ms, from /proc/stat. */
function cpuBusyMs(n) {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${n} `));
    const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
    return ((user + nice + system + irq + softirq + steal) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Share of a CPU that processes other than the benchmark's own (pinned) ones used in a window. */
function othersOn(busyFrom, busyTo, ownCpuMs, seconds) {
  if (!pin || busyFrom === undefined || busyTo === undefined) return undefined;
  return Math.max(0, busyTo - busyFrom - ownCpuMs) / 1000 / seconds;
}

function percentileOf(values, q) {
  const v = values.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : undefined;
}

/**
 * Fills a hub's history with one suite run, connects the live clients,
 * publishes live progress at a fixed rate, measures a window without joins,
 * then lets `joiners` dashboards join at once (from a generator process of
 * their own) and measures until every one is caught up.
 */
async function runReplayOnce(scenario, rep) {
  const execArgv = ['--expose-gc'];
  if (scenario.serverHeapMB) execArgv.push(`--max-old-space-size=${scenario.serverHeapMB}`);
  if (args.has('cpu-prof')) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(resultsDir, 'profiles')}`);
  const env = profile
    ? {
        ...process.env,
        BENCH_PROFILE_DIR: join(resultsDir, 'profiles'),
        BENCH_PROFILE_NAME: `${scenario.name}-hub-${rep}`,
      }
    : process.env;
  const result = { scenario: scenario.name, target: 'hub', rep, loadAverage: loadavg()[0] };
  const children = [];
  try {
    const server = startChild(join(here, 'server.mjs'), execArgv, 0, env);
    children.push(server);
    await waitFor(server, 'started');
    server.send({
      cmd: 'start',
      target: 'hub',
      // The run's last message takes the history over its bound: the broker compacts everything older
      // than its recent window (the defaults: 2 minutes, the newest 10,000) before the dashboards join.
      history: { maxMessages: scenario.history - 1, maxBytes: 2 ** 31 },
      eventLoopResolutionMs: 1,
    });
    const ready = await Promise.race([waitFor(server, 'ready'), waitFor(server, 'failed')]);
    if (ready.type === 'failed') throw new Error(ready.error);
    const url = `ws://127.0.0.1:${ready.port}/api/ws/updates`;
    server.send({ cmd: 'fill', count: scenario.history });
    const filled = await waitFor(server, 'filled', 1_800_000);
    if (filled.error) throw new Error(filled.error);
    result.fill = filled;
    const liveClients = startChild(join(here, 'generator.mjs'), [], 1);
    children.push(liveClients);
    await waitFor(liveClients, 'started');
    liveClients.send({
      cmd: 'connect',
      target: 'hub',
      urls: [url],
      sourceAddresses: SOURCE_ADDRESSES,
      kind: 'replay',
      clients: scenario.live,
      suites: 1,
    });
    const connected = await waitFor(liveClients, 'connected', 300_000);
    result.connectFailures = connected.failed;
    // The joiners share CPU 1 with the live clients: at a lower priority, so that the live clients'
    // process is not kept waiting by theirs and their latency is the server's.
    const joiners = startChild(join(here, 'generator.mjs'), [], 1, process.env, 10);
    children.push(joiners);
    await waitFor(joiners, 'started');
    const liveSeconds = scenario.warmS + scenario.baselineS + scenario.joinLimitS + 5;
    liveClients.send({
      cmd: 'record',
      capacity: Math.min(8_000_000, Math.ceil(scenario.live * scenario.rate * liveSeconds)),
    });
    server.send({ cmd: 'live', from: 1, rate: scenario.rate, kind: 'replay' });
    await waitFor(server, 'live-started');
    await sleep(scenario.warmS * 1000);
    // Without joins.
    server.send({ cmd: 'mark' });
    await waitFor(server, 'marked');
    liveClients.send({ cmd: 'delay' });
    await waitFor(liveClients, 'delay');
    const baseFrom = nowMicros();
    const baseBusy = [cpuBusyMs(0), cpuBusyMs(1)];
    await sleep(scenario.baselineS * 1000);
    const baseTo = nowMicros();
    server.send({ cmd: 'measure' });
    liveClients.send({ cmd: 'delay' });
    const base = await waitFor(server, 'measured');
    const baseClientDelay = await waitFor(liveClients, 'delay');
    const baseSeconds = (baseTo - baseFrom) / 1e6;
    const baseOthers = othersOn(baseBusy[0], cpuBusyMs(0), base.cpuMs, baseSeconds);
    const baseOthers1 = othersOn(baseBusy[1], cpuBusyMs(1), baseClientDelay.cpuMs, baseSeconds);
    // The joins.
    server.send({ cmd: 'mark', profile: true });
    await waitFor(server, 'marked');
    const joinFrom = nowMicros();
    const joinBusy = [cpuBusyMs(0), cpuBusyMs(1)];
    // `rounds` joins one after another (each once the previous is caught up), all in one window: a
    // single joiner is caught up in well under a second, too few live messages for a p99 of their own.
    const joined = { joiners: [], generatorCpuMs: 0 };
    for (let round = 0; round < (scenario.rounds ?? 1); round++) {
      joiners.send({
        cmd: 'join',
        url,
        joiners: scenario.joiners,
        suite: REPLAY_SUITE,
        sourceAddresses: SOURCE_ADDRESSES,
        offsetBound: filled.head + scenario.rate * liveSeconds + 1,
        timeoutMs: scenario.joinLimitS * 1000,
      });
      const one = await waitFor(joiners, 'joined', scenario.joinLimitS * 1000 + 60_000);
      joined.joiners.push(...one.joiners);
      joined.generatorCpuMs += one.generatorCpuMs;
    }
    const joinTo = nowMicros();
    server.send({ cmd: 'measure' });
    liveClients.send({ cmd: 'delay' });
    const during = await waitFor(server, 'measured');
    const joinClientDelay = await waitFor(liveClients, 'delay');
    const joinBusyTo = [cpuBusyMs(0), cpuBusyMs(1)];
    const joinOthers = othersOn(joinBusy[0], joinBusyTo[0], during.cpuMs, (joinTo - joinFrom) / 1e6);
    await sleep(500);
    server.send({ cmd: 'live-stop' });
    const { last } = await waitFor(server, 'live-stopped');
    liveClients.send({ cmd: 'live-check', last });
    const check = await waitFor(liveClients, 'live-checked', 30_000);
    liveClients.send({ cmd: 'live-stats', fromUs: baseFrom, toUs: baseTo });
    const liveBase = await waitFor(liveClients, 'live-stats');
    liveClients.send({ cmd: 'live-stats', fromUs: joinFrom, toUs: joinTo });
    const liveJoin = await waitFor(liveClients, 'live-stats');

    const js = joined.joiners;
    const caughtUp = js.filter((j) => j.caughtUpMs !== null);
    const historyReceived = js.reduce((sum, j) => sum + j.historyReceived, 0);
    const joinSeconds = (joinTo - joinFrom) / 1e6;
    const baseCpuPerSecond = base.cpuMs / ((baseTo - baseFrom) / 1e6);
    const extraCpuMs = during.cpuMs - baseCpuPerSecond * joinSeconds;
    const short = js.reduce((sum, j) => sum + j.short + Math.max(0, j.announced - j.historyReceived), 0);
    const duplicates = js.reduce((sum, j) => sum + j.duplicates, 0);
    const sequenceHoles = js.reduce((sum, j) => sum + j.sequenceHoles, 0);
    result.joiners = js;
    result.replay = {
      historyPublished: filled.published,
      historyKept: filled.keptMessages,
      historyPublishedMB: filled.publishedBytes / 1e6,
      historyKeptMB: filled.keptBytes / 1e6,
      uncompactedReplayMB: filled.uncompactedFrameBytes / 1e6,
      keptReplayMB: filled.keptFrameBytes / 1e6,
      fillSeconds: filled.fillMs / 1000,
      joiners: js.length,
      caughtUp: caughtUp.length,
      announcedP50: percentileOf(
        js.map((j) => j.announced),
        0.5,
      ),
      historyMsP50: percentileOf(
        js.map((j) => j.historyMs),
        0.5,
      ),
      historyMsMax: Math.max(...js.map((j) => j.historyMs ?? Number.POSITIVE_INFINITY)),
      caughtUpMsP50: percentileOf(
        js.map((j) => j.caughtUpMs),
        0.5,
      ),
      caughtUpMsMax: Math.max(...js.map((j) => j.caughtUpMs ?? Number.POSITIVE_INFINITY)),
      joinSeconds,
      serverCpuMs: during.cpuMs,
      serverUserShare: during.userMs / during.cpuMs,
      serverCpuShare: during.cpuMs / 1000 / joinSeconds,
      baseCpuShare: baseCpuPerSecond / 1000,
      extraCpuMs,
      cpuUsPerReplayed: historyReceived ? (extraCpuMs * 1000) / historyReceived : undefined,
      bytesPerJoinerMB:
        percentileOf(
          js.map((j) => j.bytes),
          0.5,
        ) / 1e6,
      bytesTotalMB: js.reduce((sum, j) => sum + (j.bytes ?? 0), 0) / 1e6,
      eldMaxBaseMs: base.eventLoopDelayMs.max,
      eldMaxJoinMs: during.eventLoopDelayMs.max,
      eldP99JoinMs: during.eventLoopDelayMs.p99,
      liveClientsEldMaxBaseMs: baseClientDelay.maxMs,
      liveClientsEldMaxJoinMs: joinClientDelay.maxMs,
      liveP50BaseMs: liveBase.p50,
      liveP99BaseMs: liveBase.p99,
      liveP99JoinMs: liveJoin.p99,
      liveP50JoinMs: liveJoin.p50,
      liveMaxJoinMs: liveJoin.max,
      liveDeliveriesBase: liveBase.deliveries,
      liveDeliveriesJoin: liveJoin.deliveries,
      liveP99Ratio: liveJoin.p99 / liveBase.p99,
      rssAfterMB: during.rss / 2 ** 20,
      othersOnServerCpuBase: baseOthers,
      othersOnServerCpuJoin: joinOthers,
      othersOnClientCpuBase: baseOthers1,
      othersOnClientCpuJoin: othersOn(
        joinBusy[1],
        joinBusyTo[1],
        joinClientDelay.cpuMs + joined.generatorCpuMs,
        (joinTo - joinFrom) / 1e6,
      ),
      generatorCpuMs: joined.generatorCpuMs,
      short,
      duplicates,
      sequenceHoles,
      liveMissing: check.missing + check.holes,
    };
    Object.assign(result, {
      timedOut: caughtUp.length < js.length,
      losses: short + sequenceHoles + check.missing + check.holes + check.sequenceGaps,
      reorders: check.reorders + js.reduce((sum, j) => sum + j.liveReorders, 0),
      duplicates,
    });
    return result;
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}

/** Deletes the keys of a run from an existing Redis (ATP_BENCH_REDIS_URL); the bench's own servers just stop. */
async function cleanRedis(url, prefix) {
  await new Promise((resolve) => {
    const script = 'redis-cli -u "$1" --scan --pattern "$2*" | xargs -r redis-cli -u "$1" del';
    const child = spawn('sh', ['-c', script, 'clean-redis', url, prefix], { stdio: 'ignore' });
    child.on('exit', resolve);
    child.on('error', resolve);
  });
}

// ── main ────────────────────────────────────────────────────────────────────

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function summarize(runs) {
  const out = {};
  for (const run of runs) {
    out[run.scenario] ??= {};
    out[run.scenario][run.target] ??= [];
    out[run.scenario][run.target].push(run);
  }
  const summary = {};
  for (const [scenario, targets] of Object.entries(out)) {
    summary[scenario] = {};
    for (const [target, list] of Object.entries(targets)) {
      const pick = (f) => median(list.map(f));
      const replay = list[0]?.replay
        ? Object.fromEntries(Object.keys(list[0].replay).map((k) => [k, pick((r) => r.replay?.[k])]))
        : undefined;
      const withFailover = list.filter((r) => r.failover);
      const failover = withFailover.length
        ? Object.fromEntries(
            Object.keys(withFailover[0].failover).map((k) => [
              k,
              { median: pick((r) => r.failover?.[k]), runs: withFailover.map((r) => r.failover[k]) },
            ]),
          )
        : undefined;
      summary[scenario][target] = {
        runs: list.length,
        replay,
        failover,
        loadAverage: pick((r) => r.loadAverage),
        cpuUsPerDelivery: pick((r) => r.cpuUsPerDelivery),
        deliveriesPerSecond: pick((r) => r.deliveriesPerSecond),
        p50: pick((r) => r.latencyMs?.p50),
        p99: pick((r) => r.latencyMs?.p99),
        p999: pick((r) => r.latencyMs?.p999),
        rssPerConnectionKB: pick((r) => r.rssPerConnectionKB),
        heapPerConnectionKB: pick((r) => r.heapPerConnectionKB),
        losses: list.reduce((sum, r) => sum + (r.losses ?? 0), 0),
        reorders: list.reduce((sum, r) => sum + (r.reorders ?? 0), 0),
        timedOut: list.some((r) => r.timedOut),
      };
    }
  }
  return summary;
}

async function main() {
  const started = Date.now();
  // A scenario behind a flag (--replay-1m) runs when the flag is given or when --only names it.
  const scenarios = SCENARIOS.filter((s) =>
    only ? only.includes(s.name) || (s.flag && args.has(s.flag)) : !s.flag || args.has(s.flag),
  );
  const runs = [];
  console.log(
    `pnpm bench${quick ? ' --quick' : ''}: ${scenarios.length} scenarios x ${reps} repetitions; ` +
      `${cpus().length} cores, ${cpus()[0]?.model}, Node ${process.version}; load average ${loadavg()[0].toFixed(2)}`,
  );
  if (loadavg()[0] > 1) {
    console.log('  (other processes are busy on this machine: throughput and latency will be noisy)');
  }
  for (const scenario of scenarios) {
    const scenarioReps = args.has('reps') ? reps : (scenario.reps ?? reps);
    for (let rep = 1; rep <= scenarioReps; rep++) {
      for (const target of scenario.targets.filter((t) => !onlyTargets || onlyTargets.includes(t))) {
        const t0 = Date.now();
        try {
          const run =
            scenario.kind === 'replay'
              ? await runReplayOnce(scenario, rep)
              : scenario.kind === 'failover'
                ? await runFailoverOnce(scenario, target, rep)
                : scenario.kind === 'client'
                  ? await runClientOnce(scenario, target, rep)
                  : await runOnce(scenario, target, rep);
          runs.push(run);
          console.log(
            `  ${scenario.name} #${rep} ${target.padEnd(9)} ${describeRun(run)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
          );
        } catch (error) {
          runs.push({ scenario: scenario.name, target, rep, error: String(error?.message ?? error) });
          console.log(`  ${scenario.name} #${rep} ${target.padEnd(9)} FAILED: ${error?.message ?? error}`);
        }
      }
    }
  }
  const summary = summarize(runs);
  const sizes = await bundleSizes();
  const table = printTable(scenarios, summary, sizes);
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(resultsDir, `bench-${quick ? 'quick-' : ''}${stamp}.json`);
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    memoryMB: totalmem() / 2 ** 20,
  };
  writeFileSync(
    file,
    `${JSON.stringify({ quick, reps, machine, scenarios, summary, sizes, table, runs, seconds: (Date.now() - started) / 1000 }, null, 2)}\n`,
  );
  console.log(`\nJSON: ${file}  (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

function describeRun(run) {
  if (run.failover) {
    const f = run.failover;
    const lost = run.losses || run.reorders ? ` LOST ${run.losses} REORDERED ${run.reorders}` : '';
    return (
      `publishing refused for ${Math.round(f.refusedMs)} ms (${f.refusedCalls} calls, longest call ${Math.round(f.longestCallMs)} ms); ` +
      `${f.acked} of ${f.published} published acknowledged; gap covered ${f.gapMin}-${f.gapMax} messages per client, ` +
      `${f.clientsWithGap}/${f.clients} clients told by a gap; replica promoted: ${f.promoted ? 'yes' : 'NO'}; ` +
      `load ${run.loadAverage.toFixed(2)}${lost}${run.timedOut ? ' NOT RECOVERED' : ''}`
    );
  }
  if (run.replay) {
    const r = run.replay;
    const s = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'never');
    const share = (x) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(0)}%`);
    return (
      `history ${r.historyKept.toLocaleString('en')} kept of ${r.historyPublished.toLocaleString('en')}; ` +
      `${r.caughtUp}/${r.joiners} caught up, history p50 ${s(r.historyMsP50)} max ${s(r.historyMsMax)}, ` +
      `caught up p50 ${s(r.caughtUpMsP50)} max ${s(r.caughtUpMsMax)}; server CPU ${Math.round(r.serverCpuMs)} ms ` +
      `(${(r.serverCpuShare * 100).toFixed(0)}% of a core), ${r.cpuUsPerReplayed?.toFixed(2)} µs/replayed; ` +
      `${r.bytesPerJoinerMB.toFixed(1)} MB/joiner; event-loop delay max ${r.eldMaxBaseMs.toFixed(1)} -> ${r.eldMaxJoinMs.toFixed(1)} ms; ` +
      `live p99 ${r.liveP99BaseMs?.toFixed(2)} -> ${r.liveP99JoinMs?.toFixed(2)} ms ` +
      `(their process's own delay max ${r.liveClientsEldMaxBaseMs.toFixed(1)} -> ${r.liveClientsEldMaxJoinMs.toFixed(1)} ms); ` +
      `short ${r.short} dup ${r.duplicates} holes ${r.sequenceHoles} live missing ${r.liveMissing}; ` +
      `generator ${Math.round(r.generatorCpuMs)} ms; load ${run.loadAverage.toFixed(2)}, others on CPU 0 ` +
      `${share(r.othersOnServerCpuBase)} / ${share(r.othersOnServerCpuJoin)}, on CPU 1 ` +
      `${share(r.othersOnClientCpuBase)} / ${share(r.othersOnClientCpuJoin)}`
    );
  }
  if (run.rssPerConnectionKB !== undefined) {
    return `rss ${run.rssPerConnectionKB.toFixed(2)} KB/conn, heap ${run.heapPerConnectionKB.toFixed(2)} KB/conn ${JSON.stringify(run.memoryDeltaKB)}`;
  }
  const lost = run.losses || run.reorders ? ` LOST ${run.losses} REORDERED ${run.reorders}` : '';
  if (run.scenario === 'client-cpu') {
    return (
      `client cpu ${run.cpuUsPerDelivery.toFixed(3)} µs/message, ${Math.round(run.deliveriesPerSecond).toLocaleString('en')} msg/s, ` +
      `user ${(run.userShare * 100).toFixed(0)}%, duplicates ${run.duplicates}, gaps ${run.sequenceGaps}${lost}${run.timedOut ? ' TIMED OUT' : ''}`
    );
  }
  return (
    `cpu ${run.cpuUsPerDelivery.toFixed(3)} µs/del, ${Math.round(run.deliveriesPerSecond).toLocaleString('en')} del/s, ` +
    `p50 ${run.latencyMs.p50?.toFixed(2)} p99 ${run.latencyMs.p99?.toFixed(2)} ms; user ${(run.userShare * 100).toFixed(0)}%, ` +
    `generator ${run.generatorCpuUsPerDelivery.toFixed(2)} µs/del${lost}${run.timedOut ? ' TIMED OUT' : ''}`
  );
}

await main();
