import { LockInterceptor } from './lock.interceptor.js';
import { LockService } from './lock.service.js';

/** The Nest side of locking, over whatever client ETCD_LOCK_CLIENT provides (etcd, or in-memory in tests). */
export const lockLayerProviders = [LockService, LockInterceptor];
