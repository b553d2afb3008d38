#!/usr/bin/env node
// Copies each example file into docs/GUIDE.md, into the code block right after its
// `<!-- example: path -->` marker. examples/__tests__/guide.test.ts fails when they differ.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const guideUrl = new URL('docs/GUIDE.md', root);
const lang = { mjs: 'js', tsx: 'tsx', html: 'html', ts: 'ts' };
const guide = readFileSync(guideUrl, 'utf8');
const updated = guide.replace(/<!-- example: (\S+) -->\n\n```\w*\n[\s\S]*?```/g, (_block, path) => {
  const body = readFileSync(new URL(path, root), 'utf8');
  return `<!-- example: ${path} -->\n\n\`\`\`${lang[path.split('.').pop()]}\n${body}\`\`\``;
});
writeFileSync(guideUrl, updated);
console.log(
  updated === guide ? 'docs/GUIDE.md: examples already up to date' : 'docs/GUIDE.md: examples updated',
);
