/**
 * Prints the fault suite's table of figures (violations, takeover times, loss lead times,
 * orphaned keys, unavailability windows) at the end of a Jest run.
 *
 * Each fault spec appends one JSON row per scenario to the file named here in
 * NEST_ETCD_LOCK_FAULTS_FILE (set before any test runs, so Jest's worker processes inherit it).
 * The rows of the last run that had any are kept in os.tmpdir()/nest-etcd-lock-faults-latest.jsonl.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

class FaultsReporter {
  constructor() {
    this.file = path.join(os.tmpdir(), `nest-etcd-lock-faults-${process.pid}-${Date.now()}.jsonl`);
    process.env.NEST_ETCD_LOCK_FAULTS_FILE = this.file;
  }

  onRunComplete() {
    let rows;
    try {
      rows = fs
        .readFileSync(this.file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(line => JSON.parse(line));
    } catch {
      return; // no fault spec ran
    }
    fs.copyFileSync(this.file, path.join(os.tmpdir(), 'nest-etcd-lock-faults-latest.jsonl'));
    fs.rmSync(this.file, { force: true });
    const lines = rows.map(row => ({
      result: row.pass ? 'PASS' : 'FAIL',
      scenario: row.scenario,
      figures: Object.entries(row.figures)
        .map(([name, value]) => `${name}=${typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(1) : value}`)
        .join(' '),
    }));
    const width = Math.max(...lines.map(l => l.scenario.length), 'scenario'.length);
    const out = [`\nFault suite figures (${rows.length} scenarios):`, `${'    '} ${'scenario'.padEnd(width)}  figures`];
    for (const l of lines) out.push(`${l.result} ${l.scenario.padEnd(width)}  ${l.figures}`);
    process.stdout.write(`${out.join('\n')}\n`);
  }
}

module.exports = FaultsReporter;
