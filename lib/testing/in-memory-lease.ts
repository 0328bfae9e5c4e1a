import type { LeaseEnd, LockLease } from '../core/index.js';

/** A lease that lives until a test says it is lost (or the client closes). */
export class InMemoryLease implements LockLease {
  private ended: LeaseEnd | undefined;
  private readonly listeners = new Set<(end: LeaseEnd) => void>();

  constructor(readonly leaseHex: string) {}

  get alive(): boolean {
    return this.ended === undefined;
  }

  get end(): LeaseEnd | undefined {
    return this.ended;
  }

  onEnd(listener: (end: LeaseEnd) => void): () => void {
    if (this.ended) {
      listener(this.ended);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  lose(reason: string): void {
    if (this.ended) return;
    this.ended = { reason };
    for (const listener of this.listeners) listener(this.ended);
    this.listeners.clear();
  }
}
