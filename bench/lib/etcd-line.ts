/**
 * `npm run bench -- --etcd 3.7`: the etcd line to benchmark (3.4, 3.5, 3.6, 3.7; default 3.6, or
 * $ETCD_VERSION), handed to the test harness through ETCD_VERSION. Imported for this effect before
 * the harness, which picks (and if need be builds) its binaries when it loads.
 */
import { parseLine } from '../../test/support/etcd-builds.js';

const flag = process.argv.indexOf('--etcd');
if (flag >= 0) {
  const value = process.argv[flag + 1];
  if (!value) throw new Error('--etcd needs a line: 3.4, 3.5, 3.6 or 3.7');
  process.env.ETCD_VERSION = parseLine(value, '--etcd');
}
