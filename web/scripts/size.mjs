// Prints the console's initial JavaScript, gzipped: the scripts index.html loads and the chunks it
// preloads (hls.js and other lazy chunks are not counted: they load only when needed). Fails the
// build above the budget.
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const BUDGET = 250 * 1024;
const dist = new URL('../dist/', import.meta.url).pathname;
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const files = new Set();
for (const m of html.matchAll(/<(?:script[^>]+src|link[^>]+rel="modulepreload"[^>]+href)="\/?([^"]+\.js)"/g)) files.add(m[1]);
let total = 0;
for (const f of files) total += gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`web: initial JavaScript ${kb(total)} gzipped (${files.size} file(s); budget ${kb(BUDGET)})`);
const lazy = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.js') && !files.has(`assets/${f}`));
for (const f of lazy) console.log(`web: lazy chunk ${f} ${kb(gzipSync(readFileSync(join(dist, 'assets', f)), { level: 9 }).length)} gzipped`);
if (total > BUDGET) {
  console.error('web: over budget: keep dependencies light and lazy-load big ones');
  process.exit(1);
}
