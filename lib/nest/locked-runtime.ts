import { LockError } from '../core/index.js';
import type { LockService } from './lock.service.js';

const SERVICE = Symbol('nest-etcd-lock:service');
let fallback: LockService | undefined;

/**
 * Provider methods are not reached by interceptors, so `@Locked` wraps them, and the wrapper
 * finds the application's LockService here: bound to each discovered instance at bootstrap
 * (right even with several applications in one process), else the last module initialized
 * (for instances Nest did not discover, such as request-scoped ones).
 */
export const lockedRuntime = {
  bind(instance: object, service: LockService): void {
    Object.defineProperty(instance, SERVICE, { value: service, configurable: true });
  },
  setFallback(service: LockService | undefined): void {
    fallback = service;
  },
  fallback(): LockService | undefined {
    return fallback;
  },
  serviceFor(instance: unknown): LockService {
    const service = (instance as Record<symbol, LockService> | undefined)?.[SERVICE] ?? fallback;
    if (!service) {
      throw new LockError('@Locked method called, but no EtcdLockModule is initialized in this application');
    }
    return service;
  },
};
