// The one table of a run: each figure with its ratio to the bare `ws` floor of
// the same run, and the issue's goals met or missed. Printed as Markdown so it
// can go into docs/BENCHMARKS.md as is.

const COLUMNS = [
  ['floor', 'bare ws (floor)'],
  ['hub', 'hub'],
  ['hub-http', 'hub, POST publish'],
  ['socketio', 'Socket.IO rooms'],
  ['hub-redis', 'hub x2 via Redis'],
  ['hub-sentinel', 'hub x2 via Sentinel'],
  ['hub-cluster', 'hub x2 via Cluster'],
];

/** Empty cells of the Sentinel and Cluster columns, in the rows laid out by hand. */
const HA_EMPTY = ['', ''];

function format(value, unit) {
  if (value === undefined || value === null || Number.isNaN(value)) return 'n/a';
  if (unit === '/s') return `${Math.round(value).toLocaleString('en')}/s`;
  if (unit === 'ms') return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
  if (unit === 'µs') return `${value.toFixed(value < 1 ? 3 : 2)} µs`;
  if (unit === 'KB') return `${value.toFixed(2)} KB`;
  return String(value);
}

function ratioText(value, floor) {
  if (value === undefined || floor === undefined || !floor) return '';
  return ` (${(value / floor).toFixed(2)}x)`;
}

function verdict(ok, text) {
  return `${ok ? 'met' : '**missed**'}: ${text}`;
}

