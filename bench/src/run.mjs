// `pnpm bench`: our hub vs a bare `ws` broadcast (the floor) vs Socket.IO with
// rooms, side by side in one run. Each target is a fresh server process; the
// load generator is another process of raw `ws` clients. Targets are
// interleaved (A B C A B C …) and each figure is the median of the repetitions.
//
//   node src/run.mjs [--quick] [--reps=N] [--only=fanout-1k,burst-1k] [--targets=floor,hub]
//                    [--profile | --cpu-prof] [--no-pin]
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageFor, nowMicros } from './scenario.mjs';
import { bundleSizes } from './sizes.mjs';
import { printTable } from './table.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, '..', 'results');
const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
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
const REDIS_URL = process.env.ATP_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PUBLISH_TOKEN = 'bench-publish-token';
/** Source addresses of the clients: the hub allows 1,000 connections per address by default. */
const SOURCE_ADDRESSES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`);

const ALL = ['floor', 'hub', 'hub-http', 'socketio'];
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
];

// ── processes ───────────────────────────────────────────────────────────────

/**
 * Starts a node child with an IPC channel, its open-file limit raised to the
 * hard limit (10,000 sockets need more than the usual 1,024).
 */
function startChild(script, execArgv = [], cpu = undefined, env = process.env) {
  const command = [process.execPath, ...execArgv, script];
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
  const serverCount = target === 'hub-redis' ? 2 : 1;
  const redisPrefix = `atp:bench:${process.pid}:${scenario.name}:${rep}`;
  const execArgv = ['--expose-gc'];
  // --cpu-prof: V8's profile of each whole server process (start-up and connecting included);
  // --profile: of the measured phase only.
  if (args.has('cpu-prof')) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(resultsDir, 'profiles')}`);
  const servers = [];
  const result = { scenario: scenario.name, target, rep, loadAverage: loadavg()[0] };
  let generator;
  try {
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
        ...(target === 'hub-redis' ? { redisUrl: REDIS_URL, redisPrefix } : {}),
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
      if (target !== 'hub-http') publisher.send({ cmd: 'credit', through: message.through });
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
        const publishes = s === 0 && target !== 'hub-http';
        server.send({ cmd: 'phase', ...phase, measure, count: publishes ? count : 0 });
      }
      if (target === 'hub-http') await httpPhase(publisher.port, phase, credit);
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
    if (target === 'hub-redis') await cleanRedis(redisPrefix);
  }
}

async function cleanRedis(prefix) {
  await new Promise((resolve) => {
    const child = spawn('sh', ['-c', `redis-cli --scan --pattern '${prefix}*' | xargs -r redis-cli del`], {
      stdio: 'ignore',
    });
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
      summary[scenario][target] = {
        runs: list.length,
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
  const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.name));
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
          const run = await runOnce(scenario, target, rep);
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
  if (run.rssPerConnectionKB !== undefined) {
    return `rss ${run.rssPerConnectionKB.toFixed(2)} KB/conn, heap ${run.heapPerConnectionKB.toFixed(2)} KB/conn ${JSON.stringify(run.memoryDeltaKB)}`;
  }
  const lost = run.losses || run.reorders ? ` LOST ${run.losses} REORDERED ${run.reorders}` : '';
  return (
    `cpu ${run.cpuUsPerDelivery.toFixed(3)} µs/del, ${Math.round(run.deliveriesPerSecond).toLocaleString('en')} del/s, ` +
    `p50 ${run.latencyMs.p50?.toFixed(2)} p99 ${run.latencyMs.p99?.toFixed(2)} ms; user ${(run.userShare * 100).toFixed(0)}%, ` +
    `generator ${run.generatorCpuUsPerDelivery.toFixed(2)} µs/del${lost}${run.timedOut ? ' TIMED OUT' : ''}`
  );
}

await main();
