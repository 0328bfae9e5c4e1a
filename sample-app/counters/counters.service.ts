import { Inject, Injectable } from '@nestjs/common';
import { ETCD_LOCK_CLIENT, LockService, type EtcdLockClient } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { roundMs } from '../lock-wait/lock-wait.js';
import { FencedStore } from '../state/fenced-store.js';

export interface Increment {
  counter: string;
  /** The value this increment wrote. */
  value: number;
  /** Absent for the unlocked control, which writes without a lock. */
  fencingToken?: string;
  lockWaitMs?: number;
}

/**
 * Counters incremented by read-modify-write, from any instance. `increment` is the correct one;
 * `incrementWithoutLock` is the same read-modify-write without lock or fencing, kept as a
 * control to show what the lock prevents: concurrent increments overwrite each other.
 */
@Injectable()
export class CountersService {
  constructor(
    private readonly locks: LockService,
    private readonly store: FencedStore,
    @Inject(ETCD_LOCK_CLIENT) private readonly lockClient: EtcdLockClient,
    private readonly config: AppConfig,
  ) {}

  read(counter: string): Promise<number | undefined> {
    return this.store.read<number>(`counters/${counter}`);
  }

  /** Adds one under the counter's lock, with a fenced write. */
  increment(counter: string): Promise<Increment> {
    const requestedAt = performance.now();
    return this.locks.withLock(`counter:${counter}`, async lock => {
      const lockWaitMs = roundMs(performance.now() - requestedAt);
      const value = await this.store.updateOne<number>(`counters/${counter}`, lock.fencingToken, current => (current ?? 0) + 1);
      return { counter, value, fencingToken: lock.fencingToken.toString(), lockWaitMs };
    });
  }

  async readUnlocked(counter: string): Promise<number | undefined> {
    const raw = await this.lockClient.etcd.get(this.unlockedKey(counter)).string();
    return raw === null ? undefined : Number(raw);
  }

  /** The naive version: read, add one, write back. Two requests reading the same value both write value + 1. */
  async incrementWithoutLock(counter: string): Promise<Increment> {
    const value = ((await this.readUnlocked(counter)) ?? 0) + 1;
    await this.lockClient.etcd.put(this.unlockedKey(counter)).value(String(value));
    return { counter, value };
  }

  private unlockedKey(counter: string): string {
    return `${this.config.statePrefix}unlocked-counters/${counter}`;
  }
}
