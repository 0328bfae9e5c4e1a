import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { ETCD_LOCK_CLIENT, type EtcdLockClient } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';

/** What one export saw. */
export interface ExportRun {
  /** Exports running across all instances when this one started, itself included. */
  runningAtOnce: number;
}

/**
 * A stand-in for an expensive export. Each run marks itself in etcd while it works, on the
 * lock's lease (a crashed instance's marks go with it), and counts the marks when it starts: an
 * outside witness of how many ran at once, independent of the semaphore that limits them.
 */
@Injectable()
export class ExportsService {
  constructor(
    @Inject(ETCD_LOCK_CLIENT) private readonly lockClient: EtcdLockClient,
    private readonly config: AppConfig,
  ) {}

  /** Works `workMs`, marked as running on the lease `leaseHex` (the lock's, as `LockHandle.leaseId` gives it). */
  async run(workMs: number, leaseHex: string): Promise<ExportRun> {
    const etcd = this.lockClient.etcd;
    const prefix = `${this.config.statePrefix}exports/running/`;
    const mark = `${prefix}${randomUUID()}`;
    const deadline = () => ({ deadline: Date.now() + this.lockClient.options.requestTimeout });
    await etcd
      .put(mark)
      .value(this.config.instance)
      .lease(BigInt(`0x${leaseHex}`).toString())
      .options(deadline())
      .exec();
    try {
      const runningAtOnce = await etcd.getAll().prefix(prefix).options(deadline()).count();
      await sleep(workMs);
      return { runningAtOnce };
    } finally {
      await etcd.delete().key(mark).options(deadline()).exec();
    }
  }
}
