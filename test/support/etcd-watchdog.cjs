/**
 * The watchdog of one test process, run by plain `node` in a detached child (see process-tracking.ts):
 *
 *   node etcd-watchdog.cjs <ownerPid> <registryDir> <tempRoot> <tempRootPrefix>
 *
 * Every 500 ms it checks whether the owner is still alive; once the owner is gone (or a zombie),
 * even after a SIGKILL that ran none of its exit hooks, it SIGKILLs every registered etcd /
 * etcdctl the owner started, removes their registry entries and the owner's temp root (data
 * dirs), and exits.
 *
 * Plain CommonJS with no imports of the harness: it runs without a transform, and is started with
 * an empty environment (no NODE_OPTIONS of the test process). pid-registry.ts defines the entry
 * format and temp-root layout read here.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [ownerArg, registryDir, tempRoot, tempRootPrefix] = process.argv.slice(2);
const owner = Number(ownerArg);
const tmp = path.resolve(os.tmpdir());

/** True when the PID exists and is not a zombie. */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}

/** Guards against a PID recycled since it was registered. */
function isEtcd(pid) {
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    return path.basename(argv0).startsWith('etcd');
  } catch {
    return false;
  }
}

function sweepOwnersEntries() {
  let names;
  try {
    names = fs.readdirSync(registryDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const file = path.join(registryDir, name);
    let entry;
    try {
      entry = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
    if (entry.owner !== owner) continue;
    const pid = Number(name);
    if (alive(pid) && isEtcd(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    try {
      fs.unlinkSync(file);
    } catch {
      // already gone
    }
  }
}

/** Removes only a temp root the harness made (directly in the temp dir, with the harness' prefix). */
function removeTempRoot() {
  const dir = tempRoot && path.resolve(tempRoot);
  if (dir && path.dirname(dir) === tmp && path.basename(dir).startsWith(tempRootPrefix)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // the global teardown retries
    }
  }
}

const timer = setInterval(() => {
  if (alive(owner)) return;
  clearInterval(timer);
  sweepOwnersEntries();
  removeTempRoot();
  process.exit(0);
}, 500);