/** Prints the table and returns its lines. */
export function printTable(scenarios, summary, sizes) {
  const rows = [];
  const header = ['scenario', 'figure', ...COLUMNS.map(([, title]) => title), 'goal (hub)'];
  // `base`: the target whose figure the others' ratios are to (the floor, or one Redis for the HA rows).
  const metricRow = (scenario, label, field, unit, goal, base = 'floor') => {
    const s = summary[scenario];
    if (!s) return;
    const floor = s[base]?.[field];
    const cells = COLUMNS.map(([target]) => {
      const value = s[target]?.[field];
      if (value === undefined) return s[target] ? 'n/a' : '';
      return `${format(value, unit)}${target === base ? '' : ratioText(value, floor)}`;
    });
    rows.push([scenario, label, ...cells, goal ? goal(s) : '']);
  };
  const ratio = (s, field, a = 'hub', b = 'floor') =>
    s[a]?.[field] !== undefined && s[b]?.[field] ? s[a][field] / s[b][field] : undefined;
  const cpuGoal = (limit, sioLimit) => (s) => {
    const r = ratio(s, 'cpuUsPerDelivery');
    if (r === undefined) return 'n/a';
    let text = verdict(r <= limit, `${r.toFixed(2)}x floor (<= ${limit}x)`);
    if (sioLimit !== undefined) {
      const rs = ratio(s, 'cpuUsPerDelivery', 'hub', 'socketio');
      if (rs !== undefined)
        text += `; ${verdict(rs <= sioLimit, `${rs.toFixed(2)}x Socket.IO (<= ${sioLimit}x)`)}`;
    }
    return text;
  };

  for (const name of ['fanout-1k', 'fanout-1k-distinct', 'fanout-5k']) {
    metricRow(name, 'server CPU / delivery', 'cpuUsPerDelivery', 'µs', cpuGoal(1.15, 0.7));
    metricRow(name, 'deliveries/s', 'deliveriesPerSecond', '/s');
  }
  metricRow('burst-1k', 'server CPU / delivery', 'cpuUsPerDelivery', 'µs', cpuGoal(0.35));
  metricRow('burst-1k', 'deliveries/s', 'deliveriesPerSecond', '/s');
  metricRow('latency-1k', 'latency p50', 'p50', 'ms');
  metricRow('latency-1k', 'latency p99', 'p99', 'ms', (s) => {
    const r = ratio(s, 'p99');
    return r === undefined ? 'n/a' : verdict(r <= 1.3, `${r.toFixed(2)}x floor (<= 1.3x)`);
  });
  metricRow('latency-1k', 'latency p99.9', 'p999', 'ms');
  metricRow('selective-5k', 'server CPU / publish', 'cpuUsPerDelivery', 'µs');
  metricRow('selective-rest-5k', 'server CPU / message', 'cpuUsPerDelivery', 'µs', (s) => {
    const r = ratio(s, 'cpuUsPerDelivery', 'hub-http');
    const rs = ratio(s, 'cpuUsPerDelivery', 'hub-http', 'socketio');
    if (r === undefined) return 'n/a';
    let text = verdict(r <= 1.15, `${r.toFixed(2)}x floor (<= 1.15x)`);
    if (rs !== undefined) text += `; ${verdict(rs < 1, `${rs.toFixed(2)}x Socket.IO (< 1x)`)}`;
    return text;
  });
  metricRow('selective-rest-5k', 'messages/s', 'deliveriesPerSecond', '/s', (s) => {
    const r = ratio(s, 'deliveriesPerSecond', 'hub-http');
    return r === undefined ? 'n/a' : verdict(r >= 0.9, `${r.toFixed(2)}x floor (>= 0.9x)`);
  });
  metricRow('selective-1', 'server CPU / publish', 'cpuUsPerDelivery', 'µs');
  if (summary['selective-5k'] && summary['selective-1']) {
    const many = summary['selective-5k'];
    const one = summary['selective-1'];
    const cells = COLUMNS.map(([target]) => {
      const a = many[target]?.cpuUsPerDelivery;
      const b = one[target]?.cpuUsPerDelivery;
      return a !== undefined && b ? `${(a / b).toFixed(2)}x` : '';
    });
    const r = many.hub?.cpuUsPerDelivery / one.hub?.cpuUsPerDelivery;
    rows.push([
      'selective',
      '5,000 clients / 1 client',
      ...cells,
      Number.isFinite(r) ? verdict(r <= 2, `${r.toFixed(2)}x (<= 2x)`) : 'n/a',
    ]);
  }
  metricRow('idle-10k', 'RSS / idle connection', 'rssPerConnectionKB', 'KB', (s) => {
    const r = ratio(s, 'rssPerConnectionKB');
    return r === undefined ? 'n/a' : verdict(r <= 1.3, `${r.toFixed(2)}x floor (<= 1.3x)`);
  });
  metricRow('idle-10k', 'JS heap / idle connection', 'heapPerConnectionKB', 'KB');
  metricRow('mixed-1k', 'server CPU / delivery', 'cpuUsPerDelivery', 'µs');
  metricRow('mixed-1k', 'deliveries/s', 'deliveriesPerSecond', '/s');
  metricRow('redis-1k', 'deliveries/s', 'deliveriesPerSecond', '/s', (s) => {
    const r = ratio(s, 'deliveriesPerSecond', 'hub-redis', 'hub');
    return r === undefined ? 'n/a' : verdict(r >= 0.5, `Redis ${r.toFixed(2)}x one process (>= 0.5x)`);
  });
  metricRow('redis-1k', 'server CPU / delivery (all hubs)', 'cpuUsPerDelivery', 'µs');
  // High availability: ratios to one redis-server of the same run.
  for (const name of ['redis-sentinel-1k', 'redis-cluster-1k']) {
    metricRow(name, 'deliveries/s', 'deliveriesPerSecond', '/s', undefined, 'hub-redis');
    metricRow(name, 'server CPU / delivery (all hubs)', 'cpuUsPerDelivery', 'µs', undefined, 'hub-redis');
  }
  metricRow('redis-latency-1k', 'latency p50', 'p50', 'ms', undefined, 'hub-redis');
  metricRow('redis-latency-1k', 'latency p99', 'p99', 'ms', undefined, 'hub-redis');
  failoverRows(rows, 'redis-sentinel-failover', summary);
  failoverRows(rows, 'redis-sentinel-failover-lossy', summary);

  for (const scenario of scenarios.filter((x) => x.kind === 'replay')) replayRows(rows, scenario, summary);
  clientRows(rows, summary['client-cpu']);

  // Losses and reorders over every scenario.
  const lossCells = COLUMNS.map(([target]) => {
    let losses = 0;
    let reorders = 0;
    let seen = false;
    for (const s of Object.values(summary)) {
      if (!s[target]) continue;
      seen = true;
      losses += s[target].losses;
      reorders += s[target].reorders;
    }
    return seen ? `${losses} / ${reorders}` : '';
  });
  const hubClean = ['hub', 'hub-http', ...COLUMNS.map(([t]) => t).filter((t) => t.startsWith('hub-'))].every(
    (t) => {
      const i = COLUMNS.findIndex(([c]) => c === t);
      return lossCells[i] === '' || lossCells[i] === '0 / 0';
    },
  );
  rows.push(['all', 'losses / reorders', ...lossCells, verdict(hubClean, 'none')]);

  const kb = (x) => (x ? `${(x.gzipBytes / 1024).toFixed(2)} KB gz` : 'n/a');
  const oursSize = sizes.ours?.gzipBytes;
  rows.push([
    'browser build',
    'min+gzip size',
    '',
    `${kb(sizes.ours)}${oursSize && sizes.socketio ? ` (${(oursSize / sizes.socketio.gzipBytes).toFixed(2)}x Socket.IO)` : ''}`,
    '',
    `${kb(sizes.socketio)} (socket.io.min.js)`,
    ...HA_EMPTY,
    '',
    oursSize ? verdict(oursSize <= 5 * 1024, `${(oursSize / 1024).toFixed(2)} KB (<= 5 KB)`) : 'n/a',
  ]);

  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  console.log(`\n${lines.join('\n')}\n`);
  console.log('Ratios in parentheses are to the bare ws floor of the same run (medians of the repetitions).');
  if (scenarios.some((x) => x.targets.includes('hub-sentinel') || x.targets.includes('hub-cluster'))) {
    console.log(
      'redis-sentinel-*, redis-cluster-*, redis-latency-*: ratios to one Redis (hub x2 via Redis) of the same run.',
    );
  }
  if (scenarios.some((x) => x.kind === 'replay')) {
    console.log(
      'replay-*: the hub only (the floor and Socket.IO keep no history to replay a run from); its ratios are to the same run without joins, or to an uncompacted replay.',
    );
  }
  console.log(
    'Latency is compared at a fixed rate only: under the credit window of the other scenarios it measures the queue in front of the slowest process, not a server.',
  );
  for (const s of scenarios) console.log(`  ${s.name}: ${s.title}`);
  return lines;
}

