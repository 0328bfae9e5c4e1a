/**
 * A test process that starts one etcd through the harness and is then SIGKILLed by the spec, to
 * show that its watchdog still stops that etcd and removes its data.
 * Usage: node harness-owner.js
 * Prints one JSON line, {"event":"started","etcdPid":N,"watchdogPid":N,"dataDir":"..."}, then idles.
 */
import { startEtcd } from '../support/etcd.js';
import { watchdogPid } from '../support/process-tracking.js';

const cluster = await startEtcd();
const [member] = cluster.members;
const say = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);
say({ event: 'started', etcdPid: member!.pid, watchdogPid: watchdogPid(), dataDir: member!.dataDir });
setInterval(() => {}, 60_000);
