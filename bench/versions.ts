/**
 * `npm run bench:versions`: one table of every target across the etcd lines recorded under
 * bench/results/etcd-<line>/ (each written by `npm run bench -- --etcd <line> --out bench/results/etcd-<line>`),
 * for BENCHMARKS.md. Each cell is that run's own measurement: ratios never mix runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Target {
  what: string;
  target: string;
  measured: string;
  met: boolean | null | undefined;
}
interface Results {
  startedAt: string;
  machine?: { etcd?: string };
  targets: Target[];
}

const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results');
const runs = fs
  .readdirSync(RESULTS)
  .filter(dir => dir.startsWith('etcd-') && fs.existsSync(path.join(RESULTS, dir, 'results.json')))
  .sort()
  .map(dir => JSON.parse(fs.readFileSync(path.join(RESULTS, dir, 'results.json'), 'utf8')) as Results);
if (runs.length === 0) throw new Error(`no bench/results/etcd-<line>/results.json under ${RESULTS}`);

const verdict = (t: Target | undefined) => (t === undefined ? '–' : `${t.measured}${t.met === true ? ' ✓' : t.met === false ? ' ✗' : ''}`);
const header = ['target', 'goal', ...runs.map(r => `etcd ${r.machine?.etcd ?? '?'} (${r.startedAt.slice(0, 10)})`)];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const { what, target } of runs[runs.length - 1].targets) {
  console.log(`| ${what} | ${target} | ${runs.map(r => verdict(r.targets.find(t => t.what === what))).join(' | ')} |`);
}