/**
 * The rows of client-cpu: each @atp/ws-client build's CPU per delivered message, with its ratio to
 * the bare `ws` client (floor) and to the other builds (an older commit's: the cost must not grow).
 */
function clientRows(rows, s) {
  if (!s) return;
  const floor = s.floor?.cpuUsPerDelivery;
  const us = (x) => (x === undefined ? 'n/a' : `${x.toFixed(3)} µs`);
  const builds = Object.keys(s).filter((t) => t.startsWith('client'));
  for (const target of builds) {
    const value = s[target].cpuUsPerDelivery;
    const others = builds.filter((t) => t !== target && target === 'client');
    const goal = others
      .map((t) => {
        const r = value / s[t].cpuUsPerDelivery;
        return verdict(r <= 1.1, `${r.toFixed(2)}x ${t} (<= 1.1x, the noise of one run)`);
      })
      .join('; ');
    rows.push([
      'client-cpu',
      `client CPU / message: ${target === 'client' ? 'this build' : target}`,
      us(floor),
      `${us(value)}${ratioText(value, floor)}`,
      '',
      '',
      '',
      ...HA_EMPTY,
      goal,
    ]);
  }
}

/** The rows of redis-sentinel-failover: medians of the repetitions, each run's figure in brackets. */
function failoverRows(rows, name, summary) {
  const f = summary[name]?.['hub-sentinel']?.failover;
  if (!f) return;
  const runs = (field, round = (x) => Math.round(x)) => f[field].runs.map(round).join(', ');
  const row = (label, value) =>
    rows.push([name, label, ...COLUMNS.map(([t]) => (t === 'hub-sentinel' ? value : '')), '']);
  row('publishing refused after kill -9', `${Math.round(f.refusedMs.median)} ms (${runs('refusedMs')})`);
  row('publish calls refused', `${Math.round(f.refusedCalls.median)} (${runs('refusedCalls')})`);
  row(
    'messages the gap covered, per client min-max',
    `${f.gapMin.median}-${f.gapMax.median} (${f.gapMin.runs.map((x, i) => `${x}-${f.gapMax.runs[i]}`).join(', ')})`,
  );
  row(
    'clients told by a gap / clients',
    `${f.clientsWithGap.runs.join(', ')} / ${f.clients.runs.join(', ')}; replica promoted ${runs('promoted')}`,
  );
}

