// Who calls a function in a .cpuprofile: self time of `name` split by call stack (3 levels up).
//   node scripts/profile-callers.mjs file.cpuprofile writeUtf8String [depth]
import { readFileSync } from 'node:fs';

const [file, name, depth = '4'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const label = (n) => `${n.callFrame.functionName || '(anon)'}:${n.callFrame.lineNumber + 1}`;
const stacks = new Map();
profile.samples.forEach((id, i) => {
  let node = byId.get(id);
  if (node.callFrame.functionName !== name) return;
  const chain = [];
  for (let d = 0; d < Number(depth) && node; d++) {
    chain.push(label(node));
    node = byId.get(parent.get(node.id));
  }
  const key = chain.join(' < ');
  stacks.set(key, (stacks.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
for (const [k, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 15))
  console.log(`${(us / 1000).toFixed(1).padStart(8)} ms  ${k}`);
