/** Starting a cluster of real etcd members on free loopback ports, finding its leader, closing it. */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { defaultFlags } from './etcd-binaries.js';
import { EtcdStartError, Member, type EtcdMember, type MemberStatus } from './etcd-member.js';
import { killEtcdctlOf } from './etcdctl.js';
import { delay, freePorts } from './loopback.js';
import { ensureProcessResources } from './process-tracking.js';

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** Client URLs of all members. */
  readonly endpoints: string[];
  /** The current Raft leader; polls (default up to 5 s) while no reachable member claims leadership. */
  leader(options?: { timeoutMs?: number }): Promise<EtcdMember>;
  /** Kill all members (and etcdctl processes spawned against them), remove temp dirs. Idempotent. */
  close(): Promise<void>;
}
export interface StartEtcdOptions {
  /** Appended after the harness' flags; Go's flag parser lets a later flag win, so these can override defaults. */
  extraArgs?: string[];
  /** Deadline for the members to become healthy (default 20 000 ms). */
  startTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 20_000;
const MAX_START_ATTEMPTS = 5;

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  return startEtcdCluster(1, options);
}

export async function startEtcdCluster(size = 3, options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`startEtcdCluster: invalid size ${size}`);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + startTimeoutMs;
  let lastError: unknown;

  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    const root = ensureProcessResources();
    const ports = await freePorts(size * 2);
    const token = `nest-etcd-lock-${process.pid}-${randomBytes(4).toString('hex')}`;
    const specs = await Promise.all(
      Array.from({ length: size }, async (_, i) => ({
        name: `etcd-${i}`,
        clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: await fsp.mkdtemp(path.join(root, `etcd-${i}-`)),
      })),
    );
    const initialCluster = specs.map(s => `${s.name}=${s.peerUrl}`).join(',');
    const members = specs.map(
      s =>
        new Member(
          s.name,
          s.clientUrl,
          s.peerUrl,
          s.dataDir,
          [
            `--name=${s.name}`,
            `--data-dir=${s.dataDir}`,
            `--listen-client-urls=${s.clientUrl}`,
            `--advertise-client-urls=${s.clientUrl}`,
            `--listen-peer-urls=${s.peerUrl}`,
            `--initial-advertise-peer-urls=${s.peerUrl}`,
            `--initial-cluster=${initialCluster}`,
            '--initial-cluster-state=new',
            `--initial-cluster-token=${token}`,
            ...defaultFlags(),
            ...(options.extraArgs ?? []),
          ],
          startTimeoutMs,
        ),
    );

    try {
      for (const m of members) m.spawn();
      await Promise.all(members.map(m => m.waitHealthy(deadline)));
      return new Cluster(members);
    } catch (err) {
      lastError = err;
      await Promise.all(members.map(m => m.kill('SIGKILL')));
      await Promise.all(specs.map(s => fsp.rm(s.dataDir, { recursive: true, force: true })));
      const retryable = err instanceof EtcdStartError && err.bindFailure && Date.now() < deadline;
      if (!retryable || attempt === MAX_START_ATTEMPTS) {
        if (err instanceof Error && attempt > 1) err.message = `(attempt ${attempt} of ${MAX_START_ATTEMPTS}) ${err.message}`;
        throw err;
      }
    }
  }
  throw lastError;
}

class Cluster implements EtcdCluster {
  readonly endpoints: string[];
  private closing: Promise<void> | undefined;

  constructor(private readonly memberList: Member[]) {
    this.endpoints = memberList.map(m => m.clientUrl);
  }

  get members(): EtcdMember[] {
    return this.memberList;
  }

  async leader(options: { timeoutMs?: number } = {}): Promise<EtcdMember> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    let seen: string;
    for (;;) {
      const answers = await Promise.all(
        this.memberList
          .filter(m => m.isRunning())
          .map(m =>
            m.status(Math.min(500, Math.max(deadline - Date.now(), 100))).then(
              s => ({ m, s }),
              (err: unknown) => ({ m, err }),
            ),
          ),
      );
      let best: { m: Member; s: MemberStatus } | undefined;
      for (const a of answers) {
        if ('s' in a && a.s.leader !== '0' && a.s.leader === a.s.memberId) {
          if (!best || a.s.raftTerm > best.s.raftTerm) best = a;
        }
      }
      if (best) return best.m;
      seen = answers
        .map(a =>
          's' in a
            ? `${a.m.name}: id ${a.s.memberId}, leader ${a.s.leader}, term ${a.s.raftTerm}`
            : `${a.m.name}: ${a.err instanceof Error ? a.err.message : String(a.err)}`,
        )
        .join('; ');
      if (Date.now() >= deadline) break;
      await delay(50);
    }
    throw new Error(`no etcd leader within ${timeoutMs} ms (${seen || 'no member running'})`);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await Promise.all([
      killEtcdctlOf(this.endpoints),
      ...this.memberList.map(async m => {
        if (m.isRunning()) {
          try {
            m.resume(); // SIGCONT first in case it is paused
          } catch {
            // exited meanwhile
          }
        }
        await m.kill('SIGKILL');
      }),
    ]);
    await Promise.all(this.memberList.map(m => fsp.rm(m.dataDir, { recursive: true, force: true })));
  }
}