const NO_REPLAY = 'no history to replay';

/** The rows of a replay scenario: hub figures only, their ratios to the same run without joins. */
function replayRows(rows, scenario, summary) {
  const r = summary[scenario.name]?.hub?.replay;
  if (!r) return;
  const row = (label, value, goal = '') =>
    rows.push([scenario.name, label, NO_REPLAY, value, '', NO_REPLAY, '', ...HA_EMPTY, goal]);
  const n = (x) => Math.round(x).toLocaleString('en');
  const s = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'never');
  row(
    'history kept / published',
    `${n(r.historyKept)} / ${n(r.historyPublished)} messages, ${r.historyKeptMB.toFixed(1)} / ${r.historyPublishedMB.toFixed(1)} MB (${(r.historyKeptMB / r.historyPublishedMB).toFixed(2)}x)`,
  );
  row('joiners caught up', `${n(r.caughtUp)} / ${n(r.joiners)}`);
  row('all history received, p50 / max', `${s(r.historyMsP50)} / ${s(r.historyMsMax)}`);
  row('caught up, p50 / max', `${s(r.caughtUpMsP50)} / ${s(r.caughtUpMsMax)}`);
  row(
    'server CPU during the joins',
    `${n(r.serverCpuMs)} ms in ${r.joinSeconds.toFixed(2)} s (${(r.serverCpuShare / r.baseCpuShare).toFixed(1)}x the CPU/s without joins); ${r.cpuUsPerReplayed?.toFixed(2)} µs per replayed message`,
  );
  row(
    'bytes to each joiner',
    `${r.bytesPerJoinerMB.toFixed(1)} MB (${(r.bytesPerJoinerMB / r.uncompactedReplayMB).toFixed(2)}x the ${r.uncompactedReplayMB.toFixed(1)} MB of an uncompacted replay)`,
  );
  const eld = r.eldMaxJoinMs;
  row(
    'event-loop delay max, without / with joins',
    `${r.eldMaxBaseMs.toFixed(1)} ms / ${eld.toFixed(1)} ms`,
    verdict(eld <= 50, `${eld.toFixed(1)} ms (<= 50 ms)`),
  );
  // A ratio of two medians of the same run, as everywhere in the table.
  const p99Ratio = r.liveP99JoinMs / r.liveP99BaseMs;
  row(
    'live p99, without / with joins',
    `${r.liveP99BaseMs?.toFixed(2)} ms / ${r.liveP99JoinMs?.toFixed(2)} ms (${p99Ratio.toFixed(2)}x)`,
    Number.isFinite(p99Ratio) ? verdict(p99Ratio <= 2, `${p99Ratio.toFixed(2)}x (<= 2x)`) : 'n/a',
  );
  row(
    "live clients' own process: event-loop delay max, without / with joins",
    `${r.liveClientsEldMaxBaseMs?.toFixed(1)} ms / ${r.liveClientsEldMaxJoinMs?.toFixed(1)} ms`,
  );
  const share = (x) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(0)}%`);
  const load = summary[scenario.name].hub.loadAverage;
  row(
    "machine: load average; others' use of CPU 0 (server) and CPU 1 (clients), without / with joins",
    `${load?.toFixed(2)}; CPU 0 ${share(r.othersOnServerCpuBase)} / ${share(r.othersOnServerCpuJoin)}, ` +
      `CPU 1 ${share(r.othersOnClientCpuBase)} / ${share(r.othersOnClientCpuJoin)}`,
  );
  row(
    'joiners short / duplicates / sequence holes; live missing',
    `${n(r.short)} / ${n(r.duplicates)} / ${n(r.sequenceHoles)}; ${n(r.liveMissing)}`,
  );
}
