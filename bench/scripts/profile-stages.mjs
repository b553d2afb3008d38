// Time of a .cpuprofile by stage of a REST publish (selective-rest-5k), from each sample's stack:
// the leaf decides kernel writes and GC, else the nearest frame that names a stage.
//   node scripts/profile-stages.mjs file.cpuprofile [messages]
// With `messages` (published in the profiled window) it also prints µs per message. The profile samples
// wall-clock time: on a busy machine a stage that waits for the CPU looks dearer than it is.
import { readFileSync } from 'node:fs';

const [file, messages] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** Leaf rules: what the sample itself was doing. */
function leafStage({ functionName, url }) {
  if (functionName === '(idle)' || functionName === '(program)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (
    url === '' &&
    ['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String'].includes(functionName)
  ) {
    return 'socket write (syscall)';
  }
  return undefined;
}

/** Ancestor rules, nearest first. */
const RULES = [
  ['profiler (measurement)', (f) => f.functionName === 'post' && f.url.includes('inspector')],
  ['validation (zod)', (f) => f.url.includes('zod') || f.functionName === 'parseDataMessage'],
  [
    'HTTP body + JSON.parse',
    (f) =>
      f.url.includes('body-parser') ||
      f.url.includes('raw-body') ||
      (f.functionName === 'parse' && f.url.includes('json')) ||
      f.functionName === 'parseAndRoute',
  ],
  [
    'framing',
    (f) =>
      ['prepareEntry', 'writeDataFrame', 'writeMessage', 'writeHeader', 'payloadFor', 'frame'].includes(
        f.functionName,
      ),
  ],
  [
    'write scheduling + socket layer',
    (f) =>
      ['writeDue', 'flushDueOutboxes', '#writeSpare', '#writeRaw', '#send', 'sendFrame', 'send'].includes(
        f.functionName,
      ),
  ],
  [
    'index lookup + enqueue',
    (f) => ['forEachMatch', 'deliver', 'pushData', '#addDue'].includes(f.functionName),
  ],
  [
    'broker append (stringify, entry)',
    (f) => f.functionName === 'publish' && /ws-server|packages\/server\/dist\/index/.test(f.url),
  ],
  ['routing (floor / Socket.IO)', (f) => ['publishOne', 'emit', 'broadcast'].includes(f.functionName)],
  ['HTTP request handling', (f) => /express|router|_http_|node:http|finalhandler|on-finished/.test(f.url)],
];

const totals = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  let node = byId.get(profile.samples[i]);
  let stage = leafStage(node.callFrame);
  while (!stage && node) {
    stage = RULES.find(([, test]) => test(node.callFrame))?.[0];
    node = byId.get(parent.get(node.id));
  }
  stage ??= 'other';
  totals.set(stage, (totals.get(stage) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const busy = [...totals].filter(([s]) => s !== 'idle' && s !== 'profiler (measurement)');
const total = busy.reduce((a, [, us]) => a + us, 0);
for (const [stage, us] of busy.sort((a, b) => b[1] - a[1])) {
  const per = messages ? `  ${(us / Number(messages)).toFixed(2).padStart(7)} µs/msg` : '';
  console.log(
    `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms${per}  ${stage}`,
  );
}
console.log(
  `(idle ${((totals.get('idle') ?? 0) / 1000).toFixed(0)} ms and the profiler's own ${((totals.get('profiler (measurement)') ?? 0) / 1000).toFixed(0)} ms left out)`,
);
